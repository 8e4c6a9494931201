"""`training hpo ...` through the real command line: exit code 0 with results, 2 with one line for bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from training.config import BestConfig


def training(*args: str | Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "training.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if re.match(r"training hpo \w+: error:", line)]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_run_prints_json_and_best_and_report_read_the_study(config_dir: Path, tmp_path: Path) -> None:
    study_dir = tmp_path / "my study"
    run = training(
        "hpo", "run", "--config-dir", config_dir, "--hpo", "quick", "--study-dir", study_dir, "--n-trials", "2",
        "--inprocess", "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.splitlines()[-1])  # after the sweep's events, one per line
    assert outcome["study_name"] == "quick" and outcome["study_dir"] == str(study_dir.resolve())
    assert [trial["state"] for trial in outcome["trials"]] == ["complete", "complete"]
    assert [(trial["device"], trial["fail_reason"]) for trial in outcome["trials"]] == [("default", None)] * 2
    assert set(outcome["trials"][0]["params"]) == {
        "training.learning_rate",
        "training.batch_size",
        "training.num_epochs",
    }
    assert BestConfig.model_validate(outcome["best"]).num_epochs == 1

    best = training("hpo", "best", "--study-dir", study_dir, "--json")
    assert best.returncode == 0, best.stderr
    assert BestConfig.model_validate_json(best.stdout) == BestConfig.load(study_dir / "best_config.json")

    report = training("hpo", "report", "--study-dir", study_dir)
    assert report.returncode == 0, report.stderr
    assert (study_dir / "report" / "index.html").is_file()
    assert (study_dir / "report" / "interactive.html").is_file()
    assert f"live view: optuna-dashboard 'sqlite:///{(study_dir / 'study.db').resolve()}'\n" in report.stdout


def test_quiet_prints_the_outcome_without_progress(config_dir: Path, tmp_path: Path) -> None:
    """`hpo run` had no `--quiet` (train, final and demo have one): a log got a line per epoch of every fold."""
    study_dir = tmp_path / "study"
    args = ["--config-dir", config_dir, "--hpo", "quick", "--study-dir", study_dir, "--n-trials", "1", "--inprocess"]
    run = training("hpo", "run", *args, "--quiet", "--refit", tmp_path / "final")
    assert run.returncode == 0, run.stderr
    table, trial, best, refit = run.stdout.splitlines()
    assert table.split()[:3] == ["trial", "state", "objective"] and trial.split()[:2] == ["0", "complete"]
    assert best == f"best config: {study_dir / 'best_config.json'}" and refit.startswith("refit ")
    assert run.stderr == ""


@pytest.mark.parametrize(("options", "mode"), [([], "plain"), (["--json"], "json"), (["--json", "--quiet"], "quiet")])
def test_quiet_drops_the_events_of_json_too(options: list[str], mode: str) -> None:
    from training.cli.main import build_parser
    from training.hpo.cli import _view_mode

    args = build_parser().parse_args(["hpo", "resume", "--study-dir", "s", *options])
    assert _view_mode(args) == mode  # pytest's stdout is no terminal


def test_a_missing_data_path_is_never_taken_for_a_config_name(config_dir: Path, tmp_path: Path) -> None:
    """`--data /x/corpus` with /x/corpus.yaml there was told it named a data config (joined, the path won)."""
    (tmp_path / "corpus.yaml").write_text("format: tokens\n")
    args = ["run", "--hpo", "tiny", "--data", str(tmp_path / "corpus"), "--config-dir", str(config_dir)]
    message = one_line_error(training("hpo", *args, "--study-dir", str(tmp_path / "study")))
    assert str(tmp_path / "corpus") in message and "hpo run --data takes" not in message


@pytest.mark.parametrize("action", ["run --hpo x --config-dir c", "resume --study-dir s", "worker --study-dir s"])
def test_data_path_names_the_data_as_in_train_splits_and_final(action: str) -> None:
    """`hpo run --data-path X`, typed as the other commands take it, was refused as an unknown argument."""
    from training.cli.main import build_parser

    parsed = build_parser().parse_args(["hpo", *action.split(), "--data-path", "~/corpus"])
    assert parsed.data == os.path.expanduser("~/corpus")
    azure = ["hpo", "azure", "--hpo", "x", "--config-dir", "c", "--data-path", "azureml:ner:1"]
    assert build_parser().parse_args(azure).data == "azureml:ner:1"


NO_DATASETS = pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="hub input needs datasets")


@pytest.mark.parametrize("data", ["./ner", pytest.param("hf://org/ner", marks=NO_DATASETS)])
def test_data_is_read_as_written(config_dir: Path, tmp_path: Path, data: str) -> None:
    """`--data` was read as a Path: `./ner` (beside data/ner.yaml) was told it named a data config, and the hub
    dataset `hf://org/ner` became `<cwd>/hf:/org/ner`."""
    args = ["run", "--hpo", "tiny", "--config-dir", str(config_dir), "--study-dir", str(tmp_path / "study")]
    message = one_line_error(training("hpo", *args, "--data", data))
    assert message.startswith(f"training hpo run: error: {Path.cwd() / 'ner' if data == './ner' else data}: "), message


@pytest.fixture(scope="module")
def quick_study(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a one-trial study of `hpo/quick.yaml`."""
    from training.hpo import run_local_hpo_sweep

    study_dir = tmp_path_factory.mktemp("quick") / "study"
    hpo = config_dir / "hpo" / "quick.yaml"
    run_local_hpo_sweep(None, hpo, config_dir=config_dir, study_dir=study_dir, n_trials=1, isolation="inprocess")
    return study_dir


