"""`training migrate PATH...` (or `python -m training_compat.migrate`): rewrite legacy imports in `.py` files and
notebooks. A diff by default, `--write` applies it, `--check` exits 1 when anything would change or is left for a
human (listed as `file:line: why`, before a summary table); a file that does not parse is left alone (exit 2).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import stat
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.cli.main import CommandParser
from training.common.atomic import atomic_write_bytes
from training.common.errors import InputError, TrainingError, print_error

DESCRIPTION = (
    "Rewrite legacy imports (training.trainer, training.model, hpo, training_exec, from training import ...) "
    "in .py files and notebooks to the new paths. Prints a diff unless --write or --check is given."
)
SUFFIXES = (".py", ".ipynb")
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})
_SPECIAL_FILES = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass(frozen=True)
class Finding:
    """A legacy import left for a human: where (`path:line`), what to do, and the reason it is counted under."""

    where: str
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass(frozen=True)
class Sources:
    """The files to migrate, and a line for each thing that looked like one but was left alone (and why)."""

    files: tuple[Path, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class Migration:
    """One file's rewrite: its bytes before and after, the diff to show, what was left, the imports changed."""

    before: bytes
    after: bytes
    diff: str
    findings: tuple[Finding, ...]
    imports: int


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `migrate` to the `training` parser (entry point `training.cli.commands`)."""
    parser = commands.add_parser(
        "migrate",
        help="rewrite legacy imports (training.trainer, hpo, training_exec, ...) to the new paths",
        description=DESCRIPTION,
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".py/.ipynb files or folders (recursive)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the files in place (default: print a diff)")
    mode.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a file would change or needs a human"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Migrate every file under `args.paths`, one at a time, and print a summary; returns the exit code."""
    found = sources(args.paths)
    for line in found.skipped:
        print(line, file=sys.stderr)
    files = found.files
    changed = imports = failed = 0
    reasons: Counter[str] = Counter()  # of what was left for a human; only counts outlive a file (a tree can be large)
    for path in files:
        try:
            migration = migrate_file(path)
        except (InputError, OSError) as error:  # OSError: unreadable
            print(f"{error} (file left unchanged)", file=sys.stderr)
            failed += 1
            continue
        reasons.update(finding.reason for finding in migration.findings)
        findings = migration.findings
        if migration.after != migration.before and args.write:
            try:
                _write(path, migration.after)
            except (InputError, OSError) as error:
                _list(findings)
                print(f"{error} (file left unchanged)", file=sys.stderr)
                failed += 1
                continue
            findings = migrate_file(path).findings  # at their lines in the file as written, as --check lists them
        _list(findings)
        if migration.after == migration.before:
            continue
        if args.write:
            print(f"rewrote {path}")
        elif args.check:
            print(f"would rewrite {path}")
        else:
            sys.stdout.write(migration.diff)
        changed += 1
        imports += migration.imports
    print(_summary(files, changed, imports, reasons, failed, written=args.write), file=sys.stderr, end="")
    if failed:
        return InputError.exit_code
    return 1 if args.check and (changed or reasons) else 0


