"""`record_lineage`: the lineage of a run that `train_model` trained directly (what `training train` writes)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from data.loaders import Dataset
from training.common.errors import InputError
from training.config import TrainingConfig
from training.core import train_model
from training.execution import Lineage, record_lineage


@pytest.fixture(scope="module")
def dataset(tiny_config: TrainingConfig) -> Dataset:
    return tiny_config.data.load()


@pytest.fixture(scope="module")
def trained(tiny_config: TrainingConfig, dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `train_model` run without any lineage (shared: copy it before changing it)."""
    output = tmp_path_factory.mktemp("trained") / "run"
    train_model(tiny_config, dataset, output)
    return output


def test_it_records_the_run_its_data_and_what_evaluated_it(
    tiny_config: TrainingConfig, dataset: Dataset, trained: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    lineage = record_lineage(tiny_config, dataset, run, data_path=tiny_config.data.path, processes=2)
    assert Lineage.load(run) == lineage
    assert lineage.run_id.startswith("train-") and lineage.status == "completed" and lineage.best_epoch == 1
    assert lineage.run_dir == str(run.resolve()) and lineage.model_path == str(run.resolve() / "model")
    assert lineage.dataset_fingerprint == dataset.fingerprint and lineage.data_path == tiny_config.data.path
    assert lineage.trained_on == ("train",) and lineage.evaluated_on == "validation"
    assert lineage.config_fingerprint == tiny_config.fingerprint and lineage.study is None
    assert "entity_f1" in lineage.final_metrics and lineage.backbone == "tiny-bert"

    again = record_lineage(tiny_config, dataset, run, data_path=tiny_config.data.path, processes=2)
    assert again.created_at == lineage.created_at  # a reused run keeps its record
    anew = record_lineage(tiny_config, dataset, run, data_path=tiny_config.data.path, processes=2, resume=False)
    assert anew.created_at != lineage.created_at and Lineage.load(run) == anew  # trained anew: a new record


def test_data_without_validation_records_the_held_out_part(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    config = tiny_config.with_values({"data.holdout_fraction": 0.25})
    dataset = config.data.load()
    dataset = Dataset({"train": dataset["train"]}, labels=dataset.labels)
    train_model(config, dataset, tmp_path / "run")
    lineage = record_lineage(config, dataset, tmp_path / "run")
    assert lineage.evaluated_on == "holdout 0.25 of train" and lineage.data_path is None
    hub = record_lineage(config, dataset, tmp_path / "run", data_path="hf://org/corpus", resume=False)
    assert hub.data_path == "hf://org/corpus"  # read as a path, it lost a slash (hf:/org/corpus)


def test_it_refuses_a_folder_without_that_finished_run(
    tiny_config: TrainingConfig, dataset: Dataset, trained: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=f"^{re.escape(str(tmp_path))}: holds no finished run of this dataset"):
        record_lineage(tiny_config, dataset, tmp_path)
    other = tiny_config.with_values({"training.learning_rate": 1e-3})
    with pytest.raises(InputError, match="holds the run of another config"):
        record_lineage(other, dataset, trained)
    with pytest.raises(InputError, match="holds no finished run of this dataset"):
        record_lineage(tiny_config, Dataset({"train": dataset["train"]}, labels=dataset.labels), trained)
    with pytest.raises(InputError, match=r"^processes: expected a whole number of at least 1, got 0"):
        record_lineage(tiny_config, dataset, trained, processes=0)
    assert not (trained / "lineage.json").exists()
