"""Study storage: SQLite or a journal file in the study folder by default, any RDB URL for many hosts.

- `None`: `sqlite:///<study_dir>/study.db`
- `"journal"`: `<study_dir>/study.journal`; any other value without `://` is a journal file path (relative ones
  are relative to the study folder), but for a URL that lost its ':' (`postgres//host/db`), which is refused
- a URL with `://` (`sqlite:///...`, `postgresql://user:password@host/db`, ...): an RDB storage (a relative SQLite
  path, as SQLAlchemy reads it, is relative to the working directory)

RDB storages get Optuna's heartbeat, which fails and re-runs a dead host's trials; files (journal, SQLite) cannot
tell a dead host from a slow one, so they serve one host (see `recovery`).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from importlib.util import find_spec
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from training.common.errors import TOO_DEEP, ConfigError, InputError, TrainingError, expect_instance
from training.common.file_lock import file_lock
from training.common.home import expand_home
from training.common.redact import REDACTED, redact_url
from training.common.store_urls import absolute_store_url, missing_colon, sqlite_url
from training.hpo.failures import one_line
from training.hpo.journal import WholeLinesJournal
from training.hpo.recovery import MAX_RETRIES, machine_name
from training.hpo.study_folder import StudyFolder, StudyManifest

HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_GRACE_S = 180


def storage_location(storage: str | None, folder: StudyFolder) -> str:
    """The storage as a URL or an absolute journal path (what `open_storage` opens and the manifest records)."""
    _check_url(storage)
    if storage is None:
        return sqlite_url(folder.database.resolve())
    if storage == "journal":
        return str(folder.journal.resolve())
    if "://" in storage:  # `sqlite:///study.db` is read from the working directory: recorded absolute
        return absolute_store_url(storage, Path.cwd())
    path = (folder.root / expand_home(storage)).resolve()
    if path.suffix in (".db", ".sqlite", ".sqlite3") and not path.exists():  # a new journal file named as a database
        raise ConfigError(
            f"storage {storage!r}: a path is an Optuna journal file, this one named as a SQLite database; "
            "a SQLite database is given as a URL, sqlite:///path/to/study.db"
        )
    return str(path)


def _check_url(storage: str | None) -> None:
    """Refuse a URL without its ':' (`postgres//host/db`), which a journal path made folders of."""
    if storage is not None and (problem := missing_colon(storage)):
        shown = redact_url(storage.replace("//", "://", 1)).replace("://", "//", 1)  # its password out, as a URL's
        raise ConfigError(f"storage {shown!r}: {problem}")


def open_storage(location: str, heartbeat: tuple[int, int] | None = None, *, write: bool = False) -> BaseStorage:
    """An Optuna storage for a location from `storage_location`; RDB ones get `heartbeat` (interval, grace seconds).
    To `write` (trials, a budget), a storage file and its folder (where SQLite and the journal keep their locks) must
    be writable: refused here, not at the first write, which Optuna reports as invalid data or a bare OS error."""
    file = _storage_file(location) if write else None
    for path in (file, file.parent) if file is not None else ():
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(
                f"storage {redact_url(location)!r}: {'the file' if path == file else f'its folder {path}'} is "
                "read-only, so no trial can be recorded; make it writable, or copy the study folder where it can be "
                "written"
            )
    if "://" not in location:
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        try:  # Optuna reads the whole file here: a SQLite file or a folder fails with a decoding or an OS error
            storage = JournalStorage(WholeLinesJournal(location))
            _check_first_line(Path(location))
            return storage
        except (OSError, ValueError, KeyError, TypeError, AssertionError, RecursionError) as error:
            reasons = {AssertionError: "an entry of an unknown kind", RecursionError: f"invalid JSON: {TOO_DEEP}"}
            reason = reasons.get(type(error)) or one_line(error)  # Optuna asserts on an entry of an unknown kind
            raise ConfigError(
                f"storage {location!r}: not an Optuna journal file ({reason}); "
                "a SQLite database is given as a URL, sqlite:///path/to/study.db"
            ) from None
    try:
        url = make_url(location)
    except ArgumentError:
        raise ConfigError(f"storage {redact_url(location)!r}: not a database URL such as sqlite:///study.db") from None
    if url.password == REDACTED:
        raise InputError(
            f"storage {location!r}: the password is not stored with the study; "
            "pass the full URL as storage (--storage URL)"
        )
    interval, grace = heartbeat or (HEARTBEAT_INTERVAL_S, HEARTBEAT_GRACE_S)
    opened = _with_installed_driver(url, location)
    database = _storage_file(location)  # a SQLite file (None: a server's database, or SQLite in memory)
    lock = Path(f"{database}.lock") if database is not None else None
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    # Processes opening a new database together each made its tables: all but one failed. Where no file can be written
    # (a study read in a read-only folder), no database is made either.
    writable = lock is not None and os.access(lock.parent, os.W_OK)
    with warnings.catch_warnings(), file_lock(lock if writable else None):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = RDBStorage(
                opened,
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
            )
        except NoSuchModuleError:
            raise ConfigError(
                f"storage {redact_url(location)!r}: unknown database {url.get_backend_name()!r}; use sqlite, "
                "postgresql, mysql, ... or a journal file path"
            ) from None
        except ImportError:
            raise InputError(
                f"storage {redact_url(location)!r}: its database driver {make_url(opened).get_dialect().driver!r} is "
                'not installed; for PostgreSQL: pip install "training-hpo[postgres]" (psycopg2)'
            ) from None
        except OperationalError as error:
            raise TrainingError(f"storage {redact_url(location)!r}: cannot open it ({one_line(error.orig)})") from None
        except DatabaseError as error:  # a file that is no SQLite database, or a damaged one
            raise InputError(
                f"storage {redact_url(location)!r}: cannot read it as an Optuna database ({one_line(error.orig)})"
            ) from None
    if lock is not None:
        _one_take_at_a_time(storage, lock)
    return storage


def _with_installed_driver(url: URL, location: str) -> str:
    """`location`, a bare postgresql:// naming the PostgreSQL driver that is installed: SQLAlchemy 2.1 takes psycopg 3
    for it, 2.0 psycopg2 (what the `postgres` extra installs)."""
    if url.drivername != "postgresql" or find_spec(url.get_dialect().driver) is not None:
        return location
    driver = next((name for name in ("psycopg2", "psycopg") if find_spec(name) is not None), None)
    return url.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False) if driver else location


def _check_first_line(journal: Path) -> None:
    """Raise unless the journal's first line, when complete, is JSON (Optuna takes a bad last line for a write cut
    short, and so appended to a one-line text file)."""
    with journal.open("rb") as file:
        first = file.readline()
    if first.endswith(b"\n"):
        json.loads(first)


def _one_take_at_a_time(storage: RDBStorage, lock_file: Path) -> None:
    """SQLite ignores `SELECT ... FOR UPDATE`: a file lock keeps two processes from taking one queued trial."""
    take = storage.set_trial_state_values

    def set_trial_state_values(trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        if state != TrialState.RUNNING:
            return take(trial_id, state, values)
        with file_lock(lock_file):
            return take(trial_id, state, values)

    storage.set_trial_state_values = set_trial_state_values  # type: ignore[method-assign]


def is_file_storage(location: str) -> bool:
    """Whether the storage is a file (journal or SQLite): one host only, since no heartbeat crosses hosts."""
    return "://" not in location or location.startswith("sqlite:")


def study_location(
    study_dir: str | Path | None = None, *, storage: str | None = None, study_name: str | None = None
) -> tuple[str, str]:
    """The storage location and study name of an existing study: from its folder's manifest, or as given."""
    if study_dir is not None:
        folder = StudyFolder(Path(expect_instance(study_dir, (str, os.PathLike), "study_dir", "a study folder's path")))
        manifest = folder.read_manifest()
        location = storage_location(storage, folder) if storage else _own_default(manifest, folder)
        return location, study_name or manifest.study_name
    if storage is None or study_name is None:
        raise InputError("name the study: a study folder, or a storage URL together with a study name")
    _check_url(storage)
    return (storage if "://" in storage else str(Path(storage).resolve())), study_name