def _write(path: Path, source: bytes) -> None:
    """Replace the file `path` reaches (through a link) atomically, keeping its permissions; a file that no one may
    write is refused (renaming over it would ignore its mode)."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(f"{path}: read-only (mode {mode:o}); make it writable to migrate it")
    try:
        atomic_write_bytes(target, source, mode=mode)
    except OSError as error:  # a folder that cannot be written, a full disk: named, not the temporary file
        raise InputError(f"{path}: cannot be written ({error.strerror or error})") from None


def _summary(
    files: Sequence[Path], changed: int, imports: int, reasons: Counter[str], failed: int, written: bool
) -> str:
    """The summary table, label and count per line; the reasons of what was left for a human indented under it."""
    done = "rewritten" if written else "to rewrite"
    rows = [
        ("files scanned", len(files)),
        ("notebooks", sum(path.suffix == ".ipynb" for path in files)),
        (f"files {done}", changed),
        (f"imports {done}", imports),
        ("left for a human", reasons.total()),
        *((f"  {reason}", count) for reason, count in sorted(reasons.items())),
        ("files failed", failed),
    ]
    width = max(len(label) for label, _ in rows)
    return "".join(f"{label:<{width}}  {count:>5}\n" for label, count in rows)


def sources(paths: Sequence[Path]) -> Sources:
    """The files named, and the `.py`/`.ipynb` files under the folders named, each once however many links reach it.

    Left alone: hidden folders and venvs; special files (reading a FIFO blocks until something writes to it); links
    out of the folders named (rewriting a file the user did not point at would surprise them).
    """
    tops = [os.path.realpath(path) for path in paths if path.is_dir()]
    found: dict[str, Path] = {}  # real path -> the name it was first reached by
    walked: set[str] = set()  # real paths of the folders walked, each once: a link back up does not loop
    links: list[Path] = []  # followed last, so that a file the walk also reaches directly is shown by its own name
    skipped: list[str] = []

    def walk(folder: Path) -> None:
        for root, folders, names in os.walk(folder):  # links are not followed here, but queued
            real = os.path.realpath(root)
            if real in walked:
                folders.clear()
                continue
            walked.add(real)
            for file in (Path(root, name) for name in sorted(names) if name.endswith(SUFFIXES)):
                if file.is_symlink():
                    links.append(file)
                else:
                    add(file)
            subfolders = [Path(root, name) for name in sorted(folders) if not _skipped(Path(root, name))]
            folders[:] = [sub.name for sub in subfolders if not sub.is_symlink()]
            links.extend(sub for sub in subfolders if sub.is_symlink())

    def add(file: Path) -> None:
        if file.exists() and (why := _not_a_file(file)) is not None:  # a link to nothing fails when read
            skipped.append(f"{file}: {why} (skipped)")
        else:
            found.setdefault(os.path.realpath(file), file)

    for path in paths:
        if path.is_dir():
            walk(path)
        elif (why := _not_a_file(path)) is not None:
            raise InputError(f"{path}: {why}")
        else:
            found.setdefault(os.path.realpath(path), path)
    while links:
        link = links.pop(0)
        real = os.path.realpath(link)
        if real in found:  # a file named on the command line, or already reached by its own name
            continue
        if not any(os.path.commonpath((real, top)) == top for top in tops):
            skipped.append(f"{link}: a symbolic link to {os.readlink(link)}, out of the folders named (skipped)")
        elif link.is_dir():
            walk(link)
        else:
            add(link)
    return Sources(tuple(found.values()), tuple(skipped))


def _skipped(folder: Path) -> bool:
    return folder.name.startswith(".") or folder.name in SKIPPED_FOLDERS or (folder / "pyvenv.cfg").exists()


def migrate_file(path: Path) -> Migration:
    """Rewrite one file in memory; raise `InputError` naming the file and line when it does not parse."""
    from training_compat.notebook import rewrite_notebook
    from training_compat.rewrite import UnparsableSource, rewrite

    if (why := _not_a_file(path)) is not None:
        raise InputError(f"{path}: {why}")
    before = path.read_bytes()
    if path.suffix != ".ipynb":
        try:
            result = rewrite(before)
        except UnparsableSource as error:
            raise InputError(f"{path}:{error.line}: {error.reason}") from None
        findings = tuple(Finding(f"{path}:{note.line}", note.text, note.reason) for note in result.notes)
        before_text, after_text = (text.decode(result.encoding, "replace") for text in (before, result.source))
        diff = _diff(before_text, after_text, str(path))
        return Migration(before, result.source, diff, findings, result.imports)
    try:
        notebook = rewrite_notebook(before)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    findings = tuple(
        Finding(f"{path}: cell {item.cell}, line {item.note.line}", item.note.text, item.note.reason)
        for item in notebook.notes
    )
    diff = "".join(_diff(cell.before, cell.after, f"{path} (cell {cell.index})") for cell in notebook.cells)
    return Migration(before, notebook.source, diff, findings, notebook.imports)


def _not_a_file(path: Path) -> str | None:
    """Why `path` is not a regular file to read, or None when it is."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        missing = isinstance(error, (FileNotFoundError, NotADirectoryError))
        if path.is_symlink():
            fate = "does not exist" if missing else f"cannot be followed ({error.strerror})"
            return f"a symbolic link to {os.readlink(path)}, which {fate}"
        if missing or error.errno == errno.ELOOP:  # ELOOP: a link in a folder above it loops
            return "no such file or folder" if missing else f"cannot be reached ({error.strerror})"
        raise
    if stat.S_ISREG(mode):
        return None
    return f"{_SPECIAL_FILES.get(stat.S_IFMT(mode), 'a special file')}, not a regular file"


def _list(findings: tuple[Finding, ...]) -> None:
    for finding in findings:
        print(finding, file=sys.stderr)


def _diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training_compat.migrate PATH...`: the same command outside the `training` CLI."""
    parser = CommandParser(prog="python -m training_compat.migrate", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TrainingError as error:
        print_error(f"{parser.prog}: error: {error}")
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
