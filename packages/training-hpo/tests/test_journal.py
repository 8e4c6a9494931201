"""Journal file storages keep whole lines: a write cut short never turns into a study that cannot be read."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import optuna

from training.hpo.storage import open_storage


def _study_with_one_trial(journal: Path) -> None:
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    study.tell(study.ask(), 0.5)


def _run_with_file_limit(code: str, limit: int) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh Python whose files may not grow past `limit` bytes: a write past it fails as on a full disk."""
    return subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),  # Python ignores SIGXFSZ
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_append_after_a_write_cut_short_keeps_the_study_readable(tmp_path: Path) -> None:
    # A full disk or a kill mid-write left half a line; Optuna skipped it when reading, but its next append continued
    # it: one invalid line mid-file, and every later open failed with a JSONDecodeError.
    journal = tmp_path / "study.journal"
    _study_with_one_trial(journal)
    whole = journal.read_bytes()
    with journal.open("ab") as file:
        file.write(whole.splitlines()[-1][:40])
    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    study.tell(study.ask(), 0.7)
    reread = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    assert [trial.value for trial in reread.get_trials()] == [0.5, 0.7]
    assert journal.read_bytes().startswith(whole)


def test_an_append_that_fills_the_disk_leaves_the_journal_as_it_was(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    _study_with_one_trial(journal)
    before = journal.read_bytes()
    limit = len(before) + 100  # room for part of the next line only
    write = (
        "import optuna; from training.hpo.storage import open_storage\n"
        f"study = optuna.load_study(study_name='s', storage=open_storage({str(journal)!r}))\n"
        "study.set_user_attr('note', 'x' * 1000)\n"
    )
    assert "OSError: [Errno 27] File too large" in _run_with_file_limit(write, limit).stderr
    assert journal.read_bytes() == before


def test_a_failed_append_keeps_the_whole_lines_it_wrote(tmp_path: Path) -> None:
    # Readers do not take the lock: another process may have read, and cached the offset after, a whole line already.
    journal = tmp_path / "study.journal"
    _study_with_one_trial(journal)
    before = journal.read_bytes()
    first = json.dumps({"op_code": 8, "worker_id": "w", "study_id": 0, "user_attr": {"a": 1}}, separators=(",", ":"))
    limit = len(before) + len(first) + 100  # the first line, and part of the second
    write = (
        "from training.hpo.journal import WholeLinesJournal\n"
        f"WholeLinesJournal({str(journal)!r}).append_logs([{first}, {{'op_code': 8, 'note': 'x' * 1000}}])\n"
    )
    assert "OSError: [Errno 27] File too large" in _run_with_file_limit(write, limit).stderr
    assert journal.read_bytes() == before + first.encode() + b"\n"
