"""Every legacy path works, is the new object, warns once at the user's own line, and stays light until used.

Each check runs in a fresh interpreter: a legacy module's body, and so its first warning, runs once per process.
"""

from __future__ import annotations

import importlib
import json
import textwrap
import warnings
from pathlib import Path

import pytest

from training_compat import REMOVED_IN, TrainingDeprecationWarning
from training_compat.moves import MODULES

TAIL = f" This shim will be removed in a future release. (planned removal: {REMOVED_IN})"
# The guide's wording, written out: legacy module -> the module the warning sends the user to.
SENT_TO = {
    "training.trainer": "training.core.trainer",
    "training.model": "training.core.model",
    "training.metrics": "training.core.metrics",
    "training.evaluator": "training.core.evaluator",
    "training.cv_utils": "training.core.cv_utils",
    "training.data": "data.loaders",
    "training.distributed": "training.execution",
    "hpo": "training.hpo",
    "hpo.search_space": "training.hpo.search_space",
    "hpo.sweep": "training.hpo.sweep",
    "hpo.best_config": "training.hpo.best_config",
    "training_exec": "training.execution",
}
HEAVY = ("torch", "transformers", "optuna", "azure", "sklearn", "seqeval", "mlflow")
# Prints, as JSON, the TrainingDeprecationWarnings recorded while `body` ran (`always`: nothing is deduplicated).
RECORD = """\
import json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("{action}")
{body}
print(json.dumps({{
    "warnings": [[str(w.message), w.filename, w.lineno, w.message.since, w.message.expected_removal]
                 for w in caught if w.category.__name__ == "TrainingDeprecationWarning"],
    "heavy": sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r})),
}}))
"""


def module_message(old: str) -> str:
    return f"Importing from '{old}' is deprecated. Please use '{SENT_TO[old]}' instead.{TAIL}"


def name_message(name: str, new: str, old: str = "training") -> str:
    return f"Importing '{name}' from '{old}' is deprecated. Please use '{new}' instead.{TAIL}"


def record(folder: Path, python, body: str, action: str = "always") -> tuple[Path, dict]:
    """Run `body` as the script `user.py` (its first line is line 4) and return the script and what it recorded."""
    script = folder / "user.py"
    script.write_text(RECORD.format(action=action, body=textwrap.indent(body, "    "), heavy=HEAVY), encoding="utf-8")
    result = python(str(script), cwd=folder)
    assert result.returncode == 0, result.stderr
    return script, json.loads(result.stdout.strip().splitlines()[-1])


def test_every_guide_path_works_warns_at_the_users_line_and_is_the_new_object(guide, python, tmp_path: Path) -> None:
    for index, (statement, _) in enumerate(guide):
        (tmp_path / f"old_{index:02}.py").write_text(f'"""User code."""\n\n{statement}\n', encoding="utf-8")
    runner = f"""
import importlib, json, sys, warnings
sys.path.insert(0, {str(tmp_path)!r})
seen = []
for index, (statement, new) in enumerate({guide!r}):
    name = statement.split()[-1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"old_{{index:02}}")
    seen.append({{
        "warnings": [[str(w.message), w.filename, w.lineno, w.category.__module__, w.category.__name__]
                     for w in caught if issubclass(w.category, DeprecationWarning)],
        "identical": getattr(module, name) is getattr(importlib.import_module(new), name),
        "file": module.__file__,
    }})
print(json.dumps(seen))
"""
    result = python("-c", runner)
    assert result.returncode == 0, result.stderr
    for (statement, new), seen in zip(guide, json.loads(result.stdout.strip().splitlines()[-1]), strict=True):
        _, old, _, name = statement.split()
        message = name_message(name, new) if old == "training" else module_message(old)
        assert seen["warnings"] == [[message, seen["file"], 3, "training_compat", "TrainingDeprecationWarning"]]
        assert seen["identical"], statement


@pytest.mark.parametrize("old", sorted(MODULES))
def test_a_legacy_module_warns_where_first_imported_and_imports_nothing_heavy(old: str, python, tmp_path) -> None:
    script, seen = record(tmp_path, python, f"import {old}\nimport {old}\n")
    legacy = [prefix for prefix in (old.rpartition(".")[0], old) if prefix in MODULES]  # `hpo.sweep` imports `hpo`
    assert seen["warnings"] == [[module_message(m), str(script), 4, "0.1.0", REMOVED_IN] for m in legacy]
    assert seen["heavy"] == []