@pytest.fixture
def read_only_file() -> Iterator[Callable[[Path], None]]:
    """Makes a file read-only: by its mode, or for root (who writes it all the same) immutable (`chattr +i`)."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
        elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", path], capture_output=True).returncode:
            pytest.skip("root writes a read-only file, and chattr +i cannot make it immutable here")
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", path], check=True)  # so that tmp_path can be removed


@pytest.mark.parametrize("action", ["resume", "worker"])
def test_a_read_only_storage_is_named_before_anything_is_written(
    quick_study: Path, tmp_path: Path, read_only_file: Callable[[Path], None], action: str
) -> None:
    """A read-only study.db ended `hpo resume` as an internal error, Optuna's "invalid data in the commit" (exit 1); a
    read-only journal as "[Errno 1] Operation not permitted"."""
    study = tmp_path / "study"
    shutil.copytree(quick_study, study)
    read_only_file(study / "study.db")
    message = one_line_error(training("hpo", action, "--study-dir", study, "--inprocess"))
    assert message.endswith(
        f"{study / 'study.db'}': the file is read-only, so no trial can be recorded; make it "
        "writable, or copy the study folder where it can be written"
    ), message
    assert training("hpo", "best", "--study-dir", study).returncode == 0  # reading it needs no write


@NO_DATASETS
def test_resume_reads_a_hub_dataset_as_written(quick_study: Path) -> None:
    """`hpo resume --data hf://org/ner` looked for the local folder `hf:/org/ner`."""
    message = one_line_error(training("hpo", "resume", "--study-dir", quick_study, "--data", "hf://org/ner"))
    assert message.startswith("training hpo resume: error: hf://org/ner: cannot load the hub dataset"), message


@pytest.mark.parametrize("action", ["resume", "worker"])
def test_resume_and_worker_say_the_study_data_is_gone(config_dir: Path, tmp_path: Path, action: str) -> None:
    """Both said only '<data>: no such file or folder' where `hpo run` says whose data it was and what to do; a worker,
    which joins the study as it is, was told to begin a new study folder, and one on another machine than the sweep's
    was told the data is gone, not that it lies on that machine."""
    import shutil

    from training.hpo import run_local_hpo_sweep
    from training.hpo.storage import open_storage, open_study, study_location
    from training.hpo.sweep_settings import SweepSettings

    configs, study_dir = tmp_path / "configs", tmp_path / "study"
    shutil.copytree(config_dir, configs)
    hpo = configs / "hpo" / "quick.yaml"
    run_local_hpo_sweep(None, hpo, config_dir=configs, study_dir=study_dir, n_trials=1, isolation="inprocess")
    recorded = configs / "data" / "ner"
    recorded.rename(configs / "data" / "moved")
    message = one_line_error(training("hpo", action, "--study-dir", study_dir))
    ran = f"training hpo {action}: error: {study_dir}: study 'quick' was run on {recorded} ("
    assert message.startswith(ran), message
    anew = ", or begin a new study folder" if action == "resume" else ""
    assert message.endswith(f"), which is gone: pass that data again where it lies now (data_path, --data){anew}"), (
        message
    )

    location, name = study_location(study_dir)
    study = open_study(name, open_storage(location), location)
    record = SweepSettings.load(study, location)
    record.model_copy(update={"machine": "gpu-node-7"}).save(study)  # the sweep began on another machine
    elsewhere = ["--single-host"] if action == "worker" else []  # a file storage: a worker from another host
    message = one_line_error(training("hpo", action, "--study-dir", study_dir, *elsewhere))
    assert message.startswith(ran), message
    assert message.endswith("on gpu-node-7, not on this one: pass its copy here as data_path (--data)"), message


def test_run_continues_a_study_begun_with_a_space_refused_since(config_dir: Path, tmp_path: Path) -> None:
    """A study begun with a one-value choice (before such spaces were refused): `hpo resume` continued it, `hpo run`
    refused it; a new study is still refused the space."""
    from training.hpo import create_search_space, run_local_hpo_sweep

    hpo = tmp_path / "one.yaml"
    hpo.write_text((config_dir / "hpo" / "quick.yaml").read_text().replace("[4, 8]", "[4]"))
    space, study_dir = create_search_space(hpo, recorded=True), tmp_path / "study"
    run_local_hpo_sweep(None, space, config_dir=config_dir, study_dir=study_dir, n_trials=1, isolation="inprocess")
    args = ["hpo", "run", "--config-dir", config_dir, "--hpo", hpo, "--n-trials", "2", "--inprocess", "--json"]
    run = training(*args, "--study-dir", study_dir)
    assert run.returncode == 0, run.stderr
    trials = json.loads(run.stdout.splitlines()[-1])["trials"]
    assert [trial["params"]["training.batch_size"] for trial in trials] == [4, 4]
    message = one_line_error(training(*args, "--study-dir", tmp_path / "new"))
    assert "training.batch_size.values: one value is not searched" in message and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--hpo", "nope"], "hpo/nope.yaml: no such hpo config; available: quick, tiny"),
        (["run", "--hpo", "tiny", "--n-trials", "0"], "n_trials: expected greater than or equal to 1, got 0"),
        (["run", "--hpo", "tiny", "--storage", "nosuch://x"], "storage 'nosuch://x'"),
        (["run", "--hpo", "tiny", "--storage", ".."], "': not an Optuna journal file (IsADirectoryError: "),
        (["best", "--study-dir", "missing"], "missing: not a study folder (no study.json)"),
        (["worker"], "name the study: a study folder, or a storage URL together with a study name"),
        (["run", "--hpo", "tiny", "--force"], "--force: only with --refit DIR"),
        (  # `train --data` takes a config name: the same word here named a missing path
            ["run", "--hpo", "tiny", "--data", "ner"],
            "--data ner: no such file or folder; hpo run --data takes the data folder or file, and the data config (",
        ),
        (["resume", "--study-dir", "missing", "--force"], "--force: only with --refit DIR"),
        (["run", "--hpo", "quick", "--backbone", "nope"], "backbone 'nope' (--backbone): model.backbone 'nope': "),
    ],
)
def test_bad_input_exits_2_with_one_line(config_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    if args[0] == "run":
        args = [*args, "--config-dir", str(config_dir), "--study-dir", str(tmp_path / "study")]
    assert message in one_line_error(training("hpo", *args))


def test_no_data_anywhere_names_the_option_that_gives_it(config_dir: Path, tmp_path: Path) -> None:
    """The CLI said "pass dataset= or data_path=", the Python API's words, to a command line."""
    configs = tmp_path / "configs"
    shutil.copytree(config_dir, configs)
    (configs / "data" / "ner.yaml").write_text("format: spans\nlabels: [PER, ORG, LOC]\n", encoding="utf-8")
    args = ["run", "--hpo", "tiny", "--config-dir", configs, "--study-dir", tmp_path / "study"]
    expected = "no data: pass data_path (--data-path) or dataset, or set data.path in the data config"
    assert one_line_error(training("hpo", *args)) == f"training hpo run: error: {expected}"
    assert not (tmp_path / "study").exists()


