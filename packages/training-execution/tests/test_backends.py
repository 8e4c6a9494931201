"""Backends: in-process, a fresh subprocess and torchrun produce the same run folder; a crashing child is reported."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from training.common.cores import PROCESSES_PER_CORE, usable_cores
from training.common.errors import ConfigError, ExecutionError
from training.config import BestConfig, TrainingConfig
from training.core.run_context import process_slots
from training.execution import JobSpec, execute_final_training, get_backend
from training.execution.backends import InProcessBackend, SubprocessBackend, TorchrunBackend, runner_command
from training.execution.handle import JobHandle, ProcessJob

RUN_FILES = {"config.yaml", "metrics.json", "model", "lineage.json", "job.json", "train.log"}


def layout(job: JobHandle) -> tuple[set[str], set[str]]:
    """The run folder's entries (the child's console log aside) and the model folder's files."""
    entries = {path.name for path in job.output_dir.iterdir()} - {"job.log"}
    return entries, {path.name for path in job.model_dir.iterdir()}


def test_subprocess_backend_runs_the_runner_in_a_fresh_process(
    best_config: BestConfig, final_run: JobHandle, tmp_path: Path, planted_secret: Callable[..., None]
) -> None:
    job = execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess", wait=False)
    spec_file = str(tmp_path / "run" / "job.json")
    assert job.command == [sys.executable, "-m", "training.execution.runner", spec_file, "--job-id", job.id]
    assert job.status in ("running", "completed")

    assert job.wait(timeout=120) == "completed" and job.status == "completed"
    assert layout(job) == layout(final_run) and layout(job)[0] >= RUN_FILES
    assert "done: best entity_f1" in job.logs()
    record = json.loads((job.output_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["world_size"] == 1
    # Same config and data as the in-process run: the same job, and (seeded, deterministic on CPU) the same result.
    assert job.id == final_run.id
    assert record["best"] == json.loads((final_run.output_dir / "metrics.json").read_text())["best"]
    planted_secret(job.output_dir, job.logs(1000))


def test_a_child_that_cannot_find_its_data_fails_with_exit_code_and_log_tail(
    best_config: BestConfig, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-data"
    with pytest.raises(ExecutionError) as caught:  # other data: the child is the first to read it
        execute_final_training(
            best_config, output_dir=tmp_path / "run", data_path=missing, backend="subprocess", other_data=True
        )
    log = tmp_path / "run" / "job.log"
    assert re.fullmatch(
        rf"job final-\w+ \(subprocess\) failed: exit code 2: {re.escape(str(missing))}: no such file or folder; its "
        rf"whole output is in {re.escape(str(log))}",
        str(caught.value),
    )
    assert caught.value.returncode == 2 and caught.value.exit_code == 2


def test_a_corrupted_job_file_crashes_the_child_with_exit_code_2(tmp_path: Path) -> None:
    spec_file = tmp_path / "job.json"
    spec_file.write_text('{"format": 1, "job_id": ')
    job = ProcessJob("broken", "subprocess", tmp_path, tmp_path / "job.log", runner_command(spec_file))
    with pytest.raises(ExecutionError, match=r"^job broken \(subprocess\) failed: exit code 2: ") as caught:
        job.wait(timeout=60)
    assert str(caught.value).startswith(f"job broken (subprocess) failed: exit code 2: {spec_file}: not a readable job")
    assert job.status == "failed" and "not a readable job spec" in job.logs(1)


def test_a_child_refuses_a_job_file_another_launch_replaced(best_config: BestConfig, tmp_path: Path) -> None:
    # Two launches into one folder: each child read the job.json there, so one trained the other's config and its
    # launcher reported that run as its own job.
    first = execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess", dry_run=True)
    other = best_config.model_copy(update={"hyperparameters": {**best_config.hyperparameters, "training.seed": 9}})
    second = execute_final_training(other, output_dir=tmp_path / "run", backend="subprocess", dry_run=True)
    assert second.id != first.id and JobSpec.load(tmp_path / "run" / "job.json").job_id == second.id
    job = ProcessJob(first.id, "subprocess", tmp_path / "run", tmp_path / "job.log", first.command)
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=120)
    assert f"exit code 2: {tmp_path / 'run' / 'job.json'}: holds job {second.id}, not {first.id}: another " in str(
        caught.value
    )
    assert caught.value.exit_code == 2 and not (tmp_path / "run" / "metrics.json").exists()


def test_a_backend_launches_the_job_it_was_given_not_the_one_its_job_file_holds_by_then(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # The backend read the job id back from job.json: a launch that replaced the file in between had its job trained
    # by this launch's child and reported as this launch's job.
    first = execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess", dry_run=True)
    spec = JobSpec.load(tmp_path / "run" / "job.json")
    other = best_config.model_copy(update={"hyperparameters": {**best_config.hyperparameters, "training.seed": 9}})
    second = execute_final_training(other, output_dir=tmp_path / "run", backend="subprocess", dry_run=True)
    assert JobSpec.load(tmp_path / "run" / "job.json").job_id == second.id != first.id
    assert TorchrunBackend(1).prepare(spec).command[-2:] == ["--job-id", first.id]
    job = SubprocessBackend().submit(spec)
    assert job.id == first.id and job.command[-2:] == ["--job-id", first.id]
    with pytest.raises(ExecutionError, match=rf"holds job {second.id}, not {first.id}: another launch"):
        job.wait(timeout=120)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_child_killed_by_a_signal_is_reported_by_the_signal_s_name(tmp_path: Path) -> None:
    killed = "import os, signal; print('allocating', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    job = ProcessJob("oom", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", killed])
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=60)
    assert str(caught.value) == (
        "job oom (subprocess) failed: killed by signal SIGKILL (the system may have run out of memory); its whole "
        f"output is in {tmp_path / 'job.log'}"
    )
    assert caught.value.returncode == -signal.SIGKILL and job.logs(1) == "allocating"


