"""Shared fixtures of the training-execution tests: a tiny corpus with a test split, its config and a best config.

- `config_dir`: a config folder (`train.yaml`, `model/tiny-bert.yaml`, `data/ner.yaml`) whose `data/ner/` holds
  24 sentences as span JSON lines: 16 in `train.jsonl`, 4 in `validation.jsonl`, 4 in `test.jsonl`.
- `tiny_config`: the `TrainingConfig` read from it (tiny BERT built on the spot, max_length 64, 1 epoch).
- `best_config`: a `BestConfig` as a sweep would write it, whose storage URL carries a password (`PASSWORD`).
- `final_run`: one finished in-process final training of `best_config` (shared: read it, do not change it).
- `planted_secret`: an `AZURE_CLIENT_SECRET` set in the environment; returns `assert_clean(folder, *texts)`, which
  fails if the secret, the storage password or its token appears in any file under `folder` or in `texts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from training.config import BestConfig, StudyRef, TrainingConfig, build_training_config

PASSWORD = "s3cr3t-Pa55"
TOKEN = "tok-5ecret-query"
ENV_SECRET = "env-5ecret-value"
STORAGE = f"postgresql://optuna:{PASSWORD}@db.example.org:5432/studies?sslmode=require&token={TOKEN}"
PEOPLE = ("Anna Nowak", "John Smith", "Maria Garcia", "Peter Brown", "Linda Chen", "David Okafor")
ORGS = ("Siemens", "Google", "Nokia", "Spotify")
PLACES = ("Warsaw", "London", "Berlin", "Tokyo", "Dublin", "Madrid")
TEMPLATES = (
    "{per} joined {org} in {loc} .",
    "{per} works at {org} .",
    "Yesterday {per} visited {loc} .",
    "{org} opened an office in {loc} .",
)


def sentences(count: int) -> list[dict]:
    """`count` span-annotated sentences made from the templates, each a `{"text", "annotations"}` record."""
    records = []
    for index in range(count):
        values = {
            "per": (PEOPLE[index // len(TEMPLATES) % len(PEOPLE)], "PER"),
            "org": (ORGS[(3 * index + 1) % len(ORGS)], "ORG"),
            "loc": (PLACES[(index + index // len(TEMPLATES)) % len(PLACES)], "LOC"),
        }
        text, spans = "", []
        for word in TEMPLATES[index % len(TEMPLATES)].split():
            entity = values.get(word.strip("{}")) if word.startswith("{") else None
            value, label = entity or (word, None)
            text += (" " if text else "") + value
            if label:
                spans.append([len(text) - len(value), len(text), label])
        records.append({"text": text, "annotations": spans})
    return records


def write_split(folder: Path, name: str, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    (folder / "model").mkdir()
    (folder / "data").mkdir()
    (folder / "train.yaml").write_text(
        "backbone: tiny-bert\ndata: ner\ntraining:\n  num_epochs: 1\n  batch_size: 8\n  seed: 0\n", encoding="utf-8"
    )
    (folder / "model" / "tiny-bert.yaml").write_text("backbone: tiny-bert\nmax_length: 64\nstride: 8\n")
    (folder / "data" / "ner.yaml").write_text("path: data/ner\nformat: spans\nlabels: [PER, ORG, LOC]\n")
    records = sentences(24)
    for name, part in (("train", records[:16]), ("validation", records[16:20]), ("test", records[20:])):
        write_split(folder / "data" / "ner", name, part)
    return folder


@pytest.fixture(scope="session")
def tiny_config(config_dir: Path) -> TrainingConfig:
    return build_training_config(None, config_dir)


@pytest.fixture(scope="session")
def best_config(tiny_config: TrainingConfig) -> BestConfig:
    return BestConfig(
        config=tiny_config,
        hyperparameters={"training.learning_rate": 3e-4, "training.batch_size": 4},
        num_epochs=2,
        study=StudyRef(
            metric="entity_f1",
            direction="maximize",
            objective=0.61,
            cv_std=0.04,
            fold_values=(0.57, 0.65),
            trial_number=7,
            study_name="ner-sweep",
            storage=STORAGE,
            dataset_fingerprint=sweep_data_fingerprint(tiny_config),
        ),
    )


def sweep_data_fingerprint(config: TrainingConfig) -> str:
    """The fingerprint a sweep on the config's data records (a refit checks its data against it)."""
    from data.loaders import load_dataset

    data = config.data
    dataset = load_dataset(data.path, format=data.format, labels=data.labels, overlap_policy=data.overlap_policy)
    return dataset.fingerprint


@pytest.fixture(scope="session")
def final_run(best_config: BestConfig, tmp_path_factory: pytest.TempPathFactory):
    from training.execution import execute_final_training

    return execute_final_training(best_config, output_dir=tmp_path_factory.mktemp("final") / "run")


@pytest.fixture
def planted_secret(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", ENV_SECRET)

    def assert_clean(folder: Path, *texts: str) -> None:
        files = [path for path in folder.rglob("*") if path.is_file()]
        assert files
        for text in [*texts, *(path.read_bytes().decode("utf-8", errors="replace") for path in files)]:
            for secret in (PASSWORD, TOKEN, ENV_SECRET):
                assert secret not in text

    return assert_clean