def test_a_refit_folder_holding_a_run_no_refit_made_is_refused_before_the_sweep(config_dir: Path, tmp_path: Path):
    # It swept first, then the refit was refused, leaving its job.json in the folder of that other run.
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}", encoding="utf-8")
    args = ["run", "--hpo", "tiny", "--config-dir", config_dir, "--study-dir", tmp_path / "study", "--refit", run]
    refused = f"--refit {run}: holds a training run that no refit made (no job.json); choose another folder, or train"
    assert refused in one_line_error(training("hpo", *args))
    assert not (tmp_path / "study").exists() and sorted(path.name for path in run.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{not json", "study.json: not a readable study manifest ("),
        ('{"format": "training.hpo-study", "study_name": "x"}', "study.json: storage: required key is missing"),
        ('{"format": "other", "study_name": "x", "storage": "y"}', "study.json: format: expected 'training.hpo-study'"),
    ],
)
def test_a_bad_study_manifest_is_named(tmp_path: Path, manifest: str, message: str) -> None:
    (tmp_path / "study.json").write_text(manifest, encoding="utf-8")
    assert message in one_line_error(training("hpo", "best", "--study-dir", tmp_path))


def test_a_report_folder_that_is_or_lies_inside_a_file_is_named(tmp_path: Path) -> None:
    # It was "[Errno 17] File exists", exit 1, as if the machine had failed; inside a file, it named index.html.
    import optuna

    from training.hpo.storage import open_storage, storage_location
    from training.hpo.study_folder import StudyFolder, StudyManifest

    folder, location = StudyFolder(tmp_path), storage_location(None, StudyFolder(tmp_path))
    optuna.create_study(study_name="empty", storage=open_storage(location))
    folder.write_manifest(StudyManifest(study_name="empty", storage=location))
    taken = tmp_path / "report.html"
    taken.write_text("an earlier report\n", encoding="utf-8")
    for out, found in ((taken, "is a file"), (taken / "report", f"lies inside the file {taken}")):
        line = one_line_error(training("hpo", "report", "--study-dir", tmp_path, "--output", out))
        assert line == f"training hpo report: error: {out}: {found}; expected a folder for the report"


def test_a_study_folder_that_is_or_lies_inside_a_file_is_named_before_any_work(
    config_dir: Path, tmp_path: Path
) -> None:
    # It was "[Errno 17] File exists" (or "[Errno 20] Not a directory"), exit 1, once the data had been loaded.
    taken = tmp_path / "notes.txt"
    taken.write_text("keep\n", encoding="utf-8")
    expected = "expected a study folder (an existing one or a new path)"
    for study_dir, found in ((taken, "is a file"), (taken / "study", f"lies inside the file {taken}")):
        arguments = ["--config-dir", config_dir, "--hpo", "quick", "--study-dir", study_dir]
        line = one_line_error(training("hpo", "run", *arguments))
        assert line == f"training hpo run: error: {study_dir}: {found}; {expected}"
    assert taken.read_text(encoding="utf-8") == "keep\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_training_run_folder_is_refused_as_a_study_folder_before_any_work(
    config_dir: Path, quick_study: Path, tmp_path: Path
) -> None:
    # `hpo run --study-dir RUN` wrote study.json, study.db, splits.json and trials/ among the run's files.
    run = tmp_path / "run"
    shutil.copytree(quick_study / "trials" / "0" / "fold-0", run)
    before = sorted(run.rglob("*"))
    arguments = ["--config-dir", config_dir, "--hpo", "quick", "--study-dir", run, "--inprocess"]
    line = one_line_error(training("hpo", "run", *arguments))
    assert line.startswith(f"training hpo run: error: {run}: holds a training run (config.yaml, metrics.json, "), line
    assert line.endswith("), where the study's files would mix with the run's; choose another study folder"), line
    assert sorted(run.rglob("*")) == before