@pytest.mark.slow
def test_a_torchrun_worker_killed_by_a_signal_is_named_with_its_rank(tmp_path: Path) -> None:
    # torchrun itself exits 1; the worker's SIGKILL (often the kernel's out-of-memory killer) is what the user needs.
    script = tmp_path / "worker.py"
    script.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", str(script)]
    job = ProcessJob("ddp", "torchrun", tmp_path, tmp_path / "job.log", command)
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=120)
    assert str(caught.value).startswith(
        "job ddp (torchrun) failed: exit code 1 (worker rank 0: killed by signal SIGKILL (the system may have run out "
        "of memory)); its whole output is in"
    )


@pytest.mark.slow
def test_bad_input_in_torchrun_workers_is_named_and_exits_2(best_config: BestConfig, tmp_path: Path) -> None:
    # It was torchrun's exit code 1 and its summary table: the workers' reason lay above the lines shown.
    missing = tmp_path / "no-such-data"
    with pytest.raises(ExecutionError) as caught:  # other data: the workers are the first to read it
        execute_final_training(
            best_config,
            output_dir=tmp_path / "run",
            data_path=missing,
            backend="torchrun",
            nproc_per_node=2,
            other_data=True,
        )
    assert re.match(
        rf"job final-\w+ \(torchrun\) failed: exit code 1 \(worker rank \d: exit code 2: {re.escape(str(missing))}: "
        r"no such file or folder\); its whole output is in ",
        str(caught.value),
    )
    assert caught.value.exit_code == 2


# A traceback whose exception message spans lines, below output of the child's own.
RAISES = (
    "def check():\n    raise ValueError('bad value 42\\nexpected at most 10')\nprint('working', flush=True)\ncheck()\n"
)


def test_a_child_s_failure_is_one_line_naming_its_exception_and_its_log(tmp_path: Path) -> None:
    # The error held the last 15 lines of the log: the CLI printed a traceback's tail as its one-line error.
    job = ProcessJob("bug", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", RAISES])
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=60)
    assert str(caught.value) == (
        f"job bug (subprocess) failed: exit code 1: ValueError: bad value 42; its whole output is in {job.log_file}"
    )
    assert "Traceback (most recent call last):" in job.logs() and job.logs(1) == "expected at most 10"


def test_the_runner_s_error_line_is_named_over_an_exception_printed_after_it(tmp_path: Path) -> None:
    # An exception raised by a `__del__` as the child ended, printed below the runner's error, was named instead.
    ignored = "class Pool:\n    def __del__(self):\n        raise AttributeError('closed')\npool = Pool()\n"
    said = "import sys\nprint('error: data.json: bad label', file=sys.stderr)\nsys.exit(2)\n"
    job = ProcessJob("bad", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", ignored + said])
    with pytest.raises(ExecutionError, match=r"^job bad \(subprocess\) failed: exit code 2: data.json: bad label; "):
        job.wait(timeout=60)
    assert job.logs(1) == "AttributeError: closed"


def test_a_child_s_usage_error_is_named(tmp_path: Path) -> None:
    # argparse's `prog: error: ...` line (below its usage lines) was missed: the error held only the exit code.
    command = [sys.executable, "-m", "training.execution.runner", "job.json", "--data", ""]
    job = ProcessJob("usage", "subprocess", tmp_path, tmp_path / "job.log", command)
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=60)
    assert str(caught.value) == (
        "job usage (subprocess) failed: exit code 2: argument --data: expected a path, got an empty string; its whole "
        f"output is in {job.log_file}"
    )


