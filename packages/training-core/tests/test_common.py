"""Shared foundations: atomic files, the content fingerprint, optional dependencies, lazy names, errors."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from training.common import (
    ConfigError,
    DataError,
    InputError,
    MissingDependencyError,
    TrainingError,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    attach,
    canonical_json,
    fingerprint,
    fingerprint_items,
    require,
)
from training.common.file_lock import file_lock
from training.common.home import expand_home
from training.common.plural import counted
from training.core.tiny_model import tiny_bert_folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "run" / "metrics.json"
    atomic_write_json(target, {"b": 1, "a": [1.5, "é"]})
    atomic_write_json(target, {"b": 2})
    assert json.loads(target.read_text(encoding="utf-8")) == {"b": 2}
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
    assert mode(target) == 0o666 & ~umask()


def test_atomic_writes_follow_the_process_umask(tmp_path: Path) -> None:
    """Under umask 027 a written file is 0o640 and a model folder 0o750, as open() and mkdir() would make them."""
    code = f"""
import os, stat
os.umask(0o027)
from training.common.atomic import atomic_directory, atomic_write_text
target = atomic_write_text({str(tmp_path / "a.txt")!r}, "a")
with atomic_directory({str(tmp_path / "model")!r}) as staging:
    (staging / "w").write_bytes(b"w")
