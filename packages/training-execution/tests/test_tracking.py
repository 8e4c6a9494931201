"""MLflow tracking of a final run (optional): lineage tags, the model as an artifact, a registered version."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from training.config import BestConfig
from training.execution import Lineage, execute_final_training, extract_lineage_from_best_model


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
    # A registered version downloaded elsewhere had no lineage.json: `training lineage` refused the deployed model.
    (tmp_path / "deployed").mkdir()
    downloaded = client.download_artifacts(version.run_id, "model", str(tmp_path / "deployed"))  # version.source
    assert Lineage.load(downloaded) == lineage


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
        "tracking_uri (--mlflow-uri) needs 'mlflow', which is not installed: "
        'pip install "training-execution[mlflow]"',
    ]
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_the_logged_model_loads_and_predicts_with_mlflow_in_a_fresh_process(final_run, tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    from training.core.predictor import Predictor
    from training.execution.tracking import log_final_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = log_final_run(final_run.output_dir, extract_lineage_from_best_model(final_run), uri)
    texts = ["Anna Nowak joined Siemens in Warsaw .", "Yesterday John Smith visited Tokyo ."]
    code = textwrap.dedent(
        f"""
        import json, mlflow
        mlflow.set_tracking_uri({uri!r})
        model = mlflow.pyfunc.load_model({tracked.pyfunc_uri!r})
        print(json.dumps(model.predict({texts!r})))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    ours = Predictor.from_folder(Path(final_run.output_dir) / "model")(texts)
    expected = [[[e.start, e.end, e.label, e.text] for e in entities] for entities in ours]
    assert [[[e["start"], e["end"], e["label"], e["text"]] for e in entities] for entities in loaded] == expected
    scores = [entity["score"] for entities in loaded for entity in entities]
    assert scores == pytest.approx([entity.score for entities in ours for entity in entities])
    assert any(expected), "the model finds no entity: the comparison would prove little"


def test_logging_a_run_leaves_our_output_free_of_mlflow_s_own_lines(
    final_run, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # MLflow's database set-up lines, its pickling warning and a "Downloading artifacts" bar came amid our output.
    pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    from training.execution.tracking import log_final_run

    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_final_run(final_run.output_dir, extract_lineage_from_best_model(final_run), f"sqlite:///{tmp_path / 'db'}")
    assert capfd.readouterr() == ("", "")
    assert [str(warning.message) for warning in caught if "mlflow" in Path(warning.filename).parts] == []
    assert logging.getLogger("mlflow").level == logging.INFO  # MLflow's own setting again, after our calls


def test_a_bad_or_unreachable_tracking_uri_fails_before_the_refit(best_config: BestConfig, tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    from training.common.errors import ConfigError

    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    bad = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"  # the database cannot be created there
    # Named as `hpo run` names them: the argument or tracking.mlflow, not "tracking (tracking_uri=...)".
    with pytest.raises(ConfigError, match=r"^tracking_uri \(--mlflow-uri\): cannot use MLflow tracking URI 'sqlite"):
        execute_final_training(best_config, output_dir=tmp_path / "run", tracking_uri=bad)
    with pytest.raises(
        ConfigError, match=r"^tracking_uri \(--mlflow-uri\): 'nosuch://x' is not an MLflow tracking URI"
    ):
        execute_final_training(best_config, output_dir=tmp_path / "run", tracking_uri="nosuch://x")
    tracked = best_config.config.with_values({"tracking.mlflow": bad})
    with pytest.raises(ConfigError, match=r"^tracking.mlflow: cannot use MLflow tracking URI 'sqlite"):
        execute_final_training(best_config.model_copy(update={"config": tracked}), output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_best_config_s_tracking_uri_without_its_password_asks_for_the_full_uri(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # An Azure sweep's best config holds tracking.mlflow as its code snapshot did, password redacted: the refit tried
    # to log in with "***" and failed on the store's refusal, with no word of --mlflow-uri
    from training.common.errors import InputError

    redacted = best_config.config.with_values({"tracking.mlflow": "postgresql://ml:***@127.0.0.1:9/mlflow"})
    expected = "tracking.mlflow 'postgresql://ml:***@127.0.0.1:9/mlflow': the best config holds it without its password"
    with pytest.raises(InputError, match=rf"^{re.escape(expected)}; pass the full URI as tracking_uri \(--mlflow-uri"):
        execute_final_training(best_config.model_copy(update={"config": redacted}), output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_file_store_says_how_mlflow_3_accepts_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    from training.common.errors import ConfigError
    from training.execution.tracking import connect

    uri = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match=r"^tracking: cannot use .* set `MLFLOW_ALLOW_FILE_STORE=true` to opt out"):
        connect(uri, "tracking")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what the message advises
    assert connect(uri, "tracking").search_experiments()[0].name == "Default"


def test_a_reused_final_run_is_not_logged_again_but_a_forced_refit_is(best_config: BestConfig, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracked = {"output_dir": tmp_path / "run", "tracking_uri": uri, "registered_model_name": "ner"}

    first = execute_final_training(best_config, **tracked)
    again = execute_final_training(best_config, **tracked)

    assert again.tracked_run == first.tracked_run
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("final-training").experiment_id
    assert [found.info.run_id for found in client.search_runs([experiment])] == [first.tracked_run.run_id]
    forced = execute_final_training(best_config, **tracked, force=True)  # a new model: a new run and version
    assert forced.tracked_run.run_id != first.tracked_run.run_id and forced.tracked_run.model_version == "2"
