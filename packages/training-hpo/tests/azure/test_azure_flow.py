"""Azure ML end to end against the stand-in service: sweep -> best config -> final training -> lineage.

Every job is the SDK's own (validated, written as YAML and read back by `load_job`); every trial and the final job
run their real command in a subprocess (see `conftest.AzureStandin`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from training.config import AzureConfig, ExecutionConfig, HPOConfig, TrainingConfig
from training.execution import execute_final_training, extract_lineage_from_best_model
from training.hpo.azure_best import best_config_from_azure_sweep
from training.hpo.azure_sweep import build_azure_sweep_job, submit_azure_sweep_job
from training.hpo.azure_trial import AzureTrialRecord

AZURE = AzureConfig(
    subscription_id="00000000-0000-0000-0000-000000000000",
    resource_group="rg-ner",
    workspace="ws-ner",
    compute="cpu-cluster",
    experiment_name="ner-hpo",
)
HPO = HPOConfig.model_validate(
    {
        "name": "azure",
        "k_folds": 2,
        "n_trials": 2,
        "sampler": {"type": "random", "seed": 3},
        "pruner": {"type": "median"},
        "search_space": {
            "learning_rate": {"type": "loguniform", "low": 3e-3, "high": 8e-3},
            "batch_size": {"type": "choice", "values": [4, 8]},
            "num_epochs": {"type": "fixed", "value": 1},
        },
    }
)


@pytest.mark.slow
def test_sweep_best_final_and_lineage_through_the_standin(
    tiny_config: TrainingConfig, standin: Any, tmp_path: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    job = build_azure_sweep_job(HPO, tiny_config, AZURE, folder=sweep_dir)
    sweep = submit_azure_sweep_job(job, AZURE, folder=sweep_dir, client=standin)
    assert sweep.stream() == "completed" and standin.streamed == [sweep.id]

    children = standin.child_runs(sweep.id)
    assert [child.status for child in children] == ["Completed", "Completed"], [
        (standin.root / child.name / "std_log.txt").read_text()[-2000:] for child in children
    ]
    for child in children:
        record = AzureTrialRecord.load(standin.root / child.name / "outputs" / "trial" / "trial.json")
        # With the median stopping policy the primary metric is the running CV mean after each fold, its last value
        # the CV mean; folds and epochs go under other names.
        first = record.fold_values[0]
        assert standin.metric_history(child.name, "entity_f1") == [
            (0, pytest.approx(first)),
            (1, pytest.approx(record.objective)),
        ]
        assert child.metrics["entity_f1"] == pytest.approx(record.objective)
        assert standin.metric_history(child.name, "entity_f1_fold") == [
            (fold, pytest.approx(value)) for fold, value in enumerate(record.fold_values)
        ]
        assert len(standin.metric_history(child.name, "entity_f1_epoch")) == 2
        assert record.objective == pytest.approx(sum(record.fold_values) / 2)
        assert "--param training.learning_rate=" in standin.commands[child.name]

    best = best_config_from_azure_sweep(sweep.id, AZURE, tmp_path / "study", client=standin)
    winner, chosen = max(children, key=lambda child: child.metrics["entity_f1"]), best.study
    assert (chosen.trial_run, chosen.study_name) == (winner.name, sweep.id)
    assert chosen.objective == winner.metrics["entity_f1"]
    assert chosen.trial_number == int(winner.name.rsplit("_", 1)[1]) and best.num_epochs == 1
    assert chosen.storage == (
        f"azureml://subscriptions/{AZURE.subscription_id}/resourceGroups/rg-ner/workspaces/ws-ner/jobs/{sweep.id}"
    )
    assert best.checkpoint is not None and (Path(best.checkpoint) / "model.safetensors").is_file()
    assert len(chosen.fold_values) == 2 and set(best.hyperparameters) >= {"training.learning_rate"}
    assert json.loads((tmp_path / "study" / "best_config.json").read_text())["study"]["trial_run"] == winner.name

    execution = ExecutionConfig(backend="azure", azure=AZURE)
    final = execute_final_training(
        best, output_dir=tmp_path / "final", execution_config=execution, ml_client=standin, wait=False
    )
    assert final.wait(timeout=60) == "completed", (standin.root / final.id / "std_log.txt").read_text()[-2000:]
    assert standin.commands[final.id].startswith("python -m training.execution.runner job.json --data ")
    lineage = extract_lineage_from_best_model(final)
    assert lineage.study == chosen and lineage.azure_job_name == final.id
    assert lineage.status == "completed" and (tmp_path / "final" / "model" / "model.safetensors").is_file()

    shown = subprocess.run(
        [sys.executable, "-m", "training.cli", "lineage", str(tmp_path / "final"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["study"]["trial_run"] == winner.name


@pytest.mark.slow
def test_a_sweep_without_completed_trials_has_no_best_config(
    tiny_config: TrainingConfig, standin: Any, tmp_path: Path
) -> None:
    from training.common.errors import InputError

    (tmp_path / "empty").mkdir()
    job = build_azure_sweep_job(HPO, tiny_config, AZURE, folder=tmp_path / "sweep", data=str(tmp_path / "empty"))
    # The trials fail (no data in the folder): nothing to rank.
    sweep = submit_azure_sweep_job(job, AZURE, folder=tmp_path / "sweep", client=standin)
    with pytest.raises(InputError, match=r"no completed trial logged 'entity_f1' \(trials: job_1_0 Failed, job_1_1"):
        best_config_from_azure_sweep(sweep.id, AZURE, tmp_path / "study", client=standin)
