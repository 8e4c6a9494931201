"""The guide's next step: the best config refits through `execute_final_training` (or `refit`, in a trial
process), and lineage leads back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.loaders import Dataset
from training.common.errors import InputError
from training.hpo import extract_best_config_from_study


def hpo_run(config_dir: Path, tmp_path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """`training hpo run` of one quick trial into `tmp_path/study`, then a refit into `tmp_path/final`."""
    command = [sys.executable, "-m", "training.cli", "hpo", "run", "--config-dir", str(config_dir), "--hpo", "quick"]
    command += ["--n-trials", "1", "--json", "--study-dir", str(tmp_path / "study"), "--refit", str(tmp_path / "final")]
    command += more
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


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
    old.set_user_attr(RECORD, first | {"format": "one"})
    with pytest.raises(InputError, match="study 'old' was not made by run_local_hpo_sweep"):
        SweepSettings.load(old)


def test_refit_after_a_sweep_trains_where_the_trials_ran_and_its_caller_never_imports_torch(
    config_dir: Path, tmp_path: Path
) -> None:
    """A fresh interpreter sweeps, then refits the best config through `refit`: the refit's process comes from the
    forkserver the trials came from (the same server, so torch is imported once), the caller's process never imports
    torch or transformers, and the run is `execute_final_training`'s (its lineage names the trial)."""
    from training.execution import extract_lineage_from_best_model

    script = f"""
import sys
from multiprocessing import forkserver
from training.hpo import extract_best_config_from_study, refit, run_local_hpo_sweep
study = run_local_hpo_sweep(
    "tiny-bert", {str(config_dir / "hpo" / "quick.yaml")!r}, config_dir={str(config_dir)!r},
    study_dir={str(tmp_path / "study")!r}, n_trials=1, isolation="subprocess",
)
server = forkserver._forkserver._forkserver_pid
job = refit(extract_best_config_from_study(study), output_dir={str(tmp_path / "final")!r})
print(job.status, job.model_dir, forkserver._forkserver._forkserver_pid == server)
print("torch" in sys.modules or "transformers" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["completed", str(tmp_path.resolve() / "final" / "model"), "True", "False"]
    lineage = extract_lineage_from_best_model(tmp_path / "final")
    assert lineage.study is not None and lineage.study.trial_number == 0 and lineage.evaluated_on == "test"


def test_refit_raises_the_errors_of_execute_final_training_and_writes_nothing(
    swept: tuple, dataset: Dataset, tmp_path: Path
) -> None:
    """A refit on other data than the sweep's is refused in the refit's process and the caller gets the same typed
    error (the CLI's exit code 2 and one line), with no run folder made; so is an output that is a file."""
    from training.hpo import refit

    best_config = extract_best_config_from_study(swept[0])
    other = Dataset({name: dataset[name][1:] for name in dataset}, labels=dataset.labels)
    with pytest.raises(InputError, match="refit on the sweep's data") as raised:
        refit(best_config, output_dir=tmp_path / "final", dataset=other)
    assert type(raised.value) is InputError
    assert not (tmp_path / "final").exists()
    (tmp_path / "taken").write_text("a file, not a folder\n")
    with pytest.raises(InputError, match=r"taken: is a file; expected a run folder"):
        refit(best_config, output_dir=tmp_path / "taken", dataset=dataset)
    with pytest.raises(InputError, match=r"^dataset: expected a Dataset .*, got str 'data/ner'$"):  # in this process
        refit(best_config, output_dir=tmp_path / "final", dataset="data/ner")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the refit's process through /proc")
def test_a_refit_process_killed_mid_write_leaves_no_staging_entries_in_its_run_folder(
    swept: tuple, tmp_path: Path
) -> None:
    """The refit's process (the one holding the run's `train.log` open) paused (SIGSTOP) while a staging entry of its
    run folder exists, then killed: the refit fails, and the run folder keeps nothing under a staging name."""
    best = extract_best_config_from_study(swept[0]).model_copy(update={"num_epochs": 30})
    output = tmp_path.resolve() / "final"
    script = "from training.config import BestConfig\nfrom training.hpo import refit\n"
    script += f"refit(BestConfig.load({str(tmp_path / 'best.json')!r}), output_dir={str(output)!r})\n"
    best.save(tmp_path / "best.json")
    caller = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        while worker is None and caller.poll() is None:
            worker = next((pid for pid in _pids() if _holds(pid, output / "train.log")), None)
            time.sleep(0.05)
        assert worker is not None, "the refit ended before its process was seen"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and caller.poll() is None:
            if list(output.glob(".*.tmp")):
                os.kill(worker, signal.SIGSTOP)
                if list(output.glob(".*.tmp")):  # still mid-write, now for good
                    os.kill(worker, signal.SIGKILL)
                    break
                os.kill(worker, signal.SIGCONT)
        else:
            pytest.fail("no write of the refit was caught in the middle")
        _, stderr = caller.communicate(timeout=60)
    finally:
        caller.kill()
        if worker is not None:  # never left paused by a failed assertion
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
    assert caller.returncode == 1 and "refit: its process ended without a result" in stderr, stderr
    assert not list(output.glob(".*.tmp"))


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _holds(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone, or another user's
        return False


def test_hpo_run_with_refit_trains_the_best_config_after_the_sweep(config_dir: Path, tmp_path: Path) -> None:
    """`training hpo run --refit DIR` (trials and refit in processes): the sweep's outcome, then the refit's as the
    last JSON line, its run folder tracing back to the best trial."""
    from training.execution import extract_lineage_from_best_model

    run = hpo_run(config_dir, tmp_path)
    assert run.returncode == 0, run.stderr
    outcome, refitted = (json.loads(line) for line in run.stdout.splitlines()[-2:])
    assert refitted["refit"]["outputs"] == str((tmp_path / "final").resolve())
    assert refitted["refit"]["status"] == "completed"
    assert 0.0 <= refitted["refit"]["metrics"]["entity_f1"] <= 1.0
    lineage = extract_lineage_from_best_model(tmp_path / "final")
    assert lineage.study is not None and lineage.study.trial_number == outcome["best"]["study"]["trial_number"]
    trained = (tmp_path / "final" / "metrics.json").stat().st_mtime_ns
    again = hpo_run(config_dir, tmp_path, "--force")  # the study has its trial: no sweep, the refit trains again
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "final" / "metrics.json").stat().st_mtime_ns > trained


@pytest.mark.parametrize("inside", [False, True], ids=["a file", "inside a file"])
@pytest.mark.parametrize("action", ["run", "resume"])
def test_a_refit_folder_that_is_or_lies_inside_a_file_is_refused_before_sweeping(
    config_dir: Path, tmp_path: Path, action: str, inside: bool
) -> None:
    # Inside a file, it was refused only once the sweep had run, naming the run folder rather than --refit.
    taken = tmp_path / "notes.txt"
    taken.write_text("a file\n")
    refit = taken / "final" if inside else taken
    command = [sys.executable, "-m", "training.cli", "hpo", action]
    if action == "run":
        command += ["--config-dir", str(config_dir), "--hpo", "quick"]
    command += ["--study-dir", str(tmp_path / "study"), "--refit", str(refit)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith(f"training hpo {action}: error:")]
    found = f"lies inside the file {taken}" if inside else "is a file"
    assert errors == [f"training hpo {action}: error: --refit {refit}: {found}; expected a folder for the final run"]
    assert not (tmp_path / "study").exists()


def test_hpo_resume_with_refit_finishes_a_moved_sweep_then_refits_on_the_moved_data(
    config_dir: Path, tmp_path: Path
) -> None:
    """`training hpo resume --study-dir MOVED --refit DIR --data MOVED`: the sweep's last trial, then the refit of
    its best trial, all in and from the folders where study and data lie now (the paths the sweep recorded are
    gone, and nothing is written there); the refit logs to the MLflow store the sweep was given (it logged nowhere
    without --mlflow-uri again)."""
    mlflow = pytest.importorskip("mlflow")
    from training.execution import extract_lineage_from_best_model

    shutil.copytree(config_dir, tmp_path / "config")
    hpo = [sys.executable, "-m", "training.cli", "hpo"]
    started = [*hpo, "run", "--config-dir", str(tmp_path / "config"), "--hpo", "quick", "--n-trials", "1"]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started += ["--study-dir", str(tmp_path / "study"), "--mlflow-uri", store]
    first = subprocess.run(started, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    study = (tmp_path / "study").rename(tmp_path / "moved-study")
    data = (tmp_path / "config" / "data" / "ner").rename(tmp_path / "moved-data")
    resumed = [*hpo, "resume", "--study-dir", str(study), "--storage", f"sqlite:///{study / 'study.db'}", "--json"]
    resumed += ["--n-trials", "2", "--data", str(data), "--refit", str(tmp_path / "final")]
    run = subprocess.run(resumed, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    outcome, refitted = (json.loads(line) for line in run.stdout.splitlines()[-2:])
    assert [trial["state"] for trial in outcome["trials"]] == ["complete", "complete"]
    assert outcome["study_dir"] == str(study.resolve()) and (study / "best_config.json").is_file()
    assert refitted["refit"]["status"] == "completed"
    lineage = extract_lineage_from_best_model(tmp_path / "final")
    assert lineage.study is not None and lineage.study.trial_number == outcome["best"]["study"]["trial_number"]
    assert not (tmp_path / "study").exists()
    client = mlflow.MlflowClient(tracking_uri=store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    assert len(client.search_runs(experiments, f"attributes.run_name = '{lineage.run_id}'")) == 1


def test_hpo_run_with_refit_on_a_started_study_refits_where_the_study_logs(config_dir: Path, tmp_path: Path) -> None:
    """`hpo run --refit DIR` again on a study begun with --mlflow-uri logged the refit nowhere unless given the URI
    again (its trials logged to the study's URI); it logs there, as `hpo resume --refit` does."""
    mlflow = pytest.importorskip("mlflow")
    from training.execution import extract_lineage_from_best_model

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started = [sys.executable, "-m", "training.cli", "hpo", "run", "--config-dir", str(config_dir), "--hpo", "quick"]
    started += ["--n-trials", "1", "--study-dir", str(tmp_path / "study"), "--mlflow-uri", store]
    first = subprocess.run(started, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    run = hpo_run(config_dir, tmp_path)  # the study has its trial: no sweep, then the refit
    assert run.returncode == 0, run.stderr
    lineage = extract_lineage_from_best_model(tmp_path / "final")
    client = mlflow.MlflowClient(tracking_uri=store)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    assert len(client.search_runs(experiments, f"attributes.run_name = '{lineage.run_id}'")) == 1


@pytest.mark.parametrize(("study", "got"), [(None, "NoneType None"), ("studies/ner", "str 'studies/ner'")])
def test_a_best_config_is_extracted_from_a_study_only(study: object, got: str) -> None:
    """A study folder or None raised "'str' object has no attribute 'user_attrs'"."""
    expected = r"expected an optuna.Study \(load_study\(study_dir\) opens a study folder\)"
    with pytest.raises(InputError, match=rf"^study: {expected}, got {got}$"):
        extract_best_config_from_study(study)


def test_the_best_config_of_a_copied_study_folder_names_its_own_storage(swept: tuple, tmp_path: Path) -> None:
    """A moved or copied study folder's best config (and so the lineage of its refit) named the storage where the
    sweep began, gone or another study's by then, not the one it was read from."""
    from training.hpo import load_study
    from training.hpo.storage import storage_location
    from training.hpo.study_folder import StudyFolder

    copy = tmp_path / "copy"
    shutil.copytree(swept[1], copy)
    best = extract_best_config_from_study(load_study(copy), study_dir=copy)
    assert best.study.storage == storage_location(None, StudyFolder(copy)) and str(copy.resolve()) in best.study.storage
