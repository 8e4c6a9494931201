"""The records a trial hands on: its spec (to the trial process) and an Azure trial's `trial.json`."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from data.loaders import Dataset
from training.common.errors import ConfigError
from training.config import HPOConfig, TrainingConfig
from training.core.run_metrics import PrecisionCheck


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


def test_study_attributes_their_records_did_not_write_are_a_config_error_naming_them() -> None:
    """A journal file edited by hand: pydantic's ValidationError was an internal error (`hpo best`, a worker)."""
    from training.hpo.budget import Budget
    from training.hpo.trial_record import TrialRecord

    study = optuna.create_study(study_name="edited")
    trial = study.ask()
    trial.set_user_attr("fold_values", [0.4, "x"])
    with pytest.raises(ConfigError, match=r"^trial 0: user attributes: fold_values.1: expected a valid number"):
        TrialRecord.of(trial)
    study.set_user_attr("budget", {"n_trials": "many"})
    with pytest.raises(ConfigError, match=r"^study 'edited': user attribute 'budget': n_trials: expected "):
        Budget.of(study)


# -- `precision: auto`'s bf16 check, made once per study ----------------------------------------------------------
EARLIER = PrecisionCheck(bf16_f1=0.61, fp32_f1=0.62, switched=False)


@pytest.fixture
def bf16_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """This CPU answers our hardware probe as one with AMX, so that `auto` resolves to bf16 (trials in-process)."""
    from training.core import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: True)


def test_a_trial_takes_the_check_of_the_first_finished_trial_of_the_same_model_and_kind_of_device() -> None:
    from training.hpo.trial_record import first_precision_check

    later = PrecisionCheck(bf16_f1=0.2, fp32_f1=0.9, switched=True)
    ours = {"hyperparameters": {"model.max_length": 64, "training.learning_rate": 1e-3}, "device": "default"}
    other_model = {**ours, "hyperparameters": {"model.max_length": 128, "training.learning_rate": 1e-3}}

    def trial(state: TrialState, check: PrecisionCheck | None, **attrs: object) -> optuna.trial.FrozenTrial:
        recorded = {"precision_check": check.model_dump()} if check else {}
        value = 0.5 if state == TrialState.COMPLETE else None
        return optuna.trial.create_trial(state=state, value=value, user_attrs={**ours, **attrs, **recorded})

    trials = [
        trial(TrialState.PRUNED, None),
        trial(TrialState.FAIL, later),  # a NaN trial records its outcome, then fails
        trial(TrialState.PRUNED, later, **other_model),
        trial(TrialState.COMPLETE, later, device="cuda:0"),
        trial(TrialState.PRUNED, EARLIER),
        trial(TrialState.COMPLETE, later),
    ]
    new = trial(TrialState.RUNNING, None)
    assert first_precision_check(trials, like=new) == EARLIER
    assert first_precision_check(trials[:4], like=new) is None and first_precision_check([], like=new) is None


@pytest.mark.parametrize("configured", ["auto", "fp32"])
def test_a_trial_takes_its_studys_check_in_every_fold_and_records_only_what_its_runs_took(
    configured: str,
    bf16_hardware: None,
    swept: tuple,
    dataset: Dataset,
    tiny_config: TrainingConfig,
    tmp_path: Path,
) -> None:
    """No fold scores an evaluation in fp32: each takes the earlier trial's decision, and the trial's record and each
    fold's `metrics.json` say it was taken; a trial whose runs take no `auto` check (a precision given) records none."""
    from training.core.run_folder import RunFolder
    from training.hpo.objective import TrialSpec, cross_validate
    from training.hpo.trial_record import TrialRecord

    class Keep:
        def report(self, step: int, value: float) -> bool:
            return False

    spec = TrialSpec(
        number=1,
        config=tiny_config.with_values({"training.num_epochs": 2, "training.precision": configured}),
        metric="entity_f1",
        splits_path=str(swept[1] / "splits.json"),
        trial_dir=str(tmp_path / "trial"),
        cache_dir=str(tmp_path / "cache"),
        max_epochs=2,
        precision_check=EARLIER,
    )
    outcome = cross_validate(spec, dataset, Keep())

    taken = EARLIER.model_copy(update={"taken": True}) if configured == "auto" else None
    assert outcome.precision_check == taken and len(outcome.folds) == 2
    for fold in ("fold-0", "fold-1"):
        metrics = RunFolder(tmp_path / "trial" / fold).read_metrics()
        assert metrics is not None and metrics.precision_check == taken
        assert metrics.precision == ("bf16" if configured == "auto" else "fp32")
        assert "precision auto: bf16 scored" not in (tmp_path / "trial" / fold / "train.log").read_text()
    study = optuna.create_study()
    TrialRecord.write(study.ask(), **outcome.to_attrs())
    assert TrialRecord.of(study.trials[0]).precision_check == taken


def test_a_sweep_hands_the_check_its_study_recorded_to_the_trials_it_starts(
    bf16_hardware: None, config_dir: Path, quick_settings: Callable[..., HPOConfig], tmp_path: Path
) -> None:
    from training.hpo import run_local_hpo_sweep
    from training.hpo.trial_record import TrialRecord

    run = {"config_dir": config_dir, "study_dir": tmp_path, "isolation": "inprocess"}
    study = run_local_hpo_sweep("tiny-bert", quick_settings("shared-check", n_trials=1), **run)
    assert TrialRecord.of(study.trials[0]).precision_check is None  # one epoch: no evaluation is left to check
    recorded = {"precision_check": EARLIER.model_dump(), "device": "default"}  # as a finished trial records it
    study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs=recorded))
    study = run_local_hpo_sweep("tiny-bert", quick_settings("shared-check", n_trials=1), n_trials=3, **run)

    assert TrialRecord.of(study.trials[2]).precision_check == EARLIER.model_copy(update={"taken": True})
    log = (tmp_path / "trials" / "2" / "fold-0" / "train.log").read_text()
    assert "precision auto: an earlier run's check gave entity F1 0.6100 in bf16, 0.6200 in fp32: bf16" in log


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_fold_value_is_recorded_for_its_trial_to_fail_on(bad: float) -> None:
    # pstdev raised AttributeError on a NaN fold, out of the worker's guard: the whole sweep ended as an internal error.
    from training.hpo.objective import CVOutcome, FoldResult
    from training.hpo.trial_record import TrialRecord

    outcome = CVOutcome(folds=(FoldResult(0, 0.5, 1, 2.0), FoldResult(1, bad, 1, 2.0)))
    assert math.isnan(outcome.std) and not math.isfinite(outcome.mean)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    TrialRecord.write(trial, **outcome.to_attrs())
    record = TrialRecord.of(study.trials[0])
    assert record.fold_values[1] == bad or math.isnan(record.fold_values[1])
    assert record.cv_std is not None and math.isnan(record.cv_std)
