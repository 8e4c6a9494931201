"""The guide's next step: the best config refits through `execute_final_training`, and lineage leads back."""

from __future__ import annotations

from pathlib import Path

from training.hpo import extract_best_config_from_study


def test_the_best_config_refits_and_its_lineage_names_the_trial(swept: tuple, tmp_path: Path) -> None:
    from training.execution import execute_final_training, extract_lineage_from_best_model

    study, _ = swept
    best_config = extract_best_config_from_study(study)
    job = execute_final_training(best_config, output_dir=tmp_path / "final")
    lineage = extract_lineage_from_best_model(job)
    assert (lineage.study_name, lineage.trial_number, lineage.storage) == (
        best_config.study_name,
        best_config.trial_number,
        best_config.storage,
    )
    assert lineage.hyperparameters == {**best_config.hyperparameters, "training.num_epochs": best_config.num_epochs}
    assert lineage.objective == best_config.objective and lineage.fold_values == best_config.fold_values
    assert lineage.study_dataset_fingerprint == best_config.dataset_fingerprint
    assert lineage.evaluated_on == "test" and lineage.trained_on == ("train",)
