"""The best trial of a finished Azure ML sweep as the same `BestConfig` a local sweep writes.

The best child has the best primary metric (its last value: the CV mean); its `trial.json` gives parameters, folds
and config, its best fold's `model/` the checkpoint; the child's job name is kept as `trial_run` for lineage.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from training.common.errors import InputError
from training.config.best import BestConfig, StudyRef
from training.config.execution import AzureConfig
from training.execution.azure_client import ChildRun, create_azure_client, staging_folder, study_reference
from training.hpo.azure_sweep import TRIAL_OUTPUT
from training.hpo.azure_trial import TRIAL_FILE, AzureTrialRecord
from training.hpo.best_config import best_fold_model, refit_epochs
from training.hpo.study_folder import StudyFolder

_TRIAL_INDEX = re.compile(r"_(\d+)$")


def best_config_from_azure_sweep(
    job_name: str, azure: AzureConfig, study_dir: str | os.PathLike[str], *, client: Any = None
) -> BestConfig:
    """Rank the sweep `job_name`'s completed trials by their primary metric, download the best one's output into
    `<study_dir>/trial-<child>` and write `<study_dir>/best_config.json`."""
    service = create_azure_client(azure, client)
    sweep = service.get_job(job_name)
    if getattr(sweep, "type", None) != "sweep":
        raise InputError(f"Azure ML job {job_name!r} is a {getattr(sweep, 'type', '?')} job, not a sweep")
    metric, maximize = sweep.objective.primary_metric, sweep.objective.goal.lower() == "maximize"
    children = service.child_runs(job_name)
    ranked = [child for child in children if child.status == "Completed" and metric in child.metrics]
    if not ranked:
        states = ", ".join(f"{child.name} {child.status}" for child in children) or "none"
        raise InputError(f"Azure ML sweep {job_name!r}: no completed trial logged {metric!r} (trials: {states})")
    best = (max if maximize else min)(ranked, key=lambda child: child.metrics[metric])
    folder = StudyFolder(Path(study_dir).resolve())
    trial_dir = _download(service, best, folder.root / f"trial-{best.name}")
    record = AzureTrialRecord.load(trial_dir / TRIAL_FILE)
    result = BestConfig(
        config=record.config,
        hyperparameters=record.hyperparameters,
        num_epochs=refit_epochs(record.fold_best_epochs),
        study=StudyRef(
            metric=metric,
            direction="maximize" if maximize else "minimize",
            objective=best.metrics[metric],
            cv_std=record.cv_std,
            fold_values=record.fold_values,
            trial_number=_trial_number(best.name, children),
            trial_run=best.name,
            study_name=job_name,
            storage=study_reference(azure, service.workspace, job_name),
            dataset_fingerprint=record.dataset_fingerprint,
        ),
        splits_path=str(trial_dir / "splits.json"),
        checkpoint=best_fold_model(trial_dir, record.fold_values, maximize),
    )
    result.save(folder.best_config)
    return result


def _download(service: Any, child: ChildRun, target: Path) -> Path:
    """The child's trial output, downloaded once into `target` (a finished download is reused)."""
    if (target / TRIAL_FILE).is_file():
        return target
    with staging_folder(target.parent) as staging:
        outputs = service.download_output(child.name, TRIAL_OUTPUT, Path(staging))
        if not (outputs / TRIAL_FILE).is_file():
            raise InputError(f"Azure ML trial {child.name}: its {TRIAL_OUTPUT!r} output holds no {TRIAL_FILE}")
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(outputs), target)
    return target


def _trial_number(name: str, children: list[ChildRun]) -> int:
    """Azure names trials `<sweep>_<n>`; otherwise the trial's place among the sweep's trials by name."""
    found = _TRIAL_INDEX.search(name)
    return int(found.group(1)) if found else sorted(child.name for child in children).index(name)
