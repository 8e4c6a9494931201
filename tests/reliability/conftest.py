"""Shared pieces of the reliability suite: what it runs on, how it runs and kills real processes, and what it checks.

- `env`: the environment of every child process: offline, one intra-op thread per process (several processes share
  two cores, and torch's spinning OpenMP threads would slow each other down), a feature cache of this session;
  `single_thread`: the same thread count for torch work in the test process itself, for one module.
- `training_config`: a config folder for the tiny BERT whose `resumes/` holds 120 generated resumes (84 train,
  18 validation, 18 test); 3 epochs of batch 8 with an evaluation and a checkpoint every 5 steps.
- `sweep_config`: a config folder with 36 short generated resumes (all in train) and `hpo/quick.yaml`: 2 folds,
  one epoch per fold, learning rate and batch size tuned, 12 trials.
- `spawn(command, name)`: a `Child` process in its own process group, killed at the end of the test whatever happens.
- `training_command(*args)`: the command line of `training ARGS`; `run_cli(*args)` runs it to completion in a fresh
  process, killed after its timeout.
- `assert_readable(folder)`: every JSON, JSON-lines, YAML, safetensors and torch file under `folder` reads back.
- `checksums(folder)`: sha256 of every file, to show that a failed command changed nothing.
- `history(run)`: the evaluations a run folder's `metrics.json` records so far.
- `postgres_url`: a fresh database, as a storage URL with a password, on a PostgreSQL server of this session that
  listens on a unix socket only (skipped, with the reason, where it cannot start).
- `record_figure(name, value)`: a measured figure, shown in the test report and in the results table.

`pytest tests/reliability --reliability-results docs/reliability.md` rewrites the results table in that file (between
its `results:start` and `results:end` markers) from this run's outcomes and figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from data.generate import generate_corpus, write_corpus

ROOT = Path(__file__).resolve().parents[2]
FAST_POLL_S = 0.0005  # a checkpoint or storage write lasts milliseconds
RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"
STORAGE_PASSWORD = "pg-5ecret-Pa55"  # a planted secret: no file the toolkit writes may contain it
TRAIN_YAML = """\
backbone: tiny-bert
data: resumes
training:
  num_epochs: 3
  batch_size: 8
  learning_rate: 1.0e-3
  eval_steps: 5
  seed: 0
"""
HPO_YAML = """\
k_folds: 2
n_trials: 12
sampler: {type: tpe, seed: 7}
pruner: {type: none}
search_space:
  learning_rate: {type: loguniform, low: 3.0e-3, high: 2.0e-2}
  training.batch_size: {type: choice, values: [4, 8]}
  num_epochs: {type: fixed, value: 1}
"""


def write_config(folder: Path, train_yaml: str, corpus: dict[str, list[dict[str, object]]]) -> Path:
    """A config folder for the tiny BERT: `train.yaml`, `model/tiny-bert.yaml`, `data/resumes.yaml`, `resumes/`."""
    files = {
        "train.yaml": train_yaml,
        "model/tiny-bert.yaml": "backbone: tiny-bert\nmax_length: 64\nstride: 8\n",
        "data/resumes.yaml": "path: resumes\nformat: spans\n",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    write_corpus(folder / "resumes", corpus)
    return folder


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "COLUMNS": "200",
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
    }


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Torch work in this process on one thread, as in the children (see `env`); the count is restored afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def training_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("training"), TRAIN_YAML, generate_corpus(120, seed=3, max_sentences=4))


@pytest.fixture(scope="session")
def sweep_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = generate_corpus(36, seed=5, max_sentences=2)
    train = "backbone: tiny-bert\ndata: resumes\ntraining: {num_epochs: 1, batch_size: 8, seed: 0}\n"
    documents = [document for split in corpus.values() for document in split]
    folder = write_config(tmp_path_factory.mktemp("sweep"), train, {"train": documents})
    (folder / "hpo").mkdir()
    (folder / "hpo" / "quick.yaml").write_text(HPO_YAML, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def started_study(sweep_config: Path) -> Callable[..., Any]:
    """`started_study(study_dir, n_trials, storage=None)`: the quick sweep with one trial run in this process and the
    study's budget raised to `n_trials`, for workers to join."""
    from training.hpo import run_local_hpo_sweep
    from training.hpo.budget import Budget

    def start(study_dir: Path, n_trials: int, storage: str | None = None) -> Any:
        study = run_local_hpo_sweep(
            None,
            sweep_config / "hpo" / "quick.yaml",
            config_dir=sweep_config,
            study_dir=study_dir,
            n_trials=1,
            isolation="inprocess",
            storage=storage,
        )
        Budget(n_trials=n_trials, timeout_s=None).record(study)
        return study

    return start


