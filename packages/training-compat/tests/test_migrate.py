"""`training migrate` on a user's project: check, diff, write, and a second run that finds nothing left."""

from __future__ import annotations

import json
import os
import stat
import tracemalloc
from pathlib import Path

import pytest

from training_compat.migrate import main

LIGHT = "-W", "error::DeprecationWarning"
APP_USES = '''

import hpo  # the tuner
import training.data as td
import training.model


def main(config, dataset, output_dir):
    """Not run by the tests: importing the module is the check."""
    model, tokenizer = create_model_and_tokenizer(config)
    metrics = train_model(config, dataset, output_dir)
    study = hpo.run_local_hpo_sweep("bert", hpo.create_search_space({}))
    return training.model.load_model, td.load_dataset, metrics, study


if __name__ == "__main__":
    main(None, None, None)
'''
TUNING = '''\
"""Relative imports stay; the split import becomes two lines."""
from . import features
from training import train_model, run_local_hpo_sweep  # noqa: F401
import training_exec


def refit(best):
    return training_exec.execute_final_training(best), features.X
'''


def training_migrate(python, *args: str, cwd: Path, timeout: float = 600):
    return python("-m", "training.cli", "migrate", *args, cwd=cwd, timeout=timeout)


@pytest.fixture
def project(guide, tmp_path: Path) -> Path:
    """A user's project with every legacy import of the guide, a package, a notebook and a hidden folder."""
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text(
        '"""Train, tune and refit with the old API."""\n# Every import of the guide:\n'
        + "\n".join(statement for statement, _ in guide)
        + APP_USES,
        encoding="utf-8",
    )
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pkg" / "features.py").write_text("X = 1\n", encoding="utf-8")
    (root / "pkg" / "tuning.py").write_text(TUNING, encoding="utf-8")
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": ["%matplotlib inline\n", "from hpo import extract_best_config_from_study"],
    }
    document = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "analysis.ipynb").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "vendored.py").write_text("import hpo\n", encoding="utf-8")
    return root


def table(*, scanned=0, notebooks=0, files=0, imports=0, failed=0, done="to rewrite", **left: int) -> str:
    """The summary `training migrate` prints last; `left` counts what was left for a human, by reason."""
    rows = [
        ("files scanned", scanned),
        ("notebooks", notebooks),
        (f"files {done}", files),
        (f"imports {done}", imports),
        ("left for a human", sum(left.values())),
        *((f"  {reason.replace('_', ' ')}", count) for reason, count in sorted(left.items())),
        ("files failed", failed),
    ]
    width = max(len(label) for label, _ in rows)
    return "".join(f"{label:<{width}}  {count:>5}\n" for label, count in rows)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_migrate_is_a_command_of_training(python) -> None:
    result = python("-m", "training.cli", "--help")
    assert result.returncode == 0 and "migrate" in result.stdout


