"""Shared fixtures of the training-hpo tests: a tiny NER corpus in a config folder for the tiny BERT.

- `config_dir`: `train.yaml`, `model/tiny-bert.yaml`, `data/ner.yaml` (36 span-JSON sentences: 30 in
  `data/ner/train.jsonl`, which sweeps cross-validate, 6 in `test.jsonl`)
  and `hpo/tiny.yaml` (2 folds, 3 trials, learning rate and batch size tuned); `hpo/quick.yaml` is the same with
  one epoch per fold, for the tests that start many processes.
- `tiny_config`: the `TrainingConfig` read from it; `dataset`: its corpus.
- `quick_settings(name, **values)`: sweep settings of 2 folds of one epoch, 2 trials, the learning rate tuned.
- `swept`: `(study, study_dir)` of the guide's HPO example run once on `hpo/tiny.yaml` (3 trials, trials isolated in
  their own processes); tests must not change its folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from data.loaders import Dataset, load_dataset
from training.config import HPOConfig, TrainingConfig, build_training_config, load_hpo_config

PEOPLE = ("Anna Smith", "John Brown", "Maria Garcia", "Peter Novak", "Sarah Jones", "David Lee")
ORGS = ("Google", "Siemens", "Nokia", "Oracle", "Intel", "Spotify")
CITIES = ("London", "Paris", "Berlin", "Warsaw", "Tokyo", "Madrid")
TEMPLATES = (
    "{p} works at {o} in {c} .",
    "{o} opened an office in {c} .",
    "{p} moved to {c} last year .",
    "Yesterday {p} visited {o} .",
    "{c} welcomed {p} on Monday .",
    "The team of {o} met {p} in {c} .",
)
HPO_YAML = """\
k_folds: 2
n_trials: 3
sampler: {type: tpe, seed: 7}
pruner: {type: none}
search_space:
  learning_rate: {type: loguniform, low: 3.0e-3, high: 2.0e-2}
  training.batch_size: {type: choice, values: [4, 8]}
"""


def sentences() -> list[dict]:
    """36 distinct sentences in span-JSON form: each template with six people, organisations and cities."""
    records = []
    for shift, template in enumerate(TEMPLATES):
        for i in range(6):
            values = {"p": PEOPLE[i], "o": ORGS[(i + shift) % 6], "c": CITIES[(i + 2 * shift) % 6]}
            text, spans = template.format(**values), []
            for key, label in (("p", "PER"), ("o", "ORG"), ("c", "LOC")):
                if "{" + key + "}" in template:
                    start = text.index(values[key])
                    spans.append([start, start + len(values[key]), label])
            records.append({"text": text, "annotations": spans})
    return records


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    for sub in ("model", "data/ner", "hpo"):
        (folder / sub).mkdir(parents=True)
    (folder / "train.yaml").write_text(
        "backbone: tiny-bert\ndata: ner\ntraining: {num_epochs: 2, batch_size: 8, seed: 0}\n", encoding="utf-8"
    )
    (folder / "model" / "tiny-bert.yaml").write_text("backbone: tiny-bert\nmax_length: 64\nstride: 8\n")
    (folder / "data" / "ner.yaml").write_text("path: data/ner\nformat: spans\nlabels: [PER, ORG, LOC]\n")
    lines = [json.dumps(record) for record in sentences()]
    for split, part in (("train", lines[:30]), ("test", lines[30:])):
        (folder / "data" / "ner" / f"{split}.jsonl").write_text("\n".join(part) + "\n", encoding="utf-8")
    (folder / "hpo" / "tiny.yaml").write_text(HPO_YAML, encoding="utf-8")
    quick = HPO_YAML + "  num_epochs: {type: fixed, value: 1}\n"
    (folder / "hpo" / "quick.yaml").write_text(quick, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_config(config_dir: Path) -> TrainingConfig:
    return build_training_config(None, config_dir)


@pytest.fixture(scope="session")
def dataset(tiny_config: TrainingConfig) -> Dataset:
    return load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)


@pytest.fixture(scope="session")
def swept(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from training.hpo import create_search_space, run_local_hpo_sweep

    study_dir = tmp_path_factory.mktemp("swept") / "study"
    hpo_config = load_hpo_config(config_dir / "hpo" / "tiny.yaml")
    backbone = "tiny-bert"
    search_space = create_search_space(hpo_config)
    study = run_local_hpo_sweep(backbone, search_space, config_dir=config_dir, study_dir=study_dir)
    return study, study_dir


@pytest.fixture(scope="session")
def quick_settings() -> Callable[..., HPOConfig]:
    def make(name: str, **values: object) -> HPOConfig:
        space = {
            "learning_rate": {"type": "loguniform", "low": 3e-3, "high": 8e-3},
            "num_epochs": {"type": "fixed", "value": 1},
        }
        settings = {"name": name, "k_folds": 2, "n_trials": 2, "pruner": {"type": "none"}, "search_space": space}
        return HPOConfig.model_validate(settings | values)

    return make