modes = [stat.S_IMODE(path.stat().st_mode) for path in (target, target.parent / "model", target.parent / "model" / "w")]
print(*(oct(value) for value in modes), oct(os.umask(0)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0o640", "0o750", "0o640", "0o27"]


def test_atomic_write_refuses_a_named_pipe_and_leaves_it_in_place(tmp_path: Path) -> None:
    """Renamed over, a pipe (or, for root, `/dev/null` given as `--output`) became a regular file."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    refusal = f"{pipe}: is a device, pipe or socket; expected the path of a regular file to write"
    with pytest.raises(InputError, match=f"^{re.escape(refusal)}$"):
        atomic_write_text(pipe, "a")
    assert stat.S_ISFIFO(pipe.stat().st_mode) and [path.name for path in tmp_path.iterdir()] == ["pipe"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_write_that_fills_the_disk_names_its_target_and_keeps_the_old_one(tmp_path: Path) -> None:
    """The OS names no file when a write fails: the CLI showed "[Errno 27] File too large" alone (report, export)."""
    code = f"""
import resource
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # Python ignores SIGXFSZ: a write past it fails with EFBIG
from training.common.atomic import atomic_directory, atomic_write_bytes
try:
    atomic_write_bytes({str(tmp_path / "a.bin")!r}, bytes(10_000))
except OSError as error:
    print(error)
try:
    with atomic_directory({str(tmp_path / "model")!r}) as staging:
        (staging / "w").write_bytes(bytes(10_000))
except OSError as error:
    print(error)
"""
    atomic_write_text(tmp_path / "a.bin", "old")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.splitlines() == [
        f"[Errno 27] File too large: '{tmp_path / 'a.bin'}'",
        f"[Errno 27] File too large: '{tmp_path / 'model'}'",
    ]
    assert (tmp_path / "a.bin").read_text(encoding="utf-8") == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["a.bin"]


def test_an_os_error_inside_an_atomic_directory_keeps_its_type_and_words(tmp_path: Path) -> None:
    class SaveFailed(OSError):
        pass

    target = tmp_path / "model"
    with pytest.raises(SaveFailed, match=r"^cannot save the tokenizer$"), atomic_directory(target):  # no errno
        raise SaveFailed("cannot save the tokenizer")
    full = rf"^\[Errno 28\] No space left on device: '{re.escape(str(target))}'$"
    with pytest.raises(SaveFailed, match=full), atomic_directory(target):
        raise SaveFailed(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_swaps_in_a_complete_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "weights").write_text("1", encoding="utf-8")
        assert not target.exists()
    with atomic_directory(target) as staging:
        (staging / "weights").write_text("2", encoding="utf-8")
    assert (target / "weights").read_text(encoding="utf-8") == "2"
    assert mode(target) == 0o777 & ~umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_directory_over_a_link_replaces_the_link_and_keeps_what_it_pointed_to(tmp_path: Path) -> None:
    """An export onto a link (`current -> v1`) left the link beside the new folder as `.current.old`, for good."""
    kept = tmp_path / "v1"
    kept.mkdir()
    (kept / "weights").write_text("1", encoding="utf-8")
    (tmp_path / "current").symlink_to(kept)
    with atomic_directory(tmp_path / "current") as staging:
        (staging / "weights").write_text("2", encoding="utf-8")
    assert (tmp_path / "current" / "weights").read_text(encoding="utf-8") == "2"
    assert (kept / "weights").read_text(encoding="utf-8") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1"]
    (tmp_path / ".current.old").symlink_to(kept)  # what that left behind: a later export failed on it
    with atomic_directory(tmp_path / "current") as staging:
        (staging / "weights").write_text("3", encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1"]
    assert (kept / "weights").read_text(encoding="utf-8") == "1"


def test_atomic_directory_over_a_file_left_as_its_retired_name_replaces_it(tmp_path: Path) -> None:
    """A plain file at `.model.old` (copied back by a sync tool, say) failed the swap with NotADirectoryError."""
    (tmp_path / "model").mkdir()
    (tmp_path / ".model.old").write_text("stray", encoding="utf-8")
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "weights").write_text("2", encoding="utf-8")
    assert (tmp_path / "model" / "weights").read_text(encoding="utf-8") == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_directory_gives_files_written_private_ordinary_permissions(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "model") as staging:
        weights = staging / "sub" / "model.safetensors"
        weights.parent.mkdir()
        weights.write_bytes(b"w")
        weights.chmod(0o600)  # as safetensors writes its files
    assert mode(tmp_path / "model" / "sub" / "model.safetensors") == 0o666 & ~umask()


def test_atomic_directory_leaves_the_target_alone_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "weights").write_text("1", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "weights").write_text("half", encoding="utf-8")
        raise RuntimeError("interrupted")
    assert (target / "weights").read_text(encoding="utf-8") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def age(path: Path, seconds: float) -> Path:
    """`path` and everything in it last touched `seconds` ago: a writer killed that long ago."""
    for part in (path, *path.rglob("*")):
        when = part.stat().st_mtime - seconds
        os.utime(part, (when, when))
    return path


def test_atomic_writes_remove_what_a_killed_writer_of_the_same_target_left_and_keep_a_live_ones(
    tmp_path: Path,
) -> None:
    from training.common.atomic import STALE_STAGING_S

    killed = tmp_path / ".job.json.k1.tmp"
    killed.write_text("{")
    age(killed, STALE_STAGING_S + 60)
    live = tmp_path / ".job.json.l1.tmp"
    live.write_text("{")
    other = tmp_path / ".notes.txt.k2.tmp"  # another target's: left to its own writes
    other.write_text("x")
    age(other, STALE_STAGING_S + 60)
    killed_folder, live_folder = tmp_path / ".model.k3.tmp", tmp_path / ".model.l2.tmp"
    for folder in (killed_folder, live_folder):
        folder.mkdir()
        (folder / "weights").write_text("w")
    age(killed_folder, STALE_STAGING_S + 60)
    age(live_folder, STALE_STAGING_S + 60)
    (live_folder / "optimizer").write_text("o")  # still being filled

    atomic_write_json(tmp_path / "job.json", {})
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "weights").write_text("w")

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".job.json.l1.tmp",
        ".model.l2.tmp",
        ".notes.txt.k2.tmp",
        "job.json",
        "model",
    ]


def test_a_write_inside_a_file_is_an_input_error_naming_that_file(tmp_path: Path) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("keep", encoding="utf-8")
    inside = f"lies inside the file {taken}; expected the path of a"
    with pytest.raises(InputError, match=f"^{re.escape(f'{taken}/out/result.json: {inside} file to write')}$"):
        atomic_write_json(taken / "out" / "result.json", {"a": 1})
    folder = f"^{re.escape(f'{taken}/export: {inside} folder to write')}$"
    with pytest.raises(InputError, match=folder), atomic_directory(taken / "export"):
        pass
    assert taken.read_text(encoding="utf-8") == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("inside", ["", "sub", "training"])
def test_a_cache_variable_at_a_file_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inside: str
) -> None:
    """It failed later as `NotADirectoryError: [Errno 20] Not a directory: '.../training'`, naming no variable."""
    file = tmp_path / "cache"
    file.write_text("keep", encoding="utf-8")
    variable = file / inside if inside != "training" else tmp_path  # `training` inside the cache folder is the file
    if inside == "training":
        file = file.rename(tmp_path / "training")
    monkeypatch.setenv("XDG_CACHE_HOME", str(variable))
    expected = f"XDG_CACHE_HOME={variable}: {file} is a file; expected a folder to keep the toolkit's cache in"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        tiny_bert_folder()
    assert file.read_text(encoding="utf-8") == "keep" and [p.name for p in tmp_path.iterdir()] == [file.name]


def test_expand_home_expands_a_leading_tilde_and_names_one_of_no_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pathlib's `expanduser` raised a RuntimeError ('Could not determine home directory') naming nothing."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert expand_home("~/runs") == tmp_path / "runs" and expand_home(Path("runs/~x")) == Path("runs/~x")
    with pytest.raises(InputError, match=r"^~no-such-user-m2/x: ~no-such-user-m2 names no user of this machine; "):
        expand_home("~no-such-user-m2/x")


def test_counts_are_worded_in_the_singular_for_one() -> None:
    assert [counted(n, "trial") for n in (0, 1, 2)] == ["0 trials", "1 trial", "2 trials"]
    assert counted(1, "entity", "entities") == "1 entity" and counted(3, "entity", "entities") == "3 entities"


def test_fingerprint_ignores_key_order_and_sees_every_value() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1, "b": [1, 2]}) != fingerprint({"a": 1, "b": [2, 1]})
    assert fingerprint_items([{"a": 1}]) == fingerprint({"a": 1})
    assert fingerprint_items([[1], [2]]) != fingerprint_items([[1, 2]])
    with pytest.raises(ValueError):
        fingerprint(float("nan"))


def test_require_names_the_install_command() -> None:
    assert require("json", "a test").dumps([]) == "[]"
    with pytest.raises(MissingDependencyError) as caught:
        require("no_such_module_xyz", "a test")
    assert str(caught.value) == (
        "a test needs 'no_such_module_xyz', which is not installed: pip install no_such_module_xyz"
    )
    assert isinstance(caught.value, ImportError)


def test_attach_resolves_names_on_first_use() -> None:
    getattr_, dir_, all_ = attach("pkg", {"dumps": "json", "missing": "no_such_module_xyz"})
    assert all_ == ["dumps", "missing"] == dir_()
    assert getattr_("dumps") is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getattr_("loads")
    with pytest.raises(ModuleNotFoundError):
        getattr_("missing")  # not an optional dependency we know: the plain error stands


def test_exit_reason_names_the_signal_that_killed_a_child() -> None:
    from training.common.errors import exit_reason

    assert exit_reason(2) == "exit code 2"
    assert exit_reason(-15) == "killed by signal SIGTERM"
    assert exit_reason(-9) == "killed by signal SIGKILL (the system may have run out of memory)"
    assert exit_reason(-200) == "killed by signal 200"


class RecordedWrites(io.RawIOBase):
    """A stream's bytes as the write calls that reached it (one per system call under `python -u`)."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.calls.append(bytes(data))
        return len(data)


def test_an_error_line_reaches_an_unbuffered_stderr_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # With PYTHONUNBUFFERED (as CI sets), `print` wrote the text and its newline apart: two torchrun workers failing
    # together left `error: Aerror: A` on one line of the shared log.
    from training.common.errors import print_error

    writes = RecordedWrites()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(writes, encoding="utf-8", write_through=True))
    print("error: by print", file=sys.stderr)
    print_error("error: x.conll: no such file or folder")
    assert writes.calls == [b"error: by print", b"\n", b"error: x.conll: no such file or folder\n"]


def test_error_hierarchy_and_exit_codes() -> None:
    assert issubclass(ConfigError, InputError) and issubclass(DataError, InputError)
    assert issubclass(InputError, TrainingError)
    assert (TrainingError.exit_code, InputError.exit_code, ConfigError.exit_code) == (1, 2, 2)


def test_a_json_file_read_whole_names_each_fault_in_the_error_class_asked(tmp_path: Path) -> None:
    """A JSON file nested deeper than Python's recursion limit was a RecursionError (the CLI's internal error)."""
    from training.common.errors import TOO_DEEP
    from training.common.json_files import read_json_file

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    expected = f"{deep}: not a readable record (invalid JSON: {TOO_DEEP})"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        read_json_file(deep, "record")
    with pytest.raises(DataError, match=f"^{re.escape(str(deep))}: not a readable record \\(invalid JSON: nested"):
        read_json_file(deep, "record", DataError)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: not a readable record \(Expecting property name"):
        read_json_file(tmp_path / "bad.json", "record", DataError)
    with pytest.raises(ConfigError, match=r"gone\.json: no such record$"):
        read_json_file(tmp_path / "gone.json", "record")
    deep.write_text("[" * 100 + "]" * 100, encoding="utf-8")
    assert read_json_file(deep, "record") == json.loads(deep.read_text(encoding="utf-8"))
    # a file saved with a UTF-8 BOM (Notepad) was "not a readable record (Unexpected UTF-8 BOM ...)"
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json_file(tmp_path / "bom.json", "record") == {"a": 1}
    # a key written twice (a hand-edited best config) kept its last value, silently
    (tmp_path / "twice.json").write_text('{"a": {"b": 1, "b": 2}}', encoding="utf-8")
    expected = r"twice\.json: not a readable record \(key 'b' is written twice in one object; keep one\)$"
    with pytest.raises(ConfigError, match=expected):
        read_json_file(tmp_path / "twice.json", "record")


def test_a_device_read_as_a_json_file_is_refused_and_a_pipe_is_read() -> None:
    """`training final /dev/zero` read for ever; a pipe (`hpo best --json | training final /dev/stdin`) is read."""
    code = "from training.common.json_files import read_json_file; print(read_json_file('{}', 'best-config file'))"
    done = subprocess.run([sys.executable, "-c", code.format("/dev/zero")], capture_output=True, text=True, timeout=60)
    refusal = "/dev/zero: is a device or socket; expected a best-config file"
    assert done.stderr.splitlines()[-1] == f"training.common.errors.ConfigError: {refusal}"
    piped = subprocess.run(
        [sys.executable, "-c", code.format("/dev/stdin")], input='{"a": 1}', capture_output=True, text=True, timeout=60
    )
    assert piped.returncode == 0 and piped.stdout == "{'a': 1}\n", piped.stderr


def test_loading_pauses_the_garbage_collector_and_restores_it_even_on_error(tmp_path: Path) -> None:
    import gc

    from data.loaders import load_dataset
    from training.common.gc_pause import gc_paused

    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")
    assert gc.isenabled()
    (tmp_path / "train.jsonl").write_text('{"text": "Ann", "annotations": [[0, 3, "PER"]]}\n', encoding="utf-8")
    gc.disable()  # a caller's own choice is kept
    try:
        assert load_dataset(tmp_path / "train.jsonl")["train"][0].tags == ("B-PER",)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_remove_staging_leftovers_clears_what_cut_short_writes_left_at_any_depth(tmp_path: Path) -> None:
    """A write cut short between atomic_directory's two renames leaves the retired `.model.old` (a whole model) as
    well as the staging folder: the staging goes, and the retired model is put back where no new one came in (it
    was deleted, the only copy); files written whole stay."""
    from training.common.atomic import remove_staging_leftovers

    fold, swapped = tmp_path / "fold-0", tmp_path / "fold-1"
    for leftover in (fold / ".model.old", fold / ".model.x1.tmp", tmp_path / ".report.x2.tmp", swapped / ".model.old"):
        leftover.mkdir(parents=True)
        (leftover / "weights.bin").write_bytes(b"old")
    (fold / ".fold.json.x3.tmp").write_text("{")
    atomic_write_text(fold / "fold.json", "{}")
    (swapped / "model").mkdir()

    remove_staging_leftovers(tmp_path)

    left = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*"))
    assert left == ["fold-0", "fold-0/fold.json", "fold-0/model", "fold-0/model/weights.bin", "fold-1", "fold-1/model"]


def test_a_lock_file_removed_by_its_holder_is_made_anew_for_the_waiter_who_holds_it_against_later_ones(
    tmp_path: Path,
) -> None:
    """A refused sweep removes the new folder it locked. A waiter that had opened the removed file held a lock on
    nothing: a later process locked the file made anew, and both went on together."""
    lock = tmp_path / "new" / ".lock"
    waiter_in, waiter_done = threading.Event(), threading.Event()

    def waiter() -> None:
        with file_lock(lock):
            waiter_in.set()
            waiter_done.wait(10)

    thread = threading.Thread(target=waiter)
    with file_lock(lock):
        thread.start()
        time.sleep(0.5)  # the waiter has opened the file and waits for its lock
        lock.unlink()
    try:
        assert waiter_in.wait(10)
        assert lock.is_file()
        with pytest.raises(BlockingIOError), file_lock(lock, wait=False):
            pass
    finally:
        waiter_done.set()
        thread.join()
    with file_lock(lock, wait=False):  # released
        pass


def test_writing_into_many_folders_keeps_a_bounded_record_of_them(tmp_path: Path) -> None:
    """A long-lived process (a sweep's trial folders, a notebook's runs) remembers the probed permissions of a few
    folders, not of every folder it ever wrote into."""
    import gc

    from training.common.atomic import atomic_write_text

    def write_runs(first: int, count: int) -> int:
        for index in range(first, first + count):
            atomic_write_text(tmp_path / f"run{index}" / "metrics.json", "{}")
        gc.collect()
        return len(gc.get_objects())

    warmed = write_runs(0, 100)
    assert write_runs(100, 200) - warmed < 100  # 3 objects a folder were kept: 600