def test_another_folder_s_study_is_refused_to_a_new_study_folder_before_any_work(
    config_dir: Path, quick_study: Path, tmp_path: Path
) -> None:
    # `hpo run --study-dir NEW --storage <another folder's>` read the data and checked the model before it was refused,
    # and left NEW/.study.lock behind.
    new, storage = tmp_path / "new", f"sqlite:///{quick_study / 'study.db'}"
    arguments = ["--config-dir", config_dir, "--hpo", "quick", "--study-dir", new, "--storage", storage, "--inprocess"]
    line = one_line_error(training("hpo", "run", *arguments))
    assert not new.exists()
    held = f"storage {storage!r} holds the study 'quick' of the study folder {quick_study}, not this folder's; "
    assert line.startswith(f"training hpo run: error: {new}: {held}continue it there (`training hpo resume "), line


def test_a_report_goes_into_a_new_folder_or_an_earlier_report(
    config_dir: Path, quick_study: Path, tmp_path: Path
) -> None:
    # `hpo report --output configs` (and `training report STUDY --output configs`) wrote index.html, interactive.html,
    # trials.txt and PNG plots among the config files. Both commands are refused by the report writer's one check (`hpo
    # report` checked its --output a first time, naming the option where `training report` did not).
    configs, run, study = tmp_path / "configs", tmp_path / "run", tmp_path / "study"
    shutil.copytree(config_dir, configs)
    shutil.copytree(quick_study / "trials" / "0" / "fold-0", run)
    shutil.copytree(quick_study, study)
    before = sorted(tmp_path.rglob("*"))
    for taken in (configs, run, study):
        refused = (
            f"{taken}: not a report folder, and the report would write its pages and plots among its files; write to "
            "a new folder (or an earlier one)"
        )
        assert one_line_error(training("hpo", "report", "--study-dir", quick_study, "--output", taken)) == (
            f"training hpo report: error: {refused}"
        )
        completed = training("report", quick_study, "--output", taken)
        assert (completed.returncode, completed.stderr.splitlines()) == (2, [f"training report: error: {refused}"])
    assert sorted(tmp_path.rglob("*")) == before
    for _ in range(2):  # the second time over its own report; `--out`, its former name, still names --output
        completed = training("hpo", "report", "--study-dir", quick_study, "--out", tmp_path / "report")
        assert completed.returncode == 0, completed.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_a_report_folder_that_cannot_be_written_is_named_before_any_work(
    quick_study: Path, tmp_path: Path, read_only_file: Callable[[Path], None]
) -> None:
    # Each ended as a bare OSError (exit 1) once the report was drawn.
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only_file(locked)
    for out, reason in (
        (Path("/proc/x"), r"cannot be created \(No such file or directory\); expected a report folder"),
        (locked, r"cannot be written \(.+\); choose another path"),
    ):
        expected = rf"{re.escape(str(out))}: {reason}"
        line = one_line_error(training("hpo", "report", "--study-dir", quick_study, "--output", out))
        assert re.fullmatch(f"training hpo report: error: {expected}", line), line
        completed = training("report", quick_study, "--output", out)
        assert completed.returncode == 2 and re.fullmatch(f"training report: error: {expected}\n", completed.stderr)
    assert list(locked.iterdir()) == []