# A child that warns and shows a progress bar before it ends.
WARNS = "import sys, warnings\nwarnings.warn('slow')\nprint('10%|#  | 1/10', file=sys.stderr, flush=True)\n"


@pytest.mark.parametrize(
    ("script", "detail"),
    [
        (WARNS + "raise SystemExit('data.json: no labels')", ": data.json: no labels"),
        (WARNS + "sys.exit(1)", ""),
        (WARNS + "warnings.warn('done')\nsys.exit(1)", ""),
        (WARNS + "print('W1205 16:10:48.430000 7 api.py:9] note', file=sys.stderr)\nsys.exit(1)", ""),
        (WARNS + "print('INFO training.core: trained', file=sys.stderr)\nsys.exit(1)", ""),  # the CLI's log format
        ("import sys\nsys.exit(1)", ""),  # nothing printed: the log's own line above is not the child's
        ("raise ValueError('error: x')", ": ValueError: error: x"),  # an exception's class is no program name
    ],
)
def test_a_child_s_last_message_is_named_and_a_warning_or_progress_bar_is_not(
    script: str, detail: str, tmp_path: Path
) -> None:
    # A `SystemExit` text, printed bare as the child's last line, was missed: the error held only the exit code.
    job = ProcessJob("exit", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", script])
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=60)
    assert str(caught.value) == (
        f"job exit (subprocess) failed: exit code 1{detail}; its whole output is in {job.log_file}"
    )


@pytest.mark.slow
def test_a_torchrun_worker_s_failure_is_one_line_naming_its_exception_and_its_log(tmp_path: Path) -> None:
    # Below the worker's traceback (behind `[rank0]: ` prefixes) torchrun prints its own traceback and summary block.
    script = tmp_path / "worker.py"
    script.write_text(f"import torch.distributed as dist\ndist.init_process_group('gloo')\n{RAISES}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", str(script)]
    job = ProcessJob("ddp", "torchrun", tmp_path, tmp_path / "job.log", command)
    with pytest.raises(ExecutionError) as caught:
        job.wait(timeout=120)
    assert str(caught.value) == (
        "job ddp (torchrun) failed: exit code 1 (worker rank 0: exit code 1: ValueError: bad value 42); its whole "
        f"output is in {job.log_file}"
    )
    assert "[rank0]: ValueError: bad value 42" in job.logs(100) and "ChildFailedError" in job.logs(100)


def test_the_root_cause_ranks_own_error_is_named_behind_rank_prefixes(tmp_path: Path) -> None:
    # Rank prefixes (torchrun --tee, log_line_prefix_template) hid every error line; any rank's last one was taken.
    summary = "Root Cause (first observed failure):\n[0]:\n  rank      : 1 (local_rank: 1)\n  exitcode  : 2 (pid: 7)\n"
    output = f"[rank1]:error: data: no such file\n[rank0]:error: stopped by rank 1\n{summary}"
    command = [sys.executable, "-c", f"import sys; print({output!r}); sys.exit(1)"]
    job = ProcessJob("final-x", "torchrun", tmp_path, tmp_path / "job.log", command)
    with pytest.raises(
        ExecutionError, match=r"exit code 1 \(worker rank 1: exit code 2: data: no such file\)"
    ) as caught:
        job.wait()
    assert caught.value.exit_code == 2


