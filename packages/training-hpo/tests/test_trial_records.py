"""The records a trial hands on: its spec (to the trial process) and an Azure trial's `trial.json`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training.common.errors import ConfigError
from training.config import TrainingConfig


def test_a_trial_spec_and_an_azure_trial_record_carry_a_config_that_round_trips_through_json(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    from training.hpo.azure_trial import AzureTrialRecord
    from training.hpo.objective import TrialSpec

    config = tiny_config.with_values({"training.learning_rate": 3e-3, "training.batch_size": 4})
    spec = TrialSpec(
        number=3, config=config, metric="entity_f1", splits_path=None, trial_dir="t", cache_dir="c", max_epochs=2
    )
    back = TrialSpec.model_validate_json(spec.model_dump_json())
    assert back == spec and back.config == config and back.config.fingerprint == config.fingerprint
    record = AzureTrialRecord(
        metric="entity_f1",
        direction="maximize",
        objective=0.5,
        cv_std=0.1,
        fold_values=(0.4, 0.6),
        fold_best_epochs=(1, None),
        hyperparameters={"training.learning_rate": 3e-3},
        config=config,
        dataset_fingerprint="abc",
    )
    (tmp_path / "trial.json").write_text(record.model_dump_json(), encoding="utf-8")
    loaded = AzureTrialRecord.load(tmp_path / "trial.json")
    assert loaded == record and loaded.config == config and loaded.config.fingerprint == config.fingerprint
    written_before = record.model_dump(mode="json", exclude={"config"}) | {"config_yaml": config.to_yaml()}
    (tmp_path / "trial.json").write_text(json.dumps(written_before), encoding="utf-8")
    assert AzureTrialRecord.load(tmp_path / "trial.json") == record  # a record of the YAML-text shape still reads
    for bad, problem in ((None, "config: required key is missing"), ("a: [\n", "config_yaml:2: invalid YAML")):
        (tmp_path / "trial.json").write_text(json.dumps(written_before | {"config_yaml": bad}), encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'trial.json'}: {problem}")):
            AzureTrialRecord.load(tmp_path / "trial.json")