@pytest.fixture(scope="session")
def best_config_for(training_config: Path) -> Callable[..., Any]:
    """`best_config_for(**fields)`: a `BestConfig` of one epoch of the training config, as a sweep would pick it."""
    from data.loaders import load_dataset
    from training.config import BestConfig, StudyRef, build_training_config

    config = build_training_config({"set": ["training.eval_steps=null"]}, training_config)
    data = config.data
    swept_on = load_dataset(data.path, format=data.format, labels=data.labels, overlap_policy=data.overlap_policy)

    def make(**fields: Any) -> BestConfig:
        study: dict[str, Any] = {
            "metric": "entity_f1",
            "direction": "maximize",
            "objective": 0.5,
            "trial_number": 3,
            "study_name": "reliability",
            "storage": "sqlite:///study.db",
            "dataset_fingerprint": swept_on.fingerprint,
        }
        own = {key: fields.pop(key) for key in list(fields) if key in StudyRef.model_fields}
        defaults = {"config": config, "hyperparameters": {"training.learning_rate": 1e-3}, "num_epochs": 1}
        return BestConfig(**(defaults | fields), study=StudyRef(**(study | own)))

    return make


def _training_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "training.cli", *map(str, args)]


@pytest.fixture(scope="session")
def training_command() -> Callable[..., list[str]]:
    """`training_command(*args)`: the command line of `training ARGS` in this interpreter."""
    return _training_command


@pytest.fixture(scope="session")
def run_cli(env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_training_command(*args), capture_output=True, text=True, env=env, timeout=timeout)

    return run


class Child:
    """A running command, in its own process group, whose output goes to a log file."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("w", encoding="utf-8") as output:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 180, poll: float = 0.01) -> None:
        """Poll `condition` until it holds; fail if the command ends first or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"ended before {what}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(poll)

    def kill_9_while(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        """kill -9 the command at a moment when `condition` holds (e.g. a staging folder exists).

        The command is frozen (SIGSTOP) as soon as `condition` is seen, and killed only if it still holds, so the
        kill lands inside that moment; when the moment has passed meanwhile it runs on and the next one is taken.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.wait_for(condition, what, max(0.0, deadline - time.monotonic()), poll=FAST_POLL_S)
            os.kill(self.pid, signal.SIGSTOP)
            self._wait_until_stopped()
            if condition():
                self.kill_9()
                return
            os.kill(self.pid, signal.SIGCONT)

    def _wait_until_stopped(self, timeout: float = 10) -> None:
        """Wait until every thread of the command is frozen: SIGSTOP is delivered asynchronously."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for task in Path(f"/proc/{self.pid}/task").glob("*/stat"):
                with contextlib.suppress(OSError):
                    states.append(task.read_text().rpartition(")")[2].split()[0])
            if all(state in "TtZX" for state in states):
                return
            time.sleep(0.001)
        pytest.fail(f"the command did not stop within {timeout} s of SIGSTOP")

    def kill_9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self, timeout: float = 300) -> int:
        """Wait for the command to end and return its exit code."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        """Kill whatever of the process group still runs (tests end with no child left)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def spawn(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Child]]:
    """`spawn(command, name)` starts a `Child` logging to `<tmp_path>/<name>.log`; all are killed at teardown."""
    children: list[Child] = []

    def start(command: list[str], name: str) -> Child:
        child = Child(command, tmp_path / f"{name}.log", env)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