@pytest.mark.parametrize(
    ("statement", "old"),
    [
        ("from hpo.sweep import run_local_hpo_sweep", "hpo.sweep"),
        ("import hpo.search_space as space", "hpo.search_space"),
        ("from hpo.best_config import *", "hpo.best_config"),
    ],
)
def test_a_submodule_import_that_binds_no_package_warns_once(statement: str, old: str, python, tmp_path) -> None:
    # `hpo` is imported on the way, but the statement does not ask for it: its warning would be a second one.
    script, seen = record(tmp_path, python, f"{statement}\n")
    assert seen["warnings"] == [[module_message(old), str(script), 4, "0.1.0", REMOVED_IN]]


def test_a_heavy_name_is_imported_only_when_used(python, tmp_path: Path) -> None:
    _, seen = record(tmp_path, python, "import training.model, hpo, training_exec, training.distributed\n")
    assert seen["heavy"] == []
    _, seen = record(tmp_path, python, "from training.model import create_model_and_tokenizer\n")
    assert "torch" in seen["heavy"]


def test_one_warning_per_import_statement(python, tmp_path: Path) -> None:
    script, seen = record(
        tmp_path,
        python,
        """\
import hpo
from hpo import run_local_hpo_sweep, create_search_space
import hpo
from training import create_search_space, extract_best_config_from_study
from training.model import create_model_and_tokenizer, load_model
import training.model
training.model.create_model_and_tokenizer
hpo.run_local_hpo_sweep
""",
    )
    lines = [(message, line) for message, filename, line, *_ in seen["warnings"] if filename == str(script)]
    assert lines == [
        (module_message("hpo"), 4),
        (module_message("hpo"), 5),  # a later statement warns at its own line, once for both names
        (name_message("create_search_space", "training.hpo"), 7),
        (name_message("extract_best_config_from_study", "training.hpo"), 7),
        (module_message("training.model"), 8),
        # a use through the module warns at its own line: another file's `import training.model` could not
        (name_message("create_model_and_tokenizer", "training.core.model", "training.model"), 10),
        (name_message("run_local_hpo_sweep", "training.hpo", "hpo"), 11),
    ]


def test_a_star_import_warns_once_for_the_module(python, tmp_path: Path) -> None:
    # It also warned of the first name it copied, an arbitrary one ("Importing '__version__' from ...").
    script, seen = record(tmp_path, python, "from training.distributed import *\nfrom training.data import *\n")
    lines = [(message, line) for message, filename, line, *_ in seen["warnings"] if filename == str(script)]
    assert lines == [(module_message("training.distributed"), 4), (module_message("training.data"), 5)]


def test_every_use_site_warns_once_even_after_the_module_was_imported_elsewhere(python, tmp_path: Path) -> None:
    (tmp_path / "first.py").write_text("import training.model\n\ndef load():\n    return training.model.load_model\n")
    (tmp_path / "second.py").write_text(
        "import training.model\n\nbuild = training.model.create_model_and_tokenizer\n"
        "for _ in range(3):\n    training.model.load_model, training.model.load_model\n"
    )
    _, seen = record(tmp_path, python, "import first, second\nfirst.load()\nfirst.load()\n")
    found = [(Path(filename).name, line, message) for message, filename, line, *_ in seen["warnings"]]
    load = name_message("load_model", "training.core.model", "training.model")
    assert found == [
        ("first.py", 1, module_message("training.model")),
        ("second.py", 3, name_message("create_model_and_tokenizer", "training.core.model", "training.model")),
        ("second.py", 5, load),  # two uses on one line are two sites; a loop repeats neither
        ("second.py", 5, load),
        ("first.py", 4, load),
    ]


def test_the_default_filter_shows_a_repeated_site_once(python, tmp_path: Path) -> None:
    body = "def load():\n    from training import create_search_space\n\nload()\nload()\nfrom hpo import sweep\n"
    _, seen = record(tmp_path, python, body, action="default")
    assert [(message, line) for message, _, line, *_ in seen["warnings"]] == [
        (name_message("create_search_space", "training.hpo"), 5),
        (module_message("hpo"), 9),
        (module_message("hpo.sweep"), 9),
    ]


