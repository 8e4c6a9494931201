"""Study storage: where the default SQLite database of a study folder lies; what is no storage at all."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import optuna
import pytest

from training.common.errors import ConfigError, InputError, TrainingError
from training.config import load_hpo_config
from training.hpo.storage import load_study, open_storage, storage_failure, storage_location, study_location
from training.hpo.study_folder import StudyFolder, StudyManifest
from training.hpo.sweep import resume_hpo_sweep


@pytest.mark.parametrize("name", ["runs%202026", "why? not", "a#b [1] é"])
def test_the_default_database_lies_in_the_study_folder_whatever_its_name(tmp_path: Path, name: str) -> None:
    folder = StudyFolder(tmp_path / name / "study")
    location = storage_location(None, folder)
    optuna.create_study(study_name="s", storage=open_storage(location))
    assert folder.database.is_file()
    assert [path.name for path in tmp_path.iterdir()] == [name]
    assert optuna.load_study(study_name="s", storage=open_storage(location)).study_name == "s"


@pytest.mark.parametrize("recorded_dir", [True, False])  # False: a manifest from before study_dir was recorded
@pytest.mark.parametrize("storage", [None, "journal"])
def test_a_moved_or_copied_study_folder_opens_its_own_default_storage(
    tmp_path: Path, storage: str | None, recorded_dir: bool
) -> None:
    # The manifest records the default storage by absolute path: after `mv`, resume, best and report said the old
    # path "holds no study" (and made an empty study.db there); a copy's resume added trials to the original.
    made = StudyFolder(tmp_path / "made")
    location = storage_location(storage, made)
    optuna.create_study(study_name="s", storage=open_storage(location)).enqueue_trial({})
    study_dir = str(made.root.resolve()) if recorded_dir else None
    made.write_manifest(StudyManifest(study_name="s", storage=location, study_dir=study_dir))
    copied = StudyFolder(tmp_path / "copied")
    shutil.copytree(made.root, copied.root)
    load_study(copied.root).enqueue_trial({})
    assert (len(load_study(made.root).trials), len(load_study(copied.root).trials)) == (1, 2)
    moved = StudyFolder(tmp_path / "moved")
    made.root.rename(moved.root)
    assert len(load_study(moved.root).trials) == 1
    assert study_location(moved.root)[0] == storage_location(storage, moved)
    assert not made.root.exists()


@pytest.mark.parametrize("storage", ["logs/trials.journal", "sqlite:///{made}/own.db?timeout=9"])
def test_a_moved_or_copied_study_folder_opens_its_own_named_storage_file(tmp_path: Path, storage: str) -> None:
    # A storage file named inside the study folder (--storage logs/trials.journal) was followed to the folder it was
    # made in: a copy's resume added its trials to the original's study, a moved folder's found no such file.
    made, copied, moved = (StudyFolder(tmp_path / name / "study") for name in ("made", "copied", "moved"))
    location = storage_location(storage.format(made=made.root.resolve()), made)
    optuna.create_study(study_name="s", storage=open_storage(location)).enqueue_trial({})
    made.write_manifest(StudyManifest(study_name="s", storage=location, study_dir=str(made.root.resolve())))
    shutil.copytree(made.root, copied.root)
    load_study(copied.root).enqueue_trial({})
    assert (len(load_study(made.root).trials), len(load_study(copied.root).trials)) == (1, 2)
    moved.root.parent.mkdir()
    made.root.rename(moved.root)
    assert len(load_study(moved.root).trials) == 1
    own = study_location(moved.root)[0]
    assert own == location.replace(str(tmp_path / "made"), str(tmp_path / "moved")) and not made.root.exists()


@pytest.mark.parametrize("storage", [None, "journal"])
def test_a_copied_study_folder_without_its_storage_file_never_opens_the_original(
    tmp_path: Path, storage: str | None
) -> None:
    # The copy's manifest led to the original's file: `hpo resume` in the copy added its trials to the original study
    made, copied = StudyFolder(tmp_path / "made"), StudyFolder(tmp_path / "copied")
    location = storage_location(storage, made)
    optuna.create_study(study_name="s", storage=open_storage(location)).enqueue_trial({})
    made.write_manifest(StudyManifest(study_name="s", storage=location, study_dir=str(made.root.resolve())))
    shutil.copytree(made.root, copied.root)
    own = copied.database if storage is None else copied.journal
    own.unlink()
    with pytest.raises(InputError, match=rf"{own.name}'?: no such file, so no study 's' in it"):
        load_study(copied.root)
    assert str(own.resolve()) in study_location(copied.root)[0] and len(load_study(made.root).trials) == 1


def test_a_storage_file_named_through_the_study_folder_but_outside_it_stays_where_it_is(tmp_path: Path) -> None:
    # `--storage sqlite:///study/../all.db` (kept as written) was taken for a file inside the folder: a copy beside
    # another study's all.db opened that one.
    made, copied = StudyFolder(tmp_path / "made" / "study"), StudyFolder(tmp_path / "copied" / "study")
    location = f"sqlite:///{made.root.resolve()}/../all.db"
    optuna.create_study(study_name="s", storage=open_storage(location)).enqueue_trial({})
    made.write_manifest(StudyManifest(study_name="s", storage=location, study_dir=str(made.root.resolve())))
    shutil.copytree(made.root, copied.root)
    optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'copied' / 'all.db'}"))
    assert study_location(copied.root)[0] == location and len(load_study(copied.root).trials) == 1


@pytest.mark.parametrize("storage", [None, "journal"])
def test_another_folder_s_study_db_recorded_as_the_storage_is_followed(tmp_path: Path, storage: str | None) -> None:
    # A sweep run with --storage naming another folder's study.db (or study.journal) was opened from this folder's
    # own file of that name when there was one: another study, or none of that name.
    other, here = StudyFolder(tmp_path / "other"), StudyFolder(tmp_path / "here")
    for folder, trials in ((other, 2), (here, 1)):
        study = optuna.create_study(study_name="s", storage=open_storage(storage_location(storage, folder)))
        for _ in range(trials):
            study.enqueue_trial({})
    elsewhere = storage_location(storage, other)
    here.write_manifest(StudyManifest(study_name="s", storage=elsewhere, study_dir=str(here.root.resolve())))
    assert study_location(here.root) == (elsewhere, "s")
    assert len(load_study(here.root).trials) == 2


def test_a_path_that_is_no_journal_file_is_named(tmp_path: Path) -> None:
    # A SQLite file or a folder given as a path (a journal file, to Optuna) was an "internal error" of the CLI.
    database = tmp_path / "study.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{database}")
    with pytest.raises(ConfigError, match=rf"^storage '{database}': not an Optuna journal file \(UnicodeDecodeError: "):
        open_storage(str(database))
    (tmp_path / "notes.txt").write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"notes.txt': not an Optuna journal file \(JSONDecodeError: Expecting value"):
        open_storage(str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match=rf"^storage '{tmp_path}': not an Optuna journal file \(IsADirectoryError: "):
        open_storage(str(tmp_path))
    assert (database.read_bytes()[:15], (tmp_path / "notes.txt").read_text()) == (b"SQLite format 3", "hello\nworld\n")
    # Optuna leaves a file's last line to be completed later: a one-line file passed, was appended to, then failed.
    (tmp_path / "one.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"one.txt': not an Optuna journal file \(JSONDecodeError: Expecting value"):
        open_storage(str(tmp_path / "one.txt"))
    assert (tmp_path / "one.txt").read_text() == "hello\n"
    # a line nested deeper than json's recursion reads was a RecursionError, the CLI's internal error
    (tmp_path / "deep.txt").write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deep.txt': not an Optuna journal file \(invalid JSON: nested too deeply"):
        open_storage(str(tmp_path / "deep.txt"))


def test_a_damaged_storage_file_is_named_not_an_internal_error(tmp_path: Path) -> None:
    # A journal entry of an unknown kind (Optuna asserts "Should not reach.") and a damaged or foreign SQLite file (a
    # DatabaseError, not an OperationalError) ended `hpo best/resume/report` as internal errors of three lines.
    journal = tmp_path / "study.journal"
    optuna.create_study(study_name="s", storage=open_storage(str(journal))).ask()
    with journal.open("a", encoding="utf-8") as file:
        file.write('{"op_code": 99}\n')
    unknown = r"study.journal': not an Optuna journal file \(an entry of an unknown kind\)"
    with pytest.raises(ConfigError, match=unknown):
        open_storage(str(journal))
    database = tmp_path / "study.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{database}").ask()
    whole = database.read_bytes()
    for damaged, reason in ((whole[: len(whole) // 2], "database disk image is malformed"), (b"x" * 3000, "file is")):
        database.write_bytes(damaged)
        cannot = rf"^storage 'sqlite:///{database}': cannot read it as an Optuna database \(DatabaseError: {reason}"
        with pytest.raises(InputError, match=cannot):
            open_storage(f"sqlite:///{database}")
        assert database.read_bytes() == damaged


def test_a_relative_sqlite_url_is_recorded_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `storage: sqlite:///study.db` was recorded as written: a resume from another folder opened a new empty database.
    folder = StudyFolder(tmp_path / "study")
    (tmp_path / "a 50%").mkdir()
    monkeypatch.chdir(tmp_path / "a 50%")
    location = storage_location("sqlite:///dbs/rel.db?timeout=5", folder)
    assert location == f"sqlite:///{tmp_path}/a 50%25/dbs/rel.db?timeout=5"
    optuna.create_study(study_name="s", storage=open_storage(location))
    monkeypatch.chdir(tmp_path)
    assert optuna.load_study(study_name="s", storage=open_storage(location)).study_name == "s"
    for kept in (f"sqlite:///{tmp_path}/x.db", "sqlite:///:memory:", "postgresql://u@h/db"):
        assert storage_location(kept, folder) == kept


def test_a_new_journal_file_named_as_a_database_is_refused(tmp_path: Path) -> None:
    # `storage: study.db` silently made a journal file named study.db, which SQLite tools then could not open.
    folder = StudyFolder(tmp_path / "study")
    with pytest.raises(ConfigError, match=r"^storage 'study.db': a path is an Optuna journal file, this one named"):
        storage_location("study.db", folder)
    assert storage_location("runs.journal", folder) == str(folder.root.resolve() / "runs.journal")
    assert not folder.root.exists()


@pytest.mark.parametrize("typo", ["postgres//host/db", "sqlite//study", "postgresql+psycopg2//user:secret@host/db"])
def test_a_url_without_its_colon_is_refused_not_made_a_journal_path(tmp_path: Path, typo: str) -> None:
    # It was read as a journal file path relative to the study folder: folders `postgres/host/` and a file `db`.
    folder = StudyFolder(tmp_path / "study")
    scheme = typo.partition("//")[0]
    refused = (
        rf"^storage '{re.escape(typo.replace('secret', '***'))}': '{re.escape(scheme)}//' lacks the ':' of a URL; "
    )
    with pytest.raises(ConfigError, match=refused + r"expected a URL such as postgresql://host/db or sqlite:///"):
        storage_location(typo, folder)
    with pytest.raises(ConfigError, match=refused):
        study_location(storage=typo, study_name="s")
    assert not folder.root.exists()
    assert storage_location("runs/study.journal", folder) == str(folder.root.resolve() / "runs" / "study.journal")
    kept = f"{tmp_path}/runs//study.journal"  # '//' after a folder: a path still (`$DIR/` + `/study.journal`)
    assert storage_location(kept, folder) == str(tmp_path / "runs" / "study.journal")


def test_a_storage_given_beside_a_study_folder_must_hold_that_folder_s_study(swept, tmp_path: Path) -> None:
    """`hpo resume --study-dir A --storage <B's>` resumed B's study of the same name in A: it removed A's trial
    models and wrote B's best trial into A's best_config.json; `hpo best` did the same."""
    study, study_dir = swept
    own = study_location(study_dir)[0]
    assert load_study(study_dir, storage=own).study_name == study.study_name  # its own storage, named: fine
    other = StudyFolder(tmp_path / "other")
    location = storage_location(None, other)
    optuna.create_study(study_name=study.study_name, storage=open_storage(location))
    other.write_manifest(StudyManifest(study_name=study.study_name, storage=location, study_dir=str(other.root)))
    refused = rf"^{other.root}: storage '{own}' holds the study '{study.study_name}' of the study folder {study_dir}, "
    refused += rf"not this folder's; continue it there \(`training hpo resume --study-dir {study_dir}`\) or give the "
    refused += rf"storage its study.json names \('{location}'\), or none$"
    with pytest.raises(InputError, match=refused):
        load_study(other.root, storage=own)
    with pytest.raises(InputError, match=refused):
        resume_hpo_sweep(other.root, storage=own)


def test_a_sweep_in_a_new_folder_does_not_take_in_another_folder_s_study(swept, config_dir: Path, tmp_path) -> None:
    """`hpo run --study-dir B --storage <A's>` went on with A's study in B: its trials split between the folders, and
    B's best config named a trial of A's without its checkpoint. Then it was refused only once the data was read and
    the model checked, and left B/.study.lock behind."""
    from training.hpo import create_search_space, run_local_hpo_sweep

    study, study_dir = swept
    own, trials = study_location(study_dir)[0], len(study.trials)
    joiner = tmp_path / "joiner"
    space = create_search_space(load_hpo_config(config_dir / "hpo" / "tiny.yaml"))
    refused = rf"^{joiner}: storage '{own}' holds the study '{study.study_name}' of the study folder {study_dir}, "
    refused += rf"not this folder's; continue it there \(`training hpo resume --study-dir {study_dir}`\) or give "
    nowhere = tmp_path / "no-data"  # refused before the data is read
    with pytest.raises(InputError, match=refused + "this folder another study name or storage$"):
        run_local_hpo_sweep("tiny-bert", space, config_dir=config_dir, study_dir=joiner, storage=own, data_path=nowhere)
    assert len(load_study(study_dir).trials) == trials
    assert not joiner.exists()


@pytest.mark.parametrize("given", ["notaurl", "gone.journal", "sqlite:///{tmp}/gone.db"])
def test_a_storage_file_that_does_not_exist_is_named_not_created(tmp_path: Path, given: str) -> None:
    # `hpo resume --storage notaurl` and `hpo best --storage sqlite:///typo.db` said the storage "holds no study" and
    # left an empty journal file or database behind, which the next try then opened as if it were the study's.
    storage = given.replace("{tmp}", str(tmp_path))
    folder = StudyFolder(tmp_path / "study")
    location = storage_location(None, folder)
    optuna.create_study(study_name="s", storage=open_storage(location))
    folder.write_manifest(StudyManifest(study_name="s", storage=location, study_dir=str(folder.root)))
    before = sorted(path.name for path in tmp_path.rglob("*"))
    named = r"^storage '[^']*(notaurl|gone\.journal|gone\.db)': no such file, so no study 's' in it$"
    with pytest.raises(InputError, match=named):
        load_study(folder.root, storage=storage)
    with pytest.raises(InputError, match=r"': no such file, so no study 's' in it$"):
        resume_hpo_sweep(folder.root, storage=storage)
    with pytest.raises(InputError, match=r"': no such file, so no study 'x' in it$"):
        load_study(storage=str(tmp_path / "gone.journal"), study_name="x")
    with pytest.raises(InputError, match=rf"^storage '{tmp_path}': not a file, so no study 'x' in it$"):
        load_study(storage=str(tmp_path), study_name="x")
    assert sorted(path.name for path in tmp_path.rglob("*")) == before


def test_a_bare_postgresql_url_opens_with_the_driver_the_postgres_extra_installs(tmp_path: Path) -> None:
    """SQLAlchemy 2.1 takes psycopg 3 for postgresql://, which the extra (psycopg2) does not install: the URL of the
    docs was refused as a missing driver with the extra installed. No server: opening fails only at the connection."""
    from importlib.util import find_spec

    from training.common.errors import TrainingError

    if find_spec("psycopg2") is None:
        pytest.skip("the postgres extra (psycopg2) is not installed")
    refused = r"cannot open it \(OperationalError: connection to server on socket"
    with pytest.raises(TrainingError, match=refused) as got:
        open_storage(f"postgresql://me:secret@/study?host={tmp_path}")
    assert "\n" not in str(got.value) and "secret" not in str(got.value)
    if find_spec("psycopg") is None:
        with pytest.raises(InputError, match=r"its database driver 'psycopg' is not installed; for PostgreSQL: pip"):
            open_storage(f"postgresql+psycopg://me@/study?host={tmp_path}")


def test_processes_opening_a_new_sqlite_database_together_all_open_it(tmp_path: Path) -> None:
    """Sweeps of other folders (or workers) opening one new SQLite database at once each made its tables: all but one
    failed, with "table studies already exists" or as an unreadable database (alembic's version recorded twice)."""
    location = f"sqlite:///{tmp_path / 'new.db'}"
    start, errors = threading.Barrier(3), []

    def open_it() -> None:
        start.wait(timeout=30)
        try:
            open_storage(location)
        except TrainingError as error:
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors


def test_a_write_the_storage_fails_is_found_behind_optunas_own_error(tmp_path: Path) -> None:
    # A full disk at a trial's end reached the CLI as Optuna's "AssertionError: Should not reach." (journal) or an
    # UnboundLocalError (SQLite): an internal error naming neither the storage nor the cause.
    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))

    def objective(trial: optuna.Trial) -> float:
        journal.unlink()
        journal.mkdir()  # the trial's end cannot be written
        return 0.5

    with pytest.raises(Exception) as raised:
        study.optimize(objective, n_trials=1)
    assert not isinstance(raised.value, OSError)
    assert isinstance(storage_failure(raised.value), IsADirectoryError)


def test_an_error_of_a_callback_is_no_storage_failure(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=open_storage(str(tmp_path / "study.journal")))

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        raise BrokenPipeError("stdout is gone")

    with pytest.raises(BrokenPipeError) as raised:
        study.optimize(lambda trial: 0.5, n_trials=1, callbacks=[callback])
    assert storage_failure(raised.value) is None


def test_a_storage_failure_is_not_the_error_its_write_was_recording(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    trial = study.ask()
    journal.unlink()
    journal.mkdir()  # the disk is full by the time the trial's failure is recorded
    with pytest.raises(OSError) as raised:
        try:
            raise RuntimeError("CUDA out of memory")
        except RuntimeError:
            trial.set_user_attr("fail_reason", "CUDA out of memory")
    assert isinstance(storage_failure(raised.value), IsADirectoryError)  # not the RuntimeError