def test_a_study_folder_holding_a_run_is_reported_as_the_study(quick_study: Path, tmp_path: Path) -> None:
    # `training report` took a study folder that `training train --output` had written a run into for that run.
    study = tmp_path / "study"
    shutil.copytree(quick_study, study)
    shutil.copy(study / "trials" / "0" / "fold-0" / "metrics.json", study)
    completed = training("report", study, "--output", tmp_path / "report")
    assert completed.returncode == 0, completed.stderr
    assert "<title>Study quick</title>" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")


def test_report_and_resume_print_the_latest_trials_of_a_large_study(quick_study: Path, tmp_path: Path) -> None:
    """Both printed a row for every trial: a study of 3,000 trials scrolled 3,000 rows by."""
    import optuna

    from training.hpo.storage import load_study

    study_dir = tmp_path / "study"
    shutil.copytree(quick_study, study_dir)
    study = load_study(study_dir)
    first = study.trials[0]
    study.add_trials(
        optuna.trial.create_trial(
            value=first.value, params=first.params, distributions=first.distributions, user_attrs=first.user_attrs
        )
        for _ in range(24)
    )
    left_out = "5 earlier trials left out; the report's trials.txt (`training hpo report`) lists every trial"
    report = training("hpo", "report", "--study-dir", study_dir, "--output", tmp_path / "report")
    resume = training("hpo", "resume", "--study-dir", study_dir, "--n-trials", "1", "--inprocess", "--quiet")
    for completed in (report, resume):
        assert completed.returncode == 0, completed.stderr
        lines = completed.stdout.splitlines()
        assert [int(line.split()[0]) for line in lines if re.match(r"\d+  ", line)] == list(range(5, 25))
        assert left_out in lines
    assert len((tmp_path / "report" / "trials.txt").read_text(encoding="utf-8").splitlines()) == 1 + 25