def test_the_runner_exits_2_with_one_line_on_bad_input_and_takes_data_and_output_overrides(
    best_config: BestConfig, final_run: JobHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.execution.runner import main

    job_file = final_run.output_dir / "job.json"
    assert main([str(job_file), "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {tmp_path / 'nowhere'}: no such file or folder"
    assert main([str(job_file), "--output", str(tmp_path / "out")]) == 0
    copied = json.loads((tmp_path / "out" / "job.json").read_text())
    assert copied["output_dir"] == str(tmp_path / "out") and copied["job_id"] == final_run.id
    assert (tmp_path / "out" / "lineage.json").is_file()


def test_the_runner_s_error_line_is_one_write_so_workers_sharing_a_log_keep_their_lines_whole(
    final_run: JobHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under PYTHONUNBUFFERED, `print` wrote the text and its newline apart: two torchrun workers failing together left
    # `error: Aerror: A` in job.log, and the job's message named that.
    from training.execution.runner import main

    class Writes(io.RawIOBase):
        def __init__(self) -> None:
            self.calls: list[bytes] = []

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.calls.append(bytes(data))
            return len(data)

    writes = Writes()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(writes, encoding="utf-8", write_through=True))
    assert main([str(final_run.output_dir / "job.json"), "--data", str(tmp_path / "nowhere")]) == 2
    assert writes.calls[-1] == f"error: {tmp_path / 'nowhere'}: no such file or folder\n".encode()


@pytest.mark.parametrize("option", ["--data", "--output"])
def test_the_runner_refuses_an_empty_path(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    # `--output ""` (an unset shell variable) ran the job into the working directory.
    from training.execution.runner import main

    with pytest.raises(SystemExit) as exited:
        main(["job.json", option, ""])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"{option}: expected a path, got an empty string")


@pytest.mark.slow
def test_two_process_torchrun_gives_the_in_process_layout(
    best_config: BestConfig, final_run: JobHandle, tmp_path: Path
) -> None:
    job = execute_final_training(best_config, output_dir=tmp_path / "ddp", backend="torchrun", nproc_per_node=2)
    assert job.command[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert job.status == "completed" and layout(job) == layout(final_run)
    record = json.loads((job.output_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["world_size"] == 2
    assert (
        record["best"]["support"] == json.loads((final_run.output_dir / "metrics.json").read_text())["best"]["support"]
    )
    lineage = json.loads((job.output_dir / "lineage.json").read_text())
    assert lineage["run_id"] == final_run.id and lineage["evaluated_on"] == "test"


def test_backends_by_name_and_their_limits(tiny_config: object) -> None:
    assert isinstance(get_backend("local"), InProcessBackend)
    assert type(get_backend("subprocess")) is SubprocessBackend
    torchrun = get_backend("torchrun", nproc_per_node=3)
    assert isinstance(torchrun, TorchrunBackend) and torchrun.nproc_per_node == 3
    with pytest.raises(ConfigError, match=r"^backend: unknown backend 'slurm'; expected one of local, subprocess, "):
        get_backend("slurm")
    with pytest.raises(ConfigError, match=r"^backend 'subprocess' reads the data from a path; pass data_path="):
        get_backend("subprocess", dataset=object())  # type: ignore[arg-type]
    for count in (0, -3, "2", 2.0, True):  # a string failed as a TypeError, 2.0 and True went on to torchrun
        expected = f"nproc_per_node: expected a whole number of processes, at least 1, got {count!r}"
        with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
            get_backend("torchrun", nproc_per_node=count)


def test_a_dry_run_of_more_processes_than_this_machine_holds_is_prepared(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # It was refused: a login node without GPUs could not prepare a GPU node's job.
    more = process_slots()[0] + 1
    execution = tmp_path / "execution" / "ddp.yaml"
    execution.parent.mkdir()
    execution.write_text(f"backend: torchrun\nnproc_per_node: {more}\n")
    job = execute_final_training(best_config, output_dir=tmp_path / "run", execution_config=execution, dry_run=True)
    assert job.status == "queued" and f"--nproc_per_node {more} -m training.execution.runner" in job.command_line


def test_more_ranks_than_this_machine_holds_are_refused_before_any_starts(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    # On CPU they were started with a warning: `--nproc-per-node 100000` began a hundred thousand torch processes.
    # One over the bound: were the check gone, the test would start a few processes, not a machine's worth.
    most = usable_cores() * PROCESSES_PER_CORE
    backend = get_backend("torchrun", nproc_per_node=most + 1, processes_from=f"nproc_per_node={most + 1}")
    spec = JobSpec(job_id="final-x", config=tiny_config, data_path=None, output_dir=str(tmp_path / "run"))
    expected = rf"^nproc_per_node={most + 1}: {most + 1} processes at once; expected at most {most} on this machine "
    with pytest.raises(ConfigError, match=expected):
        backend.submit(spec)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="gloo ranks on CPU cores")
def test_more_gloo_ranks_than_cpu_cores_are_started_with_a_warning_naming_the_count_s_source(
    tiny_config: TrainingConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # They were refused, though on CPU more ranks than cores only share them; a 1-core container could run no DDP test.
    cores = process_slots()[0]
    backend = get_backend("torchrun", nproc_per_node=cores + 1, processes_from=f"ddp.yaml: nproc_per_node {cores + 1}")
    (tmp_path / "a-file").touch()  # its output folder cannot be made: checked, then nothing starts
    spec = JobSpec(job_id="final-x", config=tiny_config, data_path=None, output_dir=str(tmp_path / "a-file" / "run"))
    with pytest.raises(NotADirectoryError):
        backend.submit(spec)
    assert caplog.messages == [
        f"ddp.yaml: nproc_per_node {cores + 1}: {cores + 1} processes on {cores} CPU cores; they share the cores and "
        "run slower"
    ]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_more_ranks_than_cuda_gpus_are_refused_naming_the_count_s_source(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # More ranks than GPUs failed deep inside NCCL; the refusal did not say where the count came from.
    gpus = torch.cuda.device_count()
    more = gpus + 1
    execution = tmp_path / "execution" / "ddp.yaml"
    execution.parent.mkdir()
    execution.write_text(f"backend: torchrun\nnproc_per_node: {more}\n")
    sources = {None: f"{execution}: nproc_per_node {more}", more: f"nproc_per_node={more} (--nproc-per-node {more})"}
    for given, source in sources.items():
        with pytest.raises(ConfigError) as refused:
            execute_final_training(
                best_config, output_dir=tmp_path / "run", execution_config=execution, nproc_per_node=given
            )
        assert str(refused.value) == (
            f"{source}: {more} processes, one per CUDA GPU, but this machine has {gpus}; expected at most {gpus}"
        )


def test_interrupting_only_the_waiting_process_stops_the_child_too(tmp_path: Path) -> None:
    # A notebook's interrupt reaches the kernel alone; the job's child must not go on writing the run folder.
    deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)"
    job = ProcessJob("sleeper", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", deaf])
    with pytest.raises(KeyboardInterrupt):
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        job.wait(timeout=60)
    assert job.status == "running"  # waiting on a handle alone leaves the job the caller started as it is
    job.stop(grace=0.5)  # what final training waiting for its own job does when interrupted
    assert job.process.poll() == -signal.SIGTERM and job.status == "failed"


def test_a_terminated_child_is_given_the_time_it_takes_to_end(tmp_path: Path) -> None:
    # torchrun, terminated, gives its workers up to 30 s; killing it sooner would leave them running on their own.
    slow = (
        "import signal, sys, time\n"
        "def end(*_): time.sleep(1.5); sys.exit(3)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, end)\n"
        "print('ready', flush=True); time.sleep(120)"
    )
    job = ProcessJob("slow", "subprocess", tmp_path, tmp_path / "job.log", [sys.executable, "-c", slow])
    deadline = time.monotonic() + 30
    while "ready" not in (tmp_path / "job.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop(grace=0.2)
    assert job.process.returncode == 3  # it ended its own way, not killed after a second grace


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie waiting to be reaped has ended too)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_second_interrupt_while_the_child_is_given_its_grace_stops_the_child_at_once(tmp_path: Path) -> None:
    # A process waiting on its own job, as final training does: interrupted, it gives the child a grace to end;
    # a second Ctrl-C (impatience) must not end the waiting process with the child still running.
    waiting = f"""
import signal, sys
from pathlib import Path
from training.execution.handle import ProcessJob
deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)"
job = ProcessJob("sleeper", "subprocess", Path({str(tmp_path)!r}), Path({str(tmp_path / "job.log")!r}),
                 [sys.executable, "-c", deaf])
print(job.process.pid, flush=True)
try:
    job.wait()
except KeyboardInterrupt:
    print("stopping", flush=True)
    job.stop(grace=60)
    raise
"""
    parent = subprocess.Popen([sys.executable, "-c", waiting], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    parent.send_signal(signal.SIGINT)
    assert parent.stdout.readline().strip() == "stopping"
    time.sleep(0.5)
    parent.send_signal(signal.SIGINT)
    try:
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(child), "the child went on running after the waiting process ended"
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)
    assert parent.returncode == -signal.SIGINT  # it ended on the interrupt, as Python does


def test_an_interrupt_as_submit_returns_stops_the_child_it_started(
    best_config: BestConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the child's start and the wait's protection, an interrupt left the child training the run alone.
    started: list[JobHandle] = []
    submit = SubprocessBackend.submit

    def interrupted_on_return(self: SubprocessBackend, spec: JobSpec) -> JobHandle:
        started.append(submit(self, spec))
        os.kill(os.getpid(), signal.SIGINT)  # lands in this return path
        return started[0]

    monkeypatch.setattr(SubprocessBackend, "submit", interrupted_on_return)
    with pytest.raises(KeyboardInterrupt):
        execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess")
    job = started[0]
    assert isinstance(job, ProcessJob) and job.process.poll() is not None, "the child went on running"