def test_check_diff_write_then_nothing_left(project: Path, python) -> None:
    before = snapshot(project)
    checked = training_migrate(python, "--check", ".", cwd=project)
    assert checked.returncode == 1, checked.stderr
    assert checked.stdout.splitlines() == [
        "would rewrite analysis.ipynb",
        "would rewrite app.py",
        "would rewrite pkg/tuning.py",
    ]
    assert checked.stderr == table(scanned=5, notebooks=1, files=3, imports=21)
    shown = training_migrate(python, ".", cwd=project)
    assert shown.returncode == 0
    assert "\n-from hpo import run_local_hpo_sweep\n" in shown.stdout
    assert "\n+from training.hpo import run_local_hpo_sweep\n" in shown.stdout
    assert "--- a/analysis.ipynb (cell 1)" in shown.stdout
    assert snapshot(project) == before  # --check and the diff change nothing

    written = training_migrate(python, "--write", ".", cwd=project)
    assert written.returncode == 0, written.stderr
    after = snapshot(project)
    assert after[".venv/lib/vendored.py"] == before[".venv/lib/vendored.py"]  # hidden folders are skipped
    app = after["app.py"].decode()
    assert app.startswith('"""Train, tune and refit with the old API."""\n# Every import of the guide:\n')
    assert "\nfrom training.core import train_model\nfrom training.core import create_model_and_tokenizer\n" in app
    assert "from training import hpo  # the tuner\nimport data.loaders as td\nimport training.core.model\n" in app
    assert "return training.core.model.load_model, td.load_dataset, metrics, study\n" in app
    assert after["pkg/tuning.py"].decode() == TUNING.replace(
        "from training import train_model, run_local_hpo_sweep  # noqa: F401\nimport training_exec\n",
        "from training.core import train_model  # noqa: F401\n"
        "from training.hpo import run_local_hpo_sweep  # noqa: F401\nfrom training import execution as training_exec\n",
    )
    cell = json.loads(after["analysis.ipynb"])["cells"][0]["source"]
    assert cell == ["%matplotlib inline\n", "from training.hpo import extract_best_config_from_study"]

    imported = python(*LIGHT, "-c", "import app, pkg.tuning", cwd=project)
    assert imported.returncode == 0, imported.stderr
    again = training_migrate(python, "--check", ".", cwd=project)
    assert (again.returncode, again.stdout) == (0, "")
    assert snapshot(project) == after


