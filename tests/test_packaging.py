"""Packaging contracts of the five distributions: lockstep versions, exact sibling pins, layout, the namespace."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
# Distribution -> the import packages it ships (paths under src/).
SHIPS = {
    "training-core": ["training/core", "training/config", "training/common", "data"],
    "training-execution": ["training/execution"],
    "training-hpo": ["training/hpo"],
    "training-cli": ["training/cli"],
    "training-compat": ["training_compat", "hpo", "training_exec"],
}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def pyproject(distribution: str) -> dict[str, Any]:
    with (PACKAGES / distribution / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def version_of(distribution: str) -> str:
    """The `__version__` in the file that `[tool.hatch.version] path` names."""
    path = PACKAGES / distribution / pyproject(distribution)["tool"]["hatch"]["version"]["path"]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path}: no __version__ assignment")


def requirements(distribution: str) -> list[tuple[str, str, str]]:
    """(where, name, specifier) for every dependency and every extra's dependency."""
    project = pyproject(distribution)["project"]
    found = [("dependencies", line) for line in project.get("dependencies", [])]
    for extra, lines in project.get("optional-dependencies", {}).items():
        found += [(f"extra {extra!r}", line) for line in lines]
    parsed = []
    for where, line in found:
        match = REQUIREMENT.match(line)
        assert match, f"{distribution}: cannot read requirement {line!r}"
        parsed.append((where, match.group(1).lower().replace("_", "-"), match.group(3).strip()))
    return parsed


def test_the_packages_folder_holds_exactly_the_five_distributions() -> None:
    assert sorted(p.name for p in PACKAGES.iterdir() if (p / "pyproject.toml").is_file()) == sorted(SHIPS)
    for distribution in SHIPS:
        assert pyproject(distribution)["project"]["name"] == distribution


def test_versions_move_in_lockstep() -> None:
    versions = {distribution: version_of(distribution) for distribution in SHIPS}
    assert len(set(versions.values())) == 1, versions
    for distribution in SHIPS:
        assert pyproject(distribution)["project"]["dynamic"] == ["version"]


@pytest.mark.parametrize("distribution", sorted(SHIPS))
def test_siblings_are_pinned_exactly(distribution: str) -> None:
    version = version_of("training-core")
    for where, name, specifier in requirements(distribution):
        if name in SHIPS:
            assert specifier == f"=={version}", f"{distribution} {where}: {name}{specifier} must pin =={version}"


def test_declared_sibling_dependencies() -> None:
    def siblings(distribution: str) -> set[str]:
        return {name for where, name, _ in requirements(distribution) if where == "dependencies" and name in SHIPS}

    assert siblings("training-core") == set()
    assert siblings("training-execution") == {"training-core"}
    assert siblings("training-hpo") == {"training-core", "training-execution"}
    assert siblings("training-cli") == {"training-core", "training-execution"}
    assert siblings("training-compat") == set(SHIPS) - {"training-compat"}


def test_core_hpo_extra_pulls_training_hpo() -> None:
    extra = pyproject("training-core")["project"]["optional-dependencies"]["hpo"]
    assert extra == [f"training-hpo=={version_of('training-core')}"]


def test_heavy_optional_libraries_stay_behind_extras() -> None:
    def names(distribution: str) -> set[str]:
        return {name for where, name, _ in requirements(distribution) if where == "dependencies"}

    assert "optuna" not in names("training-core") | names("training-execution") | names("training-cli")
    assert not any(name.startswith("azure") for d in SHIPS for name in names(d))
    assert not any(name.startswith("mlflow") for d in SHIPS for name in names(d))


@pytest.mark.parametrize("distribution", sorted(SHIPS))
def test_layout(distribution: str) -> None:
    folder = PACKAGES / distribution
    config = pyproject(distribution)
    assert (folder / "README.md").is_file()
    assert config["project"]["readme"] == "README.md"
    assert (folder / "tests").is_dir()
    assert config["build-system"]["build-backend"] == "hatchling.build"
    wheel_packages = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert all(entry.startswith("src/") and (folder / entry).is_dir() for entry in wheel_packages), wheel_packages
    for package in SHIPS[distribution]:
        assert (folder / "src" / package / "__init__.py").is_file(), f"{distribution}: src/{package} is not a package"
        assert (folder / "src" / package / "py.typed").is_file(), f"{distribution}: src/{package}/py.typed is missing"


def test_only_compat_ships_a_training_init() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in PACKAGES.glob("*/src/training/__init__.py")
        if path.parts[-4] != "training-compat"
    )
    assert offenders == [], "the 'training' namespace must stay PEP 420 outside training-compat"
    compat_init = (PACKAGES / "training-compat" / "src" / "training" / "__init__.py").read_text(encoding="utf-8")
    assert "extend_path" in compat_init, "training-compat's training/__init__.py must extend __path__ (pkgutil style)"


def test_the_workspace_lists_every_distribution() -> None:
    with (ROOT / "hatch.toml").open("rb") as handle:
        members = tomllib.load(handle)["envs"]["default"]["workspace"]["members"]
    paths = [member["path"] if isinstance(member, dict) else member for member in members]
    assert sorted(paths) == sorted(f"packages/{distribution}" for distribution in SHIPS)
