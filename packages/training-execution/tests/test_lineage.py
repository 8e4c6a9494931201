"""Lineage: every field of a finished final run, no secret anywhere, tags, and reading it back with light imports."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from data.loaders import load_dataset
from training.common.errors import ConfigError, InputError
from training.common.redact import redact_url
from training.config import BestConfig
from training.core.tiny_model import tiny_bert_folder
from training.execution import Lineage, extract_lineage_from_best_model
from training.execution.handle import JobHandle


def test_the_lineage_of_a_finished_run_has_every_field(final_run: JobHandle, best_config: BestConfig) -> None:
    lineage = extract_lineage_from_best_model(final_run)
    record = json.loads((final_run.output_dir / "metrics.json").read_text())
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)

    assert lineage.format == 2 and lineage.run_id == final_run.id and lineage.status == "completed"
    assert lineage.run_dir == str(final_run.output_dir) and lineage.model_path == str(final_run.model_dir)
    assert lineage.final_metrics["entity_f1"] == record["best"]["entity_f1"] and lineage.best_epoch in (1, 2)
    assert lineage.data_path == best_config.config.data.path
    data = best_config.config.data
    assert lineage.dataset_fingerprint == load_dataset(data.path, labels=data.labels).fingerprint
    assert (lineage.trained_on, lineage.evaluated_on) == (("train", "validation"), "test")
    assert lineage.config_fingerprint == record["config_fingerprint"]
    assert lineage.hyperparameters == {**best_config.hyperparameters, "training.num_epochs": 2}
    study = lineage.study
    assert study is not None and study.study_name == "ner-sweep" and study.trial_number == 7
    assert (study.metric, study.direction, study.objective) == ("entity_f1", "maximize", 0.61)
    assert (study.cv_std, study.fold_values) == (0.04, (0.57, 0.65))
    assert study.storage == "postgresql://optuna:***@db.example.org:5432/studies?sslmode=require&token=***"
    assert study.dataset_fingerprint == best_config.study.dataset_fingerprint
    config_json = (tiny_bert_folder() / "config.json").read_bytes()
    assert lineage.backbone == "tiny-bert" and lineage.backbone_hashed_file == "config.json"
    assert lineage.backbone_sha256 == hashlib.sha256(config_json).hexdigest()
    assert {"training-core", "training-execution", "torch", "transformers"} <= set(lineage.packages)
    assert lineage.python == ".".join(map(str, sys.version_info[:3]))
    # The commit checked out when the job was made (in a repository), as its job.json recorded it.
    assert lineage.code_revision == json.loads((final_run.output_dir / "job.json").read_text())["code_revision"]
    assert (lineage.code_revision is not None) == (git.returncode == 0)
    assert lineage.code_revision is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", lineage.code_revision)
    assert lineage.azure_job_name is None and lineage.azure_parent_job is None


def test_it_reads_back_from_the_run_folder_the_model_folder_or_the_file(
    final_run: JobHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    lineage = Lineage.load(final_run.output_dir)
    assert Lineage.load(final_run.model_dir) == lineage == Lineage.load(final_run.output_dir / "lineage.json")
    assert extract_lineage_from_best_model(final_run.model_dir) == lineage
    monkeypatch.chdir(final_run.model_dir)  # `.` said inside the model folder: its parent is `.` until resolved
    assert Lineage.load(".") == lineage


def test_a_moved_run_folder_gives_its_own_paths_where_it_is_now(final_run: JobHandle, tmp_path: Path) -> None:
    # A moved or copied run folder showed the paths it had when written, as if it were still there.
    moved = tmp_path / "moved"
    shutil.copytree(final_run.output_dir, moved)
    written = (moved / "lineage.json").read_bytes()
    lineage = extract_lineage_from_best_model(moved / "model")
    assert (lineage.run_dir, lineage.model_path) == (str(moved), str(moved / "model"))
    recorded = Lineage.load(final_run.output_dir)  # data and study paths stay as recorded
    assert lineage == recorded.model_copy(update={"run_dir": str(moved), "model_path": str(moved / "model")})
    assert (moved / "lineage.json").read_bytes() == written
    alone = tmp_path / "downloaded"  # a lineage.json copied without its run (an MLflow artifact): nothing to re-root
    alone.mkdir()
    shutil.copy(moved / "lineage.json", alone)
    assert Lineage.load(alone / "lineage.json") == recorded
    windows = json.loads(written) | {"run_dir": "C:\\runs\\r1", "model_path": "C:\\runs\\r1\\model"}
    (moved / "lineage.json").write_text(json.dumps(windows))  # written on Windows, read here
    assert Lineage.load(moved).model_path == str(moved / "model")


def test_tags_are_flat_strings_without_secrets(final_run: JobHandle, planted_secret: Callable[..., None]) -> None:
    tags = Lineage.load(final_run.output_dir).to_tags()
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in tags.items())
    assert tags["study.trial_number"] == "7" and tags["hp.training.learning_rate"] == "0.0003"
    assert tags["lineage_format"] == "2" and tags["package.training-core"] == "0.1.0"
    assert "metric.entity_f1" in tags and "azure_job_name" not in tags
    assert "null" not in tags.values()  # study.trial_run (no MLflow run) was the text 'null'
    planted_secret(final_run.output_dir, json.dumps(tags), final_run.logs(1000))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
        ("postgresql+psycopg2://u:p%40ss@h:5432/db?sslmode=require", "postgresql+psycopg2://u:***@h:5432/db?sslmode=require"),
        ("mysql://root@host/optuna", "mysql://root@host/optuna"),
        ("postgresql://alice:pa/ss@db.example.com/optuna", "postgresql://alice:***@db.example.com/optuna"),
        ("postgresql://alice:two words@db/optuna", "postgresql://alice:***@db/optuna"),
        ("https://host:8443/files/report.txt", "https://host:8443/files/report.txt"),
        ("https://data.example.com:8443/sets/v1@2024/train.jsonl", "https://data.example.com:8443/sets/v1@2024/train.jsonl"),
        ("postgresql://u:pa#ss@h/db", "postgresql://u:***@h/db"),
        ("http://mlflow:5000/api failed (ask ops@example.com)", "http://mlflow:5000/api failed (ask ops@example.com)"),
        ("hf://wnut_17:wnut_17@main", "hf://wnut_17:wnut_17@main"),
        ("https://acct.blob.core.windows.net/c/x?sv=2024&sig=abc%2Bdef&se=1", "https://acct.blob.core.windows.net/c/x?sv=2024&sig=***&se=1"),
        ("redis://h/0?password=pw&db=1&api_key=k", "redis://h/0?password=***&db=1&api_key=***"),
        ("sqlite:////tmp/study/optuna.db", "sqlite:////tmp/study/optuna.db"),
        ("/tmp/study/journal.log", "/tmp/study/journal.log"),
        ("host=db user=optuna password=hunter2 dbname=s", "host=db user=optuna password=*** dbname=s"),
    ],
)  # fmt: skip
def test_storage_urls_lose_their_credentials(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_folder_without_lineage_or_with_a_foreign_record_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no lineage.json here or in the parent folder; expected a run folder"):
        Lineage.load(tmp_path)
    (tmp_path / "lineage.json").write_text('{"format": 99}')
    with pytest.raises(InputError, match=r"lineage.json: format: expected lineage format 2, got 99$"):
        Lineage.load(tmp_path)
    run = tmp_path / "runs" / "unfinished"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: {}\n")  # a run whose training has not ended
    with pytest.raises(InputError, match=r"unfinished: a run folder without lineage.json, which training train"):
        Lineage.load(run)
    (run / "model").mkdir()  # its model folder, saved before the run was killed: named as the run, not as no run
    with pytest.raises(InputError, match=r"unfinished: a run folder without lineage.json, which training train"):
        Lineage.load(run / "model")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')  # a model's config, named by mistake
    with pytest.raises(InputError, match=r"config.json: not a lineage record \(no format\); expected a run folder"):
        Lineage.load(tmp_path / "config.json")
    # A run's other records carry a format a lineage had: read as one, each drew an error for every lineage key.
    for name, number in [("metrics.json", 1), ("job.json", 2), ("best_config.json", 2)]:
        (tmp_path / name).write_text(json.dumps({"format": number, "status": "completed", "history": []}))
        expected = rf"^{re.escape(str(tmp_path / name))}: not a lineage record \(no run_id\); expected a run folder"
        with pytest.raises(InputError, match=expected):
            Lineage.load(tmp_path / name)
    expected = r"^job_or_model_dir: expected a JobHandle or the path of a run or model folder, got NoneType None$"
    with pytest.raises(InputError, match=expected):  # a TypeError from inside pathlib
        extract_lineage_from_best_model(None)  # type: ignore[arg-type]


def test_reading_lineage_needs_neither_torch_nor_the_hpo_package(final_run: JobHandle) -> None:
    code = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "optuna") or name.startswith("training.hpo"):
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
                return None

        sys.meta_path.insert(0, Blocker())
        from training.execution import Lineage
        print(Lineage.load({str(final_run.model_dir)!r}).study.trial_number)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"


def test_a_format_1_lineage_and_best_config_read_as_the_nested_study(
    final_run: JobHandle, best_config: BestConfig, tmp_path: Path
) -> None:
    """Files written before the study was nested (flat study fields, format 1) still load, to equal records."""
    lineage = Lineage.load(final_run.output_dir)
    assert lineage.study is not None
    flat = lineage.model_dump(mode="json", exclude={"study"}) | {"format": 1}
    flat |= {key: value for key, value in lineage.study.model_dump(mode="json").items() if key != "dataset_fingerprint"}
    flat["study_dataset_fingerprint"] = lineage.study.dataset_fingerprint
    (tmp_path / "lineage.json").write_text(json.dumps(flat))
    assert Lineage.load(tmp_path / "lineage.json") == lineage  # a lineage.json alone: its paths as recorded

    best = best_config.model_dump(mode="json", exclude={"study"}) | best_config.study.model_dump(mode="json")
    (tmp_path / "best_config.json").write_text(json.dumps(best | {"format": 1}))
    assert BestConfig.load(tmp_path / "best_config.json") == best_config
    nested = best_config.model_dump(mode="json") | {"format": 1}  # format 1 said of a nested study "got null"
    (tmp_path / "best_config.json").write_text(json.dumps(nested))
    assert BestConfig.load(tmp_path / "best_config.json") == best_config
    (tmp_path / "best_config.json").write_text(json.dumps(best | {"format": 3}))
    with pytest.raises(ConfigError, match=r"best_config\.json: format: expected 2, got 3"):
        BestConfig.load(tmp_path / "best_config.json")
    # a number where a path belongs: the hint spoke of YAML ("YAML read the unquoted value as a int")
    (tmp_path / "best_config.json").write_text(json.dumps(best | {"format": 1, "data_path": 5}))
    expected = r"best_config\.json: data_path: expected a valid string, got 5 \(unquoted, it is read as an integer: "
    with pytest.raises(ConfigError, match=expected):
        BestConfig.load(tmp_path / "best_config.json")


def test_the_code_revision_says_when_tracked_files_changed(tmp_path: Path) -> None:
    from training.execution.provenance import code_revision

    assert code_revision(tmp_path) is None  # not a repository
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert code_revision(tmp_path) == head
    (tmp_path / "train.py").write_text("print(2)\n")
    assert code_revision(tmp_path) == f"{head}-dirty"