def is_staging(path: Path, root: Path) -> bool:
    """Whether `path` lies in (or is) a hidden entry such as a `.checkpoint.x.tmp` staging folder."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _assert_readable(folder: Path, *, staging: bool = False) -> int:
    """Every JSON, JSON-lines, YAML, safetensors and torch file under `folder` reads back; returns how many.

    Hidden staging entries of interrupted writes are skipped unless `staging` is set.
    """
    import numpy as np
    import torch
    from safetensors import safe_open

    checked = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or (not staging and is_staging(path, folder)):
            continue
        suffix = path.suffix
        try:
            if suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif suffix == ".jsonl":
                [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            elif suffix in (".yaml", ".yml"):
                yaml.safe_load(path.read_text(encoding="utf-8"))
            elif suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as weights:
                    [weights.get_tensor(name) for name in weights.keys()]  # noqa: SIM118 - not a dict
            elif suffix in (".pt", ".bin"):
                torch.load(path, map_location="cpu", weights_only=True)
            elif suffix == ".npz":
                with np.load(path, allow_pickle=False) as archive:
                    [archive[name] for name in archive.files]
            else:
                continue
        except Exception as error:
            pytest.fail(f"{path} does not read back: {type(error).__name__}: {error}")
        checked += 1
    return checked


def _checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _history(run: Path) -> list[dict[str, Any]]:
    """The evaluations recorded in a run folder's `metrics.json` so far ([] before it has one)."""
    try:
        return json.loads((run / "metrics.json").read_text(encoding="utf-8"))["history"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.fixture(scope="session")
def assert_readable() -> Callable[..., int]:
    """`assert_readable(folder, staging=False)`: every JSON, YAML, safetensors and torch file reads back."""
    return _assert_readable


@pytest.fixture(scope="session")
def checksums() -> Callable[[Path], dict[str, str]]:
    """`checksums(folder)`: sha256 of every file under `folder`, by relative path."""
    return _checksums


@pytest.fixture(scope="session")
def history() -> Callable[[Path], list[dict[str, Any]]]:
    """`history(run)`: the evaluations in a run folder's `metrics.json` so far."""
    return _history


# -- PostgreSQL --------------------------------------------------------------------------------------------------------


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Path]:
    """A PostgreSQL server of this session; yields the folder of its unix socket (it listens on no TCP port).

    It runs as the `postgres` user when the tests run as root (PostgreSQL refuses root). Skipped, with the reason,
    where the server binaries or the driver are missing or the server does not start.
    """
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install -y postgresql")
    pytest.importorskip("psycopg2", reason='the PostgreSQL driver is missing: pip install "training-hpo[postgres]"')
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a 'postgres' user (or runuser) to start PostgreSQL as")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="pg-"))  # short: a unix socket path has at most 107 bytes
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    server = [*as_postgres, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60"]
    options = f"-k {root} -c listen_addresses='' -c fsync=off -c max_connections=50"
    try:
        created = subprocess.run(
            [*as_postgres, initdb, "-D", str(data), "--auth", "trust", "-U", "postgres", "--no-sync"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if created.returncode:
            pytest.skip(f"initdb could not create a database cluster: {created.stderr.strip()[-300:]}")
        started = subprocess.run([*server, "-o", options, "start"], capture_output=True, text=True, timeout=90)
        if started.returncode:
            reason = log.read_text(errors="replace")[-300:] if log.is_file() else started.stderr
            pytest.skip(f"PostgreSQL did not start: {reason.strip()}")
        yield root
    finally:
        subprocess.run([*server, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Path) -> Iterator[str]:
    """A fresh database on the session's server, as a storage URL with a password (which trust authentication
    ignores): the studies of different tests never meet. Dropped afterwards with the connections that the test's
    storages still hold (until garbage collection), so that they do not add up to the server's limit."""
    import psycopg2

    name = f"studies_{uuid.uuid4().hex[:12]}"

    def execute(statement: str) -> None:
        connection = psycopg2.connect(host=str(postgres_server), user="postgres", dbname="postgres", connect_timeout=30)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    execute(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg2://postgres:{STORAGE_PASSWORD}@/{name}?host={postgres_server}"
    execute(f"DROP DATABASE {name} WITH (FORCE)")


# -- results -----------------------------------------------------------------------------------------------------------

AREAS = {"fault": "fault", "load": "load", "input": "bad input", "security": "security"}


@dataclass
class _Row:
    area: str
    test: str
    what: str
    outcomes: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)


_ROWS: dict[str, _Row] = {}


def _row(item: pytest.Item) -> _Row:
    module = Path(str(item.fspath)).stem
    name = getattr(item, "originalname", item.name)
    key = f"{module}::{name}"
    if key not in _ROWS:
        paragraph = (inspect.getdoc(getattr(item, "function", None)) or name).split("\n\n")[0]
        _ROWS[key] = _Row(AREAS.get(module.split("_")[1], module), key, " ".join(paragraph.split()))
    return _ROWS[key]


@pytest.fixture
def record_figure(request: pytest.FixtureRequest, record_property: Callable[[str, object], None]) -> Callable:
    """`record_figure(name, value)`: a measured figure of this test, for the report and the results table."""

    def record(name: str, value: object) -> None:
        record_property(name, value)
        callspec = getattr(request.node, "callspec", None)
        label = f"{name} [{callspec.id}]" if callspec is not None else name
        text = f"{value:,.1f}" if isinstance(value, float) else str(value)
        _row(request.node).figures[label] = text
        print(f"{label}: {text}")

    return record


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-results",
        metavar="MARKDOWN",
        help="rewrite the results table between the results markers of this file (e.g. docs/reliability.md)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if Path(str(item.fspath)).parent == Path(__file__).parent and (report.when == "call" or report.outcome != "passed"):
        outcome = report.outcome
        if report.skipped and isinstance(report.longrepr, tuple):
            outcome = f"skipped: {report.longrepr[2].removeprefix('Skipped: ')}"
        _row(item).outcomes.append(outcome)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--reliability-results", default=None)
    if not target or not _ROWS:
        return
    path = Path(target)
    text = path.read_text(encoding="utf-8")
    if RESULTS_START not in text or RESULTS_END not in text:
        raise pytest.UsageError(f"{path}: no {RESULTS_START} ... {RESULTS_END} block to rewrite")
    lines = ["| area | test | what it proves | result | measured |", "| --- | --- | --- | --- | --- |"]
    for row in sorted(_ROWS.values(), key=lambda row: (list(AREAS.values()).index(row.area), row.test)):
        lines.append(
            f"| {row.area} | `{row.test}` | {row.what} | {_summary(row.outcomes)} | "
            + ", ".join(f"{name} {value}" for name, value in row.figures.items())
            + " |"
        )
    table = "\n".join(lines)
    block = re.compile(re.escape(RESULTS_START) + ".*?" + re.escape(RESULTS_END), re.S)
    path.write_text(block.sub(lambda _: f"{RESULTS_START}\n{table}\n{RESULTS_END}", text), encoding="utf-8")


def _summary(outcomes: list[str]) -> str:
    passed = outcomes.count("passed")
    others = sorted({outcome for outcome in outcomes if outcome != "passed"})
    if not others:
        return "passed" if passed == 1 else f"passed ({passed} cases)"
    return "; ".join([*([f"{passed} passed"] if passed else []), *others])