def test_a_top_level_name_warns_where_it_is_used(python, tmp_path: Path) -> None:
    script, seen = record(tmp_path, python, "import training\nimport training.core\ntraining.create_search_space\n")
    assert seen["warnings"] == [
        [name_message("create_search_space", "training.hpo"), str(script), 6, "0.1.0", REMOVED_IN]
    ]
    assert seen["heavy"] == []


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_every_import_site_warns_once_even_when_the_files_are_alike(order: str, python, tmp_path: Path) -> None:
    # Identical files import the same legacy module at the same line: their code objects compare equal and, once
    # a module has run, its code and frames are freed, so their ids come back. Each file is still its own site.
    statements = [
        "from hpo import create_search_space",
        "from training.model import create_model_and_tokenizer, load_model",
    ]
    files = [f"same_{i:02}" for i in range(24)]
    for index, name in enumerate(files):
        (tmp_path / f"{name}.py").write_text(f'"""Alike."""\n\n{statements[index % 2]}\n', encoding="utf-8")
    names = files if order == "forward" else files[::-1]
    runner = f"""
import gc, importlib, json, sys, warnings
sys.path.insert(0, {str(tmp_path)!r})
seen = {{}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name in {names!r}:
        importlib.import_module(name)
        del sys.modules[name]
        gc.collect()
    for _ in range(3):  # the same site again, in a loop: no new warning
        from hpo import create_search_space
for w in caught:
    seen.setdefault(w.filename, []).append(w.lineno)
print(json.dumps(seen))
"""
    result = python("-c", runner)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert {Path(name).name: lines for name, lines in seen.items()} == {
        **{f"{name}.py": [3] for name in files},
        "<string>": [12],
    }


def test_import_module_points_at_its_caller(python, tmp_path: Path) -> None:
    _, seen = record(tmp_path, python, "import importlib\nimportlib.import_module('training_exec')\n")
    assert [line for _, _, line, *_ in seen["warnings"]] == [5]


def test_old_paths_follow_the_new_objects_when_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDeprecationWarning)
        legacy = importlib.import_module("training_exec")
    import training
    import training.execution

    with pytest.warns(TrainingDeprecationWarning, match="Importing 'JobSpec' from 'training_exec'"):
        assert legacy.JobSpec is training.execution.JobSpec
    monkeypatch.setattr(training.execution, "create_run_context", lambda: "patched")
    with pytest.warns(TrainingDeprecationWarning, match="Importing 'create_run_context' from 'training_exec'"):
        assert legacy.create_run_context() == "patched"
    with pytest.warns(TrainingDeprecationWarning, match="Importing 'create_run_context' from 'training'"):
        assert training.create_run_context() == "patched"
    assert {"create_run_context", "train_model", "core"} <= set(dir(training))
    assert "execute_final_training" in dir(legacy)


def test_missing_names_and_packages_fail_as_they_would_anywhere() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDeprecationWarning)
        distributed = importlib.import_module("training.distributed")
    import training

    with pytest.raises(
        AttributeError, match=r"'training.distributed' \(now 'training.execution'\) has no attribute 'nope'"
    ):
        distributed.nope  # noqa: B018
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("training.distributed.context")  # a plain module stays one: no `__path__`
    with pytest.raises(AttributeError, match="module 'training' has no attribute 'nope'"):
        training.nope  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'nope'"), warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDeprecationWarning)
        exec("from training.distributed import nope")


def test_warnings_can_be_escalated_or_silenced(python, tmp_path: Path) -> None:
    for option in ("error::DeprecationWarning", "error:Importing:DeprecationWarning"):
        failed = python("-W", option, "-c", "import training.model")
        assert failed.returncode == 1
        assert (
            failed.stderr.strip().splitlines()[-1]
            == f"training_compat.TrainingDeprecationWarning: {module_message('training.model')}"
        )
    quiet = python(
        "-W",
        "default",
        "-c",
        "import warnings, training_compat\n"
        "warnings.filterwarnings('ignore', category=training_compat.TrainingDeprecationWarning)\n"
        "import hpo, training_exec",
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    (tmp_path / "test_legacy.py").write_text("def test_legacy():\n    import hpo\n", encoding="utf-8")
    tested = python(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "error::training_compat.TrainingDeprecationWarning",
        "test_legacy.py",
        cwd=tmp_path,
    )
    assert tested.returncode == 1 and "TrainingDeprecationWarning: Importing from 'hpo'" in tested.stdout


@pytest.mark.parametrize(
    ("library", "statement", "needed_by", "install"),
    [
        ("optuna", "from hpo import run_local_hpo_sweep", "hpo.run_local_hpo_sweep", '"training-core[hpo]"'),
        # modules that import the library at their top: a bare ModuleNotFoundError, where the package path said more
        ("optuna", "from hpo.sweep import run_local_hpo_sweep", "hpo.sweep.run_local_hpo_sweep", '"training-core['),
        ("torch", "from training.trainer import train_model", "training.trainer.train_model", "training-core (it"),
    ],
)
def test_a_missing_library_is_reported_under_the_legacy_name(
    python, library: str, statement: str, needed_by: str, install: str
) -> None:
    code = f"import sys\nsys.modules[{library!r}] = None  # as if it were not installed\n{statement}\n"
    result = python("-W", "ignore::DeprecationWarning", "-c", code)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"training.common.optional.MissingDependencyError: {needed_by} needs {library!r}, "
            f"which is not installed: pip install {install}"
        )
    )
