"""The layout of a training run folder; every file in it is written atomically."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.common.atomic import atomic_write_text, check_folder, check_writable, put_back_retired, staging_leftovers
from training.common.errors import ConfigError, InputError
from training.common.file_lock import file_lock, remove_made
from training.config.schema import TrainingConfig
from training.config.validation import read_record, validate
from training.config.yaml_io import load_yaml_mapping
from training.core.run_metrics import Precision, RunMetrics

if TYPE_CHECKING:
    from training.config.schema import ModelConfig
    from training.core.windowing import Windowing


_threads = threading.local()

# A study folder's manifest (training.hpo's `StudyFolder.manifest`, which takes its name from here): core sits below
# training.hpo and cannot ask it whether a folder is a study folder, so it knows the file by name.
STUDY_MANIFEST = "study.json"
_EXPECTED = "a run folder (an existing one or a new path)"
# How to train a run folder anew, from Python and from the command line, in the errors that advise it
START_OVER = "resume=False; training train --restart, final --force"


def _held_here() -> set[Path]:
    """The run folders whose writer lock this thread holds (flock excludes other threads' spans, not a nested one)."""
    if not hasattr(_threads, "folders"):
        _threads.folders = set()
    return _threads.folders


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run: `config.yaml`, `metrics.json`, `model/`, `checkpoint/`, `train.log`, `lineage.json`."""

    root: Path

    @classmethod
    def of_model(cls, model_dir: str | os.PathLike[str]) -> RunFolder:
        """The run holding the model folder `model_dir`: its parent once resolved (`.`, said inside it, has itself)."""
        return cls(Path(model_dir).resolve().parent)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def lock(self) -> Path:
        """The file whose lock `writing` holds."""
        return self.root / ".writer.lock"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    def check_path(self) -> None:
        """Refuse, before any work, a run folder path that is (or lies inside) a file rather than a folder, that the
        file system cannot hold (a name over its length limit), whose `model/` is no model (a config folder's
        `model/` of YAML files): the run would replace it; or that is a study folder (`training hpo`'s)."""
        check_folder(self.root, _EXPECTED)
        if self.model.exists() and not (self.model / "config.json").is_file():
            raise InputError(
                f"{self.model}: not a model folder (no config.json), and the run would replace it; choose another "
                "output folder"
            )
        for marker, kind in ((STUDY_MANIFEST, "a study folder"), ("config.json", "a model folder")):
            if (self.root / marker).is_file():  # a run's own files would mix with its, and its lineage would lie
                raise InputError(
                    f"{self.root}: {kind} (it holds {marker}), where a run's files would mix with its own; choose "
                    "another output folder"
                )
        if self.root.is_dir() and set(self.run_files()) <= {self.config.name}:
            self._refuse_foreign()

    def run_files(self) -> list[str]:
        """The names of the run's own files the folder holds (a failed run's too); none where it holds no run."""
        ours = (self.config, self.metrics, self.log, self.lock, self.root / "job.json")
        return [path.name for path in ours if path.exists()]

    def _refuse_foreign(self) -> None:
        """Refuse a folder that holds no run as a new run's where the run would replace or mix with its files: a
        `config.yaml` or `lineage.json` no run wrote (a run writes its log and lock first), or data files
        (`train.jsonl`, ...), where its `train.log` made a second `train` split and no command read the data."""
        if foreign := [path.name for path in (self.config, self.lineage) if path.exists()]:
            raise InputError(
                f"{self.root}: holds {' and '.join(foreign)} but no run (no train.log or metrics.json), and the run "
                "would replace it; choose another output folder"
            )
        from data.formats import CONLL_SUFFIXES, CSV_SUFFIXES, JSON_SUFFIXES
        from data.split_names import file_split

        read = JSON_SUFFIXES | CONLL_SUFFIXES | CSV_SUFFIXES | {".parquet"}
        files = [path for path in self.root.iterdir() if path.is_file() and path.suffix.lower() in read]
        data = sorted(path.name for path in files if file_split(path))
        if data:
            raise InputError(
                f"{self.root}: holds data files ({', '.join(data)}), where a run's files would mix with them; "
                "choose another output folder"
            )

    @contextlib.contextmanager
    def writing(self, main: bool = True) -> Iterator[None]:
        """Hold the folder's writer lock for the span (`main`: the process that writes): a second training of the
        folder (or a rerun while a killed launcher's runner still trains) interleaved its files with the first's.
        Within a span of this thread's, a nested one holds it already (a job's span around its training's). A folder
        made for the span that holds nothing else when it ends in an error (a refused run) is removed again."""
        root = self.root.resolve()
        held_here = _held_here()
        if root in held_here:
            yield
            return
        made = [path for path in (self.root, *self.root.parents) if not path.exists()]  # deepest first
        held = contextlib.ExitStack()
        try:
            if main:
                check_folder(self.root, _EXPECTED, create=True)  # /proc/x: one line, not mkdir's OSError later
                held.enter_context(file_lock(self.lock, wait=False))
        except BlockingIOError:
            raise InputError(
                f"{self.root}: another training is writing this run folder now; let it finish (or stop it), or "
                "choose another output folder"
            ) from None
        except OSError as error:  # a read-only folder (a finished run to reuse), or a file system without flock
            logging.getLogger("training.core").debug("%s: not locked for writing (%s)", self.root, error)
        held_here.add(root)
        try:
            with held:
                try:
                    yield
                except BaseException:
                    if main:  # torchrun's other ranks made nothing
                        remove_made(self.root, self.lock, made)
                    raise
        finally:
            held_here.discard(root)

    def write_config(self, yaml_text: str) -> None:
        atomic_write_text(self.config, yaml_text)

    def read_config(self) -> TrainingConfig | None:
        """The config the run trained with (`config.yaml`), None when the folder has none."""
        if not self.config.is_file():
            return None
        return validate(TrainingConfig, load_yaml_mapping(self.config), str(self.config))

    def windowing(
        self, *, max_length: int | None = None, stride: int | None = None, saved: Windowing | None = None
    ) -> Windowing:
        """Window settings for this run's model: those given, else the run's config's, else `saved` (the model's own
        record, `Windowing.read_from`: a model folder moved away from its run), else `ModelConfig`'s."""
        from training.core.windowing import Windowing

        config = self.read_config() if max_length is None or stride is None else None  # both given: no file read
        base: ModelConfig | Windowing | None = config.model if config else saved
        return Windowing.of(base, max_length=max_length, stride=stride)

    def write_metrics(self, metrics: RunMetrics) -> None:
        atomic_write_text(self.metrics, metrics.model_dump_json(indent=2) + "\n")

    def read_metrics(self, *, training: bool = False) -> RunMetrics | None:
        """The metrics record, or None when the run has not written one yet; only `training` (its writer) advises
        starting over a run whose record is damaged."""
        if not self.metrics.is_file():
            return None
        what = "run metrics file" + (f" (start it over: {START_OVER})" if training else "")
        return read_record(RunMetrics, self.metrics, what)

    def recorded_precision(self) -> Precision | None:
        """The precision the run's evaluations ran in (the last it recorded), None where it recorded none."""
        try:
            metrics = self.read_metrics()
        except ConfigError as error:  # another tool's file, or a damaged one: the model itself is fine
            hint = "give a precision (precision='fp32', --precision fp32) to use the model"
            raise ConfigError(f"{error}; {hint}") from None
        return metrics.precision if metrics is not None else None

    def remove(self, path: Path) -> None:
        """Delete a file or folder of this run; never through a symbolic link, whose target lies elsewhere."""
        if path.is_symlink():
            raise InputError(f"{path}: refusing to delete through a symbolic link in the run folder {self.root}")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def remove_leftovers(self) -> list[Path]:
        """Delete (and return) the staging leftovers of interrupted writes; a retired folder (`.model.old`) whose
        swap crashed before the new one came in is put back instead."""
        removed = []
        job = self.root / "job.json"  # the job spec its runner writes first (training.execution's `JOB_FILE`)
        for target in (job, self.config, self.metrics, self.model, self.checkpoint, self.lineage):
            for leftover in staging_leftovers(target):
                if not put_back_retired(leftover):
                    self.remove(leftover)
                    removed.append(leftover)
        return removed

    @contextlib.contextmanager
    def logging_to(self, logger: logging.Logger) -> Iterator[None]:
        """Append `logger`'s INFO and higher records to `train.log` for the span; the logger's level is put back after
        it (a notebook's later runs and logging settings see the logger as they left it). An `InputError`, before the
        run writes anything, where no file can be written in the folder (read-only: an interrupted run there cannot
        go on; a finished one is reused without writing, so without this check)."""
        check_writable(self.root, _EXPECTED)
        self.root.mkdir(parents=True, exist_ok=True)
        level = logger.level
        if level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        handler = logging.FileHandler(self.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(level)