def _own_default(manifest: StudyManifest, folder: StudyFolder) -> str:
    """The manifest's storage; a storage file inside the folder (study.db, study.journal, a journal named relative to
    it; recorded by the absolute path the folder had) is the file at that place in the folder where it lies now, so a
    moved or copied study folder opens its own study (or none, never the original's). A file outside the folder stays
    where it is; a manifest without `study_dir` can only be judged by the name of the default files."""
    recorded, file = manifest.storage, _storage_file(manifest.storage)
    sqlite = recorded.startswith("sqlite:")
    if file is None:
        return recorded
    if manifest.study_dir is not None:  # a URL's path is kept as written: `study/../all.db` lies outside it
        outside = not file.is_relative_to(manifest.study_dir) or ".." in file.parts
        inside = None if outside else file.relative_to(manifest.study_dir)
    else:
        inside = Path(file.name) if file.name == (folder.database if sqlite else folder.journal).name else None
    here = (folder.root / inside).resolve() if inside is not None else None
    # A copy without its file is refused as missing: the recorded file is another folder's study (its resume wrote
    # there); a manifest without `study_dir` cannot tell a copy from the folder it was made in.
    if here is None or not (here.is_file() or manifest.study_dir is not None):
        return recorded
    return sqlite_url(here) + "".join(recorded.partition("?")[1:]) if sqlite else str(here)