@pytest.mark.parametrize(
    ("options", "named"),
    [(["--data-path", "other.conll"], "--data-path applies"), (["--encoding", "latin-1", "--columns", "0,-1"],
     "--encoding, --columns apply")],
)  # fmt: skip
def test_a_study_report_refuses_the_data_options_of_a_run_s_report(
    quick_study: Path, tmp_path: Path, options: list[str], named: str
) -> None:
    """`training report STUDY --data-path X` wrote the study's report as if X had been read: the data options choose
    the data of a run's entity-type confusion, which a study's report has none of."""
    completed = training("report", quick_study, *options, "--output", tmp_path / "report")
    assert (completed.returncode, completed.stderr.splitlines()) == (
        2,
        [
            f"training report: error: {quick_study}: {named} to a run folder's report only (the data of its "
            f"entity-type confusion), not to a study folder's; leave {'it' if 'applies' in named else 'them'} out"
        ],
    )
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("name", ["..", "", "../elsewhere"])
def test_a_study_name_that_is_no_folder_name_is_refused_as_the_default_folder(
    config_dir: Path, tmp_path: Path, name: str
) -> None:
    # The study went to studies/<name>: `..` put its database, trials and cleanup into the working folder.
    hpo = tmp_path / "hpo.yaml"
    hpo.write_text(f"name: {name!r}\n" + (config_dir / "hpo" / "quick.yaml").read_text(), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    command = [sys.executable, "-m", "training.cli", "hpo", "run", "--config-dir", config_dir, "--hpo", hpo]
    result = subprocess.run([*map(str, command), "--inprocess"], capture_output=True, text=True, timeout=180, cwd=work)
    assert one_line_error(result).endswith(
        f"study name {name!r}: cannot be a folder of studies/ (one name, without '/', not '.' or '..'); pass "
        "--study-dir, or rename the study"
    )
    assert not list(work.iterdir())


def test_a_bad_search_space_file_is_named(config_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search_space:\n  batch_size: {type: int, low: 2, high: 4, step: 5}\n", encoding="utf-8")
    line = one_line_error(training("hpo", "run", "--config-dir", config_dir, "--hpo", bad, "--study-dir", tmp_path))
    assert line.endswith(f"{bad}: search_space.training.batch_size: step 5 is larger than the range 2..4")


def test_a_search_space_the_config_refuses_is_named_before_any_trial(config_dir: Path, tmp_path: Path) -> None:
    # It failed trial after trial with the same config error (model/tiny-bert.yaml has stride 8).
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_trials: 2\nsearch_space:\n  max_length: {type: choice, values: [64, 16]}\n", encoding="utf-8")
    study_dir = tmp_path / "study"
    line = one_line_error(training("hpo", "run", "--config-dir", config_dir, "--hpo", bad, "--study-dir", study_dir))
    assert line.endswith(
        "search_space: model.max_length=16 does not fit the config: model.stride: must be below half of max_length "
        "(16), got 8"
    )
    assert not study_dir.exists()


@pytest.mark.parametrize("action", ["run", "resume", "worker"])
def test_each_action_says_where_a_started_study_logs(action: str) -> None:
    """`hpo run --help` said it logs to tracking.mlflow, though run again on a study it logs where the study began."""
    result = training("hpo", action, "--help")
    assert "(default: the URI the sweep was started with, else tracking.mlflow)" in " ".join(result.stdout.split())


def test_an_unknown_option_is_refused_by_its_action() -> None:
    """It was refused as `training: error:` under the usage of `training`, not of `training hpo best`."""
    result = training("hpo", "best", "--bogus")
    assert result.returncode == 2 and result.stderr.startswith("usage: training hpo best ")
    assert result.stderr.splitlines()[-1] == "training hpo best: error: unrecognized arguments: --bogus"


def test_hpo_is_listed_by_the_training_command() -> None:
    result = training("--help")
    assert result.returncode == 0 and "hpo" in result.stdout


def test_failed_trials_print_their_reason_without_a_traceback(config_dir: Path, tmp_path: Path) -> None:
    # Optuna logged each failed trial with a traceback (two, chained) under the view's line saying why it failed.
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_trials: 2\nmax_failed_trials: 2\nsearch_space:\n  num_epochs: {type: fixed, value: 1}\n")
    cache = tmp_path / "study" / "cache"  # a file where the features go: every trial fails writing them
    cache.parent.mkdir()
    cache.write_text("not a folder\n")
    args = ["--hpo", bad, "--study-dir", tmp_path / "study", "--inprocess"]
    result = training("hpo", "run", "--config-dir", config_dir, *args)
    line = one_line_error(result)
    assert "2 trials failed in a row (hpo.max_failed_trials 2); last reason: " in line
    reason = line.split("last reason: ", 1)[1]
    assert reason.startswith(f"{cache}/features-")
    assert reason.endswith(f"lies inside the file {cache}; expected the path of a file to write")
    assert "failed with" not in result.stderr and "trial 0 failed" not in result.stderr  # Optuna's line, and ours
    assert [line.split("] ", 1)[1] for line in result.stdout.splitlines() if "failed:" in line] == [
        f"trial {number} failed: {reason}; best so far: none yet" for number in (0, 1)
    ]
