"""Backends that run a `JobSpec` in this process, a fresh Python process, torchrun or Azure ML; `submit` returns a
`JobHandle`, `prepare` the command without starting anything (a dry run)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Protocol

from data.loaders import Dataset
from training.common.cores import check_process_count
from training.common.errors import ConfigError
from training.common.optional import require
from training.config.execution import BACKENDS
from training.core.run_context import process_slots
from training.core.run_folder import RunFolder
from training.execution.handle import CompletedJob, JobHandle, PreparedJob, ProcessJob
from training.execution.job_spec import JobSpec
from training.execution.runner import run_job

RUNNER_MODULE = "training.execution.runner"
JOB_LOG = "job.log"
_log = logging.getLogger("training.execution")


class Backend(Protocol):
    """Something that runs a job spec, already written to its `job_file` (which a child process reads)."""

    name: str

    def prepare(self, spec: JobSpec) -> JobHandle: ...

    def submit(self, spec: JobSpec) -> JobHandle: ...


def runner_command(spec_file: Path, *, nproc_per_node: int | None = None, job_id: str | None = None) -> list[str]:
    """The command line of the runner for `spec_file`, under torchrun when `nproc_per_node` is given; with `job_id`,
    the runner refuses a spec file that another launch has replaced meanwhile."""
    launcher = [sys.executable]
    if nproc_per_node is not None:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc_per_node)]
    return [*launcher, "-m", RUNNER_MODULE, str(spec_file), *(["--job-id", job_id] if job_id else [])]


class InProcessBackend:
    """Runs the job in this process and returns when it is done; errors propagate as they are raised."""

    name = "local"

    def __init__(self, dataset: Dataset | None = None) -> None:
        self.dataset = dataset

    def prepare(self, spec: JobSpec) -> JobHandle:
        return self._job(PreparedJob, spec)

    def submit(self, spec: JobSpec) -> JobHandle:
        run_job(spec, dataset=self.dataset)
        return self._job(CompletedJob, spec)

    def _job(self, kind: type[JobHandle], spec: JobSpec) -> JobHandle:
        output = Path(spec.output_dir)
        return kind(spec.job_id, self.name, output, RunFolder(output).log, runner_command(spec.job_file))


class SubprocessBackend:
    """Runs the job in a fresh `python -m training.execution.runner job.json --job-id ID` process; the id is the spec's
    it was given, not read back from the file: the child refuses a `job.json` another launch has replaced meanwhile."""

    name = "subprocess"
    nproc_per_node: int | None = None  # torchrun's processes

    def prepare(self, spec: JobSpec) -> JobHandle:
        return self._job(PreparedJob, spec)

    def submit(self, spec: JobSpec) -> JobHandle:
        return self._job(ProcessJob, spec)

    def _job(self, kind: type[JobHandle], spec: JobSpec) -> JobHandle:
        command = runner_command(spec.job_file, nproc_per_node=self.nproc_per_node, job_id=spec.job_id)
        output = Path(spec.output_dir)
        return kind(spec.job_id, self.name, output, output / JOB_LOG, command)


def process_count(count: object) -> int:
    """`count` if it is a whole number of processes, at least 1 (as an execution file's `nproc_per_node`), else a
    `ConfigError`: a string failed comparing, a float or True went on to torchrun."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"nproc_per_node: expected a whole number of processes, at least 1, got {count!r}")
    return count


class TorchrunBackend(SubprocessBackend):
    """Runs the job as `nproc_per_node` DDP processes on this machine through torchrun (gloo on CPU).

    `processes_from` names where the count came from (an argument, an execution file) in messages about it."""

    name = "torchrun"

    def __init__(self, nproc_per_node: int, *, processes_from: str | None = None) -> None:
        self.nproc_per_node = process_count(nproc_per_node)
        self.processes_from = processes_from or f"nproc_per_node={nproc_per_node}"

    def submit(self, spec: JobSpec) -> JobHandle:
        """Start the job here; a dry run (`prepare`) checks nothing of this machine: it may not be the one to run it.
        More ranks than CUDA GPUs fail deep inside NCCL, so they are refused; gloo ranks on CPU may share cores, only
        slower, so more of them than cores is noted, up to what the machine holds."""
        check_process_count(self.nproc_per_node, self.processes_from)
        found, kind = process_slots()
        if self.nproc_per_node > found:
            if kind == "CUDA GPU":
                raise ConfigError(
                    f"{self.processes_from}: {self.nproc_per_node} processes, one per CUDA GPU, but this machine has "
                    f"{found}; expected at most {found}"
                )
            _log.warning(
                "%s: %d processes on %d CPU cores; they share the cores and run slower",
                self.processes_from,
                self.nproc_per_node,
                found,
            )
        return super().submit(spec)


def get_backend(
    name: str,
    *,
    nproc_per_node: int = 1,
    processes_from: str | None = None,
    dataset: Dataset | None = None,
    **azure: Any,
) -> Backend:
    """The backend called `name`; `azure` options (`ml_client`) go to Azure ML; a `dataset` runs only in-process;
    `processes_from` names where torchrun's `nproc_per_node` came from, for its messages."""
    if name not in BACKENDS:
        raise ConfigError(f"backend: unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if dataset is not None and name != "local":
        raise ConfigError(
            f"backend {name!r} reads the data from a path; pass data_path= (an in-memory dataset runs only locally)"
        )
    if name == "local":
        return InProcessBackend(dataset)
    if name == "subprocess":
        return SubprocessBackend()
    if name == "torchrun":
        return TorchrunBackend(nproc_per_node, processes_from=processes_from)
    require("azure.ai.ml", "backend 'azure'")
    from training.execution.azure_job import AzureBackend

    return AzureBackend(**azure)
