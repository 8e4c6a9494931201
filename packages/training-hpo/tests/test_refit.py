"""The guide's next step: the best config refits through `execute_final_training`, and lineage leads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.common.errors import InputError
from training.hpo import extract_best_config_from_study


def test_the_best_config_refits_and_its_lineage_names_the_trial(swept: tuple, tmp_path: Path) -> None:
    from training.execution import execute_final_training, extract_lineage_from_best_model

    study, _ = swept
    best_config = extract_best_config_from_study(study)
    job = execute_final_training(best_config, output_dir=tmp_path / "final")
    lineage = extract_lineage_from_best_model(job)
    assert lineage.study == best_config.study  # the study and trial, their CV figures and the sweep's data
    assert lineage.hyperparameters == {**best_config.hyperparameters, "training.num_epochs": best_config.num_epochs}
    assert lineage.evaluated_on == "test" and lineage.trained_on == ("train",)


def test_a_study_recorded_by_the_first_format_still_opens(swept: tuple) -> None:
    """Studies written before the settings held typed records (config as YAML text, settings under `hpo`) load."""
    import optuna

    from training.hpo.sweep_settings import RECORD, SweepSettings

    settings = SweepSettings.load(swept[0])
    first = settings.model_dump(mode="json", exclude={"config", "hpo_config"})
    first |= {"format": 1, "config_yaml": settings.config.to_yaml(), "hpo": settings.hpo_config.model_dump(mode="json")}
    old = optuna.create_study(study_name="old")
    old.set_user_attr(RECORD, first)
    assert SweepSettings.load(old) == settings
    old.set_user_attr(RECORD, first | {"format": 3})
    with pytest.raises(InputError, match="study 'old' was not made by run_local_hpo_sweep"):
        SweepSettings.load(old)