def test_a_file_that_does_not_parse_is_reported_and_the_others_still_migrate(python, tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("from hpo import create_search_space\n", encoding="utf-8")
    bad = "from hpo import create_search_space\n\nspace = create_search_space(\n"
    (tmp_path / "bad.py").write_text(bad, encoding="utf-8")
    result = training_migrate(python, "--write", "good.py", "bad.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "bad.py:3: invalid syntax: '(' was never closed (file left unchanged)"
    assert result.stderr.endswith(table(scanned=2, files=1, imports=1, failed=1, done="rewritten"))
    assert (tmp_path / "good.py").read_text(encoding="utf-8") == "from training.hpo import create_search_space\n"
    assert (tmp_path / "bad.py").read_text(encoding="utf-8") == bad


def test_the_diff_of_a_file_in_another_encoding_shows_its_text(tmp_path: Path, capsys) -> None:
    source = '# -*- coding: latin-1 -*-\n"""Modèle."""\nfrom hpo import create_search_space  # réseau\n'
    (tmp_path / "old.py").write_bytes(source.encode("latin-1"))
    assert main([str(tmp_path / "old.py")]) == 0
    diff = capsys.readouterr().out.splitlines()  # its accented letters were shown as U+FFFD
    assert diff[-3:] == [
        ' """Modèle."""',
        "-from hpo import create_search_space  # réseau",
        "+from training.hpo import create_search_space  # réseau",
    ]


def test_a_missing_path_is_one_line_and_exit_code_2(python, tmp_path: Path) -> None:
    result = training_migrate(python, "nowhere", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, "training migrate: error: nowhere: no such file or folder\n")
    module = python("-m", "training_compat.migrate", "--check", "nowhere", cwd=tmp_path)
    assert (module.returncode, module.stderr) == (
        2,
        "python -m training_compat.migrate: error: nowhere: no such file or folder\n",
    )


def test_a_path_through_a_link_loop_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Said "no such file or folder" (exit 2), then became "[Errno 40] ..." with exit 1, which `--check` uses for work
    (tmp_path / "loop").symlink_to("loop")
    assert main(["--check", str(tmp_path / "loop" / "tune.py")]) == 2
    error = f"{tmp_path / 'loop' / 'tune.py'}: cannot be reached (Too many levels of symbolic links)"
    assert capsys.readouterr().err == f"python -m training_compat.migrate: error: {error}\n"


def test_options_may_come_between_paths_as_in_the_training_command(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import training_exec as te\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("import hpo as h\n", encoding="utf-8")
    assert main([str(tmp_path / "a.py"), "--write", str(tmp_path / "b.py")]) == 0
    assert (tmp_path / "a.py").read_text(encoding="utf-8") == "import training.execution as te\n"
    assert (tmp_path / "b.py").read_text(encoding="utf-8") == "import training.hpo as h\n"


def test_a_large_tree_is_migrated_file_by_file_not_held_in_memory(tmp_path: Path) -> None:
    # Every file's text, rewritten text and diff were kept until the summary: a monorepo's whole tree in memory.
    padding = "# " + "x" * 200_000 + "\n"
    for number in range(40):  # 8 MB of source
        (tmp_path / f"m{number}.py").write_text(f"import training_exec as te\n{padding}", encoding="utf-8")
    assert main(["--check", str(tmp_path / "m0.py")]) == 1  # imports the rewriter before memory is traced
    tracemalloc.start()
    try:
        assert main(["--check", str(tmp_path)]) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * len(padding), f"{peak} bytes at the peak, for files of {len(padding)}"


def test_write_keeps_permissions_and_writes_through_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "tool.py"
    script.write_text("#!/usr/bin/env python\nimport training_exec as te\n", encoding="utf-8")
    script.chmod(0o750)
    link = tmp_path / "link.py"
    link.symlink_to(script)
    assert main(["--write", str(link)]) == 0
    assert link.is_symlink() and stat.S_IMODE(script.stat().st_mode) == 0o750
    assert script.read_text(encoding="utf-8") == "#!/usr/bin/env python\nimport training.execution as te\n"
    assert capsys.readouterr().out == f"rewrote {link}\n"
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_file_that_cannot_be_read_is_reported_and_the_others_still_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A dangling link (to a generated or deleted file) stopped the run with exit 1: later files unmigrated, no table.
    (tmp_path / "a_link.py").symlink_to(tmp_path / "generated.py")
    (tmp_path / "b.py").write_text("import training_exec as te\n", encoding="utf-8")
    assert main(["--write", str(tmp_path)]) == 2
    assert (tmp_path / "b.py").read_text(encoding="utf-8") == "import training.execution as te\n"
    errors = capsys.readouterr().err.splitlines()
    link, target = tmp_path / "a_link.py", tmp_path / "generated.py"
    assert errors[0] == f"{link}: a symbolic link to {target}, which does not exist (file left unchanged)"
    assert errors[-1].split() == ["files", "failed", "1"]


def test_a_file_that_cannot_be_written_is_reported_and_the_others_still_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A failed write stopped the run naming the temporary file (exit 1); a read-only file was replaced regardless.
    long = tmp_path / f"{'a' * 240}.py"  # the temporary file written beside it has a name too long for the disk
    read_only, good = tmp_path / "b.py", tmp_path / "c.py"
    for path in (long, read_only, good):
        path.write_text("import training_exec as te\n", encoding="utf-8")
    read_only.chmod(0o444)
    assert main(["--write", str(tmp_path)]) == 2
    assert good.read_text(encoding="utf-8") == "import training.execution as te\n"
    assert long.read_text(encoding="utf-8") == read_only.read_text(encoding="utf-8") == "import training_exec as te\n"
    errors = capsys.readouterr().err.splitlines()
    assert errors[:2] == [
        f"{long}: cannot be written (File name too long) (file left unchanged)",
        f"{read_only}: read-only (mode 444); make it writable to migrate it (file left unchanged)",
    ]
    assert [line.split()[-1] for line in errors[-6:] if "rewritten" in line or "failed" in line] == ["1", "1", "2"]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_link_to_nothing_named_on_the_command_line_says_where_it_points(python, tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to("loop.py")
    (tmp_path / "gone.py").symlink_to("build/gone.py")
    result = training_migrate(python, "gone.py", cwd=tmp_path)
    message = "training migrate: error: gone.py: a symbolic link to build/gone.py, which does not exist\n"
    assert (result.returncode, result.stderr) == (2, message)
    result = training_migrate(python, "loop.py", cwd=tmp_path)
    message = "loop.py: a symbolic link to loop.py, which cannot be followed (Too many levels of symbolic links)"
    assert (result.returncode, result.stderr) == (2, f"training migrate: error: {message}\n")


def test_a_named_pipe_is_skipped_or_refused_never_opened(python, tmp_path: Path) -> None:
    # Opening a FIFO blocks until something writes to it: a pipe named `*.py` hung the run forever.
    (tmp_path / "pkg").mkdir()
    os.mkfifo(tmp_path / "pkg" / "feed.py")
    os.mkfifo(tmp_path / "cells.ipynb")
    (tmp_path / "pkg" / "tune.py").write_text("import hpo as h\n", encoding="utf-8")
    result = training_migrate(python, "--check", ".", cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stdout) == (1, "would rewrite pkg/tune.py\n")
    assert result.stderr == (
        "cells.ipynb: a named pipe (FIFO), not a regular file (skipped)\n"
        "pkg/feed.py: a named pipe (FIFO), not a regular file (skipped)\n" + table(scanned=1, files=1, imports=1)
    )
    named = training_migrate(python, "pkg/feed.py", cwd=tmp_path, timeout=60)
    error = "training migrate: error: pkg/feed.py: a named pipe (FIFO), not a regular file\n"
    assert (named.returncode, named.stderr) == (2, error)


def test_a_file_reached_through_links_is_migrated_once_by_its_own_name(python, tmp_path: Path) -> None:
    # A link and its target were two files: counted twice, and diffed twice.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "tune.py").write_text("import hpo as h\n", encoding="utf-8")
    (tmp_path / "alias.py").symlink_to("pkg/tune.py")
    (tmp_path / "mirror").symlink_to("pkg")
    (tmp_path / "pkg" / "up").symlink_to("..")  # a loop: a walk that follows links blindly never ends
    (tmp_path / ".tools").mkdir()
    (tmp_path / ".tools" / "submit").write_text("import training_exec as te\n", encoding="utf-8")
    (tmp_path / "submit.py").symlink_to(".tools/submit")  # reached only through its link
    checked = training_migrate(python, "--check", ".", cwd=tmp_path, timeout=60)
    assert (checked.returncode, checked.stdout) == (1, "would rewrite pkg/tune.py\nwould rewrite submit.py\n")
    assert checked.stderr == table(scanned=2, files=2, imports=2)
    written = training_migrate(python, "--write", ".", cwd=tmp_path, timeout=60)
    assert (written.returncode, written.stdout) == (0, "rewrote pkg/tune.py\nrewrote submit.py\n")
    assert (tmp_path / "alias.py").read_text(encoding="utf-8") == "import training.hpo as h\n"
    assert (tmp_path / "submit.py").is_symlink()


def test_a_link_out_of_the_folders_named_is_reported_and_left_alone(python, tmp_path: Path) -> None:
    # Rewriting a file outside the folder the user named, through a link in it, surprises: it may be shared.
    shared, project = tmp_path / "shared", tmp_path / "project"
    shared.mkdir()
    project.mkdir()
    (shared / "common.py").write_text("import hpo as h\n", encoding="utf-8")
    (project / "common.py").symlink_to(shared / "common.py")
    (project / "vendor").symlink_to("../shared")
    result = training_migrate(python, "--write", ".", cwd=project, timeout=60)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == (
        f"common.py: a symbolic link to {shared / 'common.py'}, out of the folders named (skipped)\n"
        "vendor: a symbolic link to ../shared, out of the folders named (skipped)\n" + table(done="rewritten")
    )
    assert (shared / "common.py").read_text(encoding="utf-8") == "import hpo as h\n"
    both = training_migrate(python, "--check", ".", str(shared), cwd=project, timeout=60)  # named: migrated once
    assert (both.returncode, both.stdout) == (1, f"would rewrite {shared / 'common.py'}\n")
    assert both.stderr == table(scanned=1, files=1, imports=1)


def test_a_link_out_of_the_folders_named_to_a_file_named_is_not_reported_as_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The link was reported "out of the folders named (skipped)" while the file it points to was migrated
    shared, project = tmp_path / "shared", tmp_path / "project"
    shared.mkdir()
    project.mkdir()
    (shared / "common.py").write_text("import hpo as h\n", encoding="utf-8")
    (project / "common.py").symlink_to(shared / "common.py")
    assert main(["--check", str(project), str(shared / "common.py")]) == 1
    output = capsys.readouterr()
    assert (output.out, output.err) == (f"would rewrite {shared / 'common.py'}\n", table(scanned=1, files=1, imports=1))


# The orchestration package of a real project on the old layout: names and modules the new packages do not have.
ORCHESTRATION = """\
from hpo import run_local_hpo_sweep, make_pruner
from training_exec.cluster import submit
import training.model


def launch(space):
    return submit(run_local_hpo_sweep("bert", space, pruner=make_pruner()), training.model.gpu_count())
"""
LEFT_IN_LAUNCH = ((2, "hpo.make_pruner"), (3, "training_exec.cluster"), (8, "training.model.gpu_count"))  # rewritten
SETUP_CELLS = [
    ["import os\n", "if not os.path.exists('data'):\n", "    !git clone https://example.org/data.git\n"],
    ["files = !ls data\n", "%time from hpo import create_search_space\n", "from training import train_model"],
]


def test_what_needs_a_human_is_listed_and_fails_the_check(python, tmp_path: Path) -> None:
    (tmp_path / "orchestration").mkdir()
    (tmp_path / "orchestration" / "launch.py").write_text(ORCHESTRATION, encoding="utf-8")
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "source": source} for source in SETUP_CELLS]
    document = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "setup.ipynb").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    home = "has no new home; see docs/migration.md"
    findings = [  # files first, then folders
        "setup.ipynb: cell 2, line 2: an IPython line is not Python; migrate the import in it by hand",
        f"orchestration/launch.py:1: hpo.make_pruner {home}",
        f"orchestration/launch.py:2: training_exec.cluster {home}",
        f"orchestration/launch.py:7: training.model.gpu_count {home}",
    ]
    checked = training_migrate(python, "--check", ".", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == ["would rewrite setup.ipynb", "would rewrite orchestration/launch.py"]
    summary = table(scanned=2, notebooks=1, files=2, imports=3, IPython_syntax=1, no_new_home=3)
    assert checked.stderr == "\n".join(findings) + "\n" + summary

    written = training_migrate(python, "--write", ".", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    moved = [f"orchestration/launch.py:{line}: {name} {home}" for line, name in LEFT_IN_LAUNCH]  # the split moved them
    assert written.stderr.startswith("\n".join([findings[0], *moved]) + "\n")  # at their lines in the files written
    assert (
        (tmp_path / "orchestration" / "launch.py")
        .read_text(encoding="utf-8")
        .startswith(
            "from training.hpo import run_local_hpo_sweep\nfrom hpo import make_pruner\n"
            "from training_exec.cluster import submit\nimport training.core.model\n"
        )
    )
    setup = json.loads((tmp_path / "setup.ipynb").read_text(encoding="utf-8"))["cells"]
    assert setup[0]["source"] == SETUP_CELLS[0]
    assert setup[1]["source"] == [*SETUP_CELLS[1][:2], "from training.core import train_model"]
    again = training_migrate(python, "--check", ".", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (1, "")  # nothing to rewrite, but still work for a human
    left = table(scanned=2, notebooks=1, IPython_syntax=1, no_new_home=3)
    assert again.stderr == "\n".join([findings[0], *moved]) + "\n" + left
