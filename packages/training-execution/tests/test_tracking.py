"""MLflow tracking of a final run (optional): lineage tags, the model as an artifact, a registered version."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from training.config import BestConfig
from training.execution import execute_final_training, extract_lineage_from_best_model


def test_a_tracked_final_run_is_tagged_logged_and_registered(best_config: BestConfig, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    job = execute_final_training(
        best_config, output_dir=tmp_path / "run", tracking_uri=uri, registered_model_name="ner-final"
    )

    tracked, lineage = job.tracked_run, extract_lineage_from_best_model(job)
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(tracked.run_id)
    assert {key: run.data.tags[key] for key in lineage.to_tags()} == lineage.to_tags()
    assert run.data.tags["study.study_name"] == "ner-sweep" and run.data.tags["study.trial_number"] == "7"
    assert run.data.metrics["entity_f1"] == lineage.final_metrics["entity_f1"]
    assert run.data.params["training.learning_rate"] == "0.0003"
    model_files = {Path(item.path).name for item in client.list_artifacts(tracked.run_id, "model")}
    assert {"model.safetensors", "config.json"} <= model_files
    assert {"lineage.json", "metrics.json", "config.yaml"} <= {i.path for i in client.list_artifacts(tracked.run_id)}
    version = client.get_model_version("ner-final", tracked.model_version)
    assert version.run_id == tracked.run_id and version.source.endswith("/model")
    assert (tmp_path / "mlartifacts").is_dir()


def test_without_mlflow_nothing_breaks_until_tracking_is_asked_for(best_config: BestConfig, tmp_path: Path) -> None:
    best_config.save(tmp_path / "best_config.json")
    code = textwrap.dedent(
        f"""
        import sys

        # mlflow looks uninstalled: importing it fails and importlib.util.find_spec (used by transformers) says None.
        sys.modules["mlflow"] = None
        from training.execution import execute_final_training
        best = {str(tmp_path / "best_config.json")!r}
        print(execute_final_training(best, output_dir={str(tmp_path / "run")!r}, dry_run=True).status)
        try:
            execute_final_training(best, output_dir={str(tmp_path / "run")!r}, tracking_uri="sqlite:///m.db")
        except ImportError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "queued",
        "tracking (tracking_uri=...) needs 'mlflow', which is not installed: "
        'pip install "training-execution[mlflow]"',
    ]
    assert not (tmp_path / "run" / "metrics.json").exists()
