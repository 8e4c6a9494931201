"""`JobSpec`: a typed record with a JSON round trip, clear errors for bad files, and the data plan it carries."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from data.loaders import load_dataset
from training.common.errors import ConfigError, DataError, InputError
from training.config import AzureConfig, StudyRef, TrainingConfig
from training.core.run_folder import RunFolder
from training.execution.job_spec import DataPlan, JobSpec, Resources


def make_spec(config: TrainingConfig, tmp_path: Path, **fields: object) -> JobSpec:
    plan = DataPlan(train=("train", "validation"), evaluate="test")
    values = {
        "job_id": JobSpec.make_id("final", config, config.data.path, plan),
        "config": config,
        "data_path": config.data.path,
        "output_dir": str(tmp_path / "run"),
        "data": plan,
        "hyperparameters": {"training.learning_rate": 3e-4},
        "resources": Resources(backend="azure", nproc_per_node=2, azure=AzureConfig(compute="gpu-cluster")),
        "study": StudyRef(
            study_name="s",
            storage="sqlite:///s.db",
            trial_number=1,
            metric="entity_f1",
            direction="maximize",
            objective=0.5,
            dataset_fingerprint="0" * 64,
        ),
        **fields,
    }
    return JobSpec.model_validate(values)


def test_a_spec_round_trips_through_job_json(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    spec = make_spec(tiny_config, tmp_path)
    path = spec.save(tmp_path / "job.json")
    assert JobSpec.load(path) == spec
    assert JobSpec.load(path).config.fingerprint == tiny_config.fingerprint


def test_the_config_s_mlflow_uri_is_held_without_its_credentials(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    # job.json (an Azure job's uploaded code snapshot too) and the run's config.yaml held the password: the job logs
    # nothing to MLflow, its launcher logs the finished run with the URI it was given.
    config = tiny_config.with_values({"tracking.mlflow": "postgresql://ml:Pw5ecret@db.example.org/mlflow?token=T0k"})
    spec = make_spec(config, tmp_path)
    text = spec.save(tmp_path / "job.json").read_text()
    assert "Pw5ecret" not in text and "T0k" not in text
    assert spec.config.tracking.mlflow == "postgresql://ml:***@db.example.org/mlflow?token=***"
    assert spec.config.fingerprint == config.fingerprint and JobSpec.load(tmp_path / "job.json") == spec


def test_a_format_1_job_file_still_loads(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    """A job.json written before `other_data` moved out of the study (format 1) loads to the same spec."""
    spec = make_spec(tiny_config, tmp_path, other_data=True)
    old = json.loads(spec.model_dump_json())
    old["study"]["other_data"] = old.pop("other_data")
    (tmp_path / "job.json").write_text(json.dumps(old | {"format": 1}))
    assert JobSpec.load(tmp_path / "job.json") == spec


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: there the folder is not locked")
def test_a_job_is_not_written_into_a_folder_another_training_writes(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    # The runner's training refused the folder, but `final` had already replaced the running job's job.json (a
    # forced job's, or one started before the first wrote anything else): the run no longer named its own job.
    running = make_spec(tiny_config, tmp_path)
    written = running.save_to_output().read_text()
    other = make_spec(tiny_config, tmp_path, job_id="final-other", resume=False)
    held, done = threading.Event(), threading.Event()

    def train_elsewhere() -> None:  # another thread's span, as another process's: flock tells them apart
        with RunFolder(tmp_path / "run").writing():
            held.set()
            done.wait(60)

    elsewhere = threading.Thread(target=train_elsewhere)
    elsewhere.start()
    try:
        assert held.wait(60)
        with pytest.raises(InputError, match=r"/run: another training is writing this run folder now"):
            other.save_to_output()
    finally:
        done.set()
        elsewhere.join()
    assert (tmp_path / "run" / "job.json").read_text() == written
    with RunFolder(tmp_path / "run").writing():  # this thread's own span (a job's, from job.json to lineage): nested
        assert JobSpec.load(other.save_to_output()).job_id == "final-other"


def test_the_job_id_names_the_content(tiny_config: TrainingConfig) -> None:
    plan = DataPlan()
    first = JobSpec.make_id("final", tiny_config, "/data", plan)
    assert first == JobSpec.make_id("final", tiny_config, "/data", plan) and first.startswith("final-")
    assert first != JobSpec.make_id("final", tiny_config, "/other", plan)
    changed = tiny_config.with_values({"training.learning_rate": 1e-3})
    assert first != JobSpec.make_id("final", changed, "/data", plan)


def test_an_unreadable_or_invalid_job_file_is_a_config_error(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    path = make_spec(tiny_config, tmp_path).save(tmp_path / "job.json")
    with pytest.raises(ConfigError, match=r"job.json: no such job spec"):
        JobSpec.load(tmp_path / "missing" / "job.json")
    path.write_text(path.read_text()[:50])
    with pytest.raises(ConfigError, match=r"job.json: not a readable job spec \("):
        JobSpec.load(path)
    path.write_text('{"format": 1, "job_id": "x", "output_dir": "o", "data_path": null, "confg": {}}')
    with pytest.raises(ConfigError, match=r"job.json: confg: unknown key; did you mean 'config'\?"):
        JobSpec.load(path)
    path.write_text('{"format": 9}')
    with pytest.raises(ConfigError, match=r"job.json: format: expected job spec format 2, got 9"):
        JobSpec.load(path)


def test_the_data_plan_merges_train_splits_and_evaluates_on_its_split(tiny_config: TrainingConfig) -> None:
    dataset = load_dataset(tiny_config.data.path)
    merged, evaluated = DataPlan(train=("train", "validation"), evaluate="test").apply(dataset, None, "data")
    assert evaluated == "test" and list(merged) == ["train", "validation"]
    assert merged["train"] == dataset["train"] + dataset["validation"] and merged["validation"] == dataset["test"]
    kept, evaluated = DataPlan().apply(dataset, None, "data")
    assert evaluated == "validation" and kept["train"] == dataset["train"]


def test_without_the_evaluation_split_it_holds_out_or_says_what_to_do(tiny_config: TrainingConfig) -> None:
    dataset = load_dataset(tiny_config.data.path)
    no_test = type(dataset)({"train": dataset["train"], "validation": dataset["validation"]}, labels=dataset.labels)
    plan = DataPlan(train=("train", "validation"), evaluate="test")
    merged, evaluated = plan.apply(no_test, 0.25, "/data/ner")
    assert list(merged) == ["train"] and len(merged["train"]) == 20 and evaluated == "holdout 0.25 of train"
    with pytest.raises(ConfigError, match=r"^/data/ner: the data has no 'test' split to evaluate on \(splits: train, "):
        plan.apply(no_test, None, "/data/ner")
    with pytest.raises(DataError, match=r"^/data/ner: the data has no 'train' split"):
        plan.apply(type(dataset)({"test": dataset["test"]}), None, "/data/ner")