def open_study(study_name: str, backend: BaseStorage, location: str) -> optuna.Study:
    """Load an existing study; a missing one is an `InputError` naming the storage."""
    try:
        return optuna.load_study(study_name=study_name, storage=backend)
    except KeyError:
        raise InputError(f"storage {redact_url(location)!r} holds no study named {study_name!r}") from None


def load_study(
    study_dir: str | Path | None = None, *, storage: str | None = None, study_name: str | None = None
) -> optuna.Study:
    """Open an existing study from its folder (its manifest names the storage), or from a storage URL and name."""
    return existing_study(study_dir, storage=storage, study_name=study_name)[1]


def existing_study(
    study_dir: str | Path | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    write: bool = False,
) -> tuple[str, optuna.Study]:
    """`load_study` with its storage location, opened to `write` or not (`open_storage`). A storage file that does not
    exist is refused, not created empty; a storage given beside a study folder must hold the study made for that
    folder."""
    location, name = study_location(study_dir, storage=storage, study_name=study_name)
    file = _storage_file(location)
    if file is not None and not file.is_file():
        what = "not a file" if file.exists() else "no such file"
        raise InputError(f"storage {redact_url(location)!r}: {what}, so no study {name!r} in it")
    study = open_study(name, open_storage(location, write=write), location)
    if study_dir is not None and storage:
        from training.hpo.sweep_settings import SweepSettings

        try:
            record = SweepSettings.load(study, redact_url(location))
        except InputError:  # no sweep's study (or a newer release's): what reads it says so
            return location, study
        record.check_study_dir(StudyFolder(Path(study_dir)), name, location)
    return location, study


def find_study(name: str, location: str) -> optuna.Study | None:
    """The study `name` in the storage at `location`, None where it holds none (a storage file not made yet is not
    created)."""
    file = _storage_file(location)
    if file is not None and not file.exists():
        return None
    backend = open_storage(location)
    return open_study(name, backend, location) if name in optuna.get_all_study_names(backend) else None


def _storage_file(location: str) -> Path | None:
    """The file a journal or SQLite storage is kept in (None for a server's database or SQLite in memory)."""
    if "://" not in location:
        return Path(location)
    try:
        database = make_url(location).database if location.startswith("sqlite:") else None
    except ArgumentError:  # open_storage says what is wrong with it
        return None
    return Path(database) if database and database != ":memory:" else None


def check_own_study(folder: StudyFolder, name: str, location: str) -> None:
    """Refuse a study folder that holds another study (another name or storage): both would share its trial folders
    and `best_config.json`, and its manifest would no longer lead to the first one."""
    if not folder.manifest.is_file():
        return
    held, held_name = study_location(folder.root)
    if (held_name, redact_url(held)) != (name, redact_url(location)):
        raise InputError(
            f"{folder.root}: holds study {held_name!r} in {redact_url(held)!r}, not {name!r} in "
            f"{redact_url(location)!r}; continue it with `training hpo resume --study-dir {folder.root}` or choose "
            "another study folder"
        )


def one_host_for_files(location: str, machine: str | None) -> None:
    """Refuse a second machine on a file storage: neither process ids nor heartbeats tell its dead trials there."""
    here = machine_name()
    if is_file_storage(location) and machine is not None and machine != here:
        raise InputError(
            f"storage {redact_url(location)!r} is a file, and the study runs on {machine}, not on {here}: "
            "a file cannot show another host's trials dead or alive; use an RDB storage URL (postgresql://... or "
            "mysql://...) for many hosts, or single_host=True (--single-host) to accept the risk"
        )


@contextlib.contextmanager
def recording_to(location: str) -> Iterator[None]:
    """Raise a write to the study at `location` that failed (a full disk) as one line naming the storage, in the
    storage's own words: Optuna's are "invalid data in the commit", or an error of its own. Ours pass as they are."""
    try:
        yield
    except Exception as error:
        failure = None if isinstance(error, TrainingError) else storage_failure(error)
        if failure is None:
            raise
        raise TrainingError(
            f"storage {redact_url(location)!r}: cannot record the sweep ({one_line(failure)})"
        ) from error


def storage_failure(error: BaseException) -> BaseException | None:
    """The storage's own error behind `error`, where a write to the study failed (a full disk): Optuna reports one at
    a trial's end as an `AssertionError` or `UnboundLocalError` of its own, the storage's error in its context."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    # The deepest that passed through the storage: the OS's or the database's own words, where Optuna's are "invalid
    # data in the commit"; not the error that the failed write was handling (a trial's own, recording why it failed).
    stored = [each for each in chain if _raised_in_storage(each)]
    return stored[-1] if stored else None


def _raised_in_storage(error: BaseException) -> bool:
    """Whether `error` passed through Optuna's storage or SQLAlchemy (not a callback's or a progress line's)."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__", "").startswith(("optuna.storages", "sqlalchemy")):
            return True
        frame = frame.tb_next
    return False
