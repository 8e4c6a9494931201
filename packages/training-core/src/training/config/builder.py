"""`build_training_config`: config folder + overrides -> one validated `TrainingConfig`."""

from __future__ import annotations

import argparse
import difflib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data.formats import CONLL_SUFFIXES, CSV_SUFFIXES, JSON_SUFFIXES
from data.hf_datasets import HUB_PREFIX
from training.common.errors import ConfigError, expect_instance
from training.common.home import expand_home
from training.common.store_urls import absolute_tracking_uri
from training.config.execution import ExecutionConfig, is_local
from training.config.hpo_schema import HPOConfig
from training.config.schema import OptimizationConfig, TrainingConfig
from training.config.validation import apply_dotted, unknown_key, validate
from training.config.yaml_io import load_yaml_mapping, parse_yaml, yml_hint

TRAIN_FILE_KEYS = ("backbone", "data", "training", "tracking")
# Plain argument names that override a config field (as argparse would name them).
ARGUMENT_FIELDS: dict[str, str] = {
    **{name: f"training.{name}" for name in OptimizationConfig.model_fields},
    **{name: f"model.{name}" for name in ("max_length", "stride", "dropout", "trust_remote_code", "revision")},
    "data_path": "data.path",
    "labels": "data.labels",
}
SPECIAL_ARGUMENTS = ("backbone", "data", "set")


def build_training_config(
    args: argparse.Namespace | Mapping[str, Any] | None, config_dir: str | Path
) -> TrainingConfig:
    """Read `train.yaml`, `model/<backbone>.yaml` and `data/<name>.yaml` from `config_dir`, apply `args`.

    `args`: an argparse Namespace (other attributes ignored) or a mapping (unknown keys are errors) of `backbone`,
    `data`, `set` (`key=value` items), dotted keys and field names such as `learning_rate` (in `set` too). An argument's
    `data.path` may point anywhere (relative to the working directory).
    """
    if not isinstance(config_dir, (str, os.PathLike)):
        raise ConfigError(f"config_dir: expected the path of a config folder, got {type(config_dir).__name__}")
    folder = _config_folder(config_dir)
    overrides = _overrides(args)
    train_file = folder / "train.yaml"
    train = load_yaml_mapping(train_file)
    for key in train:
        if key not in TRAIN_FILE_KEYS:
            raise ConfigError(unknown_key(f"{train_file}: {key}", str(key), TRAIN_FILE_KEYS))
    backbone, backbone_source = overrides.pop("backbone", (train.get("backbone"), train_file))
    data_name, data_source = overrides.pop("data", (train.get("data"), train_file))
    model_file = _section_file(folder, "model", backbone, backbone_source)
    data_file = _section_file(folder, "data", data_name, data_source)
    sections = {name: {} if train.get(name) is None else train[name] for name in ("training", "tracking")}
    for name, section in sections.items():
        if not isinstance(section, dict):
            raise ConfigError(f"{train_file}: {name}: expected a mapping, got {type(section).__name__}")
    raw: dict[str, Any] = {
        "model": {"name": backbone, **load_yaml_mapping(model_file)},
        "data": {"name": data_name, **load_yaml_mapping(data_file)},
        **{name: dict(section) for name, section in sections.items()},
    }
    for key, (value, source) in overrides.items():
        apply_dotted(raw, key, value, source)
    files = {"model": str(model_file), "data": str(data_file), "training": str(train_file)}

    def source_of(loc: tuple[str | int, ...]) -> str:
        dotted = ".".join(str(part) for part in loc)
        for key, (value, source) in reversed(overrides.items()):  # the last setting of a key is the one applied
            inside = dotted.startswith(key + ".")  # in a section set as a mapping: only what the mapping names
            if inside and (not isinstance(value, dict) or dotted[len(key) + 1 :].split(".")[0] in map(str, value)):
                return source
            if dotted == key or key.startswith(dotted + "."):
                return source
        return files.get(str(loc[0]) if loc else "", str(train_file))

    config = validate(TrainingConfig, raw, source_of)
    config = _resolve_backbone(config, folder, from_yaml=source_of(("model", "backbone")) == files["model"])
    config = _resolve_tracking(config)
    return _resolve_data_path(config, folder, data_file, from_yaml=source_of(("data", "path")) == files["data"])


def _config_folder(config_dir: str | os.PathLike[str]) -> Path:
    """`config_dir` as a folder that exists; a file there is named as one, not as missing."""
    folder = expand_home(config_dir)  # `--config-dir=~/x`: no shell expands a tilde after `=`
    if not folder.is_dir():
        found = "is a file, not a config folder" if folder.exists() else "config folder not found"
        raise ConfigError(f"{folder}: {found} (expected train.yaml, model/ and data/ in it)")
    return folder


def _overrides(args: argparse.Namespace | Mapping[str, Any] | None) -> dict[str, tuple[Any, str]]:
    """Dotted key -> (value, where it came from); `backbone`/`data` kept under their own names."""
    if args is None:
        return {}
    if not isinstance(args, (argparse.Namespace, Mapping)):
        got = f"{type(args).__name__} {args!r:.60}"
        raise ConfigError(f"arguments: expected a mapping or argparse.Namespace, got {got}")
    strict = not isinstance(args, argparse.Namespace)
    items = dict(args.items()) if isinstance(args, Mapping) else dict(vars(args))
    result: dict[str, tuple[Any, str]] = {}
    for name, value in items.items():
        if value is None or name == "set":
            continue
        if name in ARGUMENT_FIELDS or name in SPECIAL_ARGUMENTS:
            result[ARGUMENT_FIELDS.get(name, name)] = (value, f"argument {name}={value!r}")
        elif "." in name and strict:
            result[name] = (value, f"override {name}={value!r}")
        elif strict:
            raise ConfigError(unknown_key(f"arguments: {name}", name, [*SPECIAL_ARGUMENTS, *ARGUMENT_FIELDS]))
    assignments = () if items.get("set") is None else items["set"]
    if isinstance(assignments, str):
        assignments = [assignments]
    elif isinstance(assignments, (bytes, Mapping)) or not isinstance(assignments, Iterable):
        got = f"{type(assignments).__name__} {assignments!r}"
        raise ConfigError(f"set: expected a list of key=value strings, got {got}")
    for assignment in assignments:
        key, equals, text = str(assignment).partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. training.learning_rate=3e-5")
        source, key = f"--set {assignment}", ARGUMENT_FIELDS.get(key.strip(), key.strip())  # `seed=3` as an argument
        result.pop(key, None)  # a key set again is applied in its new place: the last setting wins
        result[key] = (parse_yaml(text, source, lines=False), source)
    return result


def _section_file(folder: Path, section: str, name: Any, source: str | Path) -> Path:
    """`<folder>/<section>/<name>.yaml`; errors start with `source`, where the name was given."""
    available = sorted(p.stem for p in (folder / section).glob("*.yaml"))
    if not name:
        raise ConfigError(
            f"{source}: {section}: no {section} chosen; set it in train.yaml or pass it "
            f"(available: {', '.join(available) or 'none'})"
        )
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        expected = f"expected the name of a file in {folder / section}"
        raise ConfigError(f"{source}: {section}: {expected}, got {name!r}{_not_a_name(section, name)}")
    path = folder / section / f"{name}.yaml"
    if not path.exists():  # a folder or pipe of that name is refused as what it is where it is read
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        listed = f"available: {', '.join(available) or 'none'}{yml_hint(path)}"
        raise ConfigError(f"{path}: no such {section} config; {hint}{listed}{_not_a_name(section, name)}")
    return path


def _not_a_name(section: str, name: Any) -> str:
    """What a value given where a config name goes was likely meant as: the section's values (`data={format: x}`) or
    what a path is given as (`train --data corpus.jsonl`, `--backbone org/model`)."""
    if isinstance(name, dict) and name:
        key, value = next(iter(name.items()))
        written = value if isinstance(value, str) else json.dumps(value, default=str)  # as YAML reads it: null
        return f"; the section's values go in its file or in dotted keys such as {section}.{key}={written}"
    data_suffixes = {*CONLL_SUFFIXES, *JSON_SUFFIXES, *CSV_SUFFIXES, ".parquet"}
    data_file = section == "data" and Path(str(name)).suffix.lower() in data_suffixes
    if isinstance(name, str) and ("/" in name or "\\" in name or data_file or Path(name).exists()):
        if section == "data":
            return "; a data folder or file is given as data_path (--data-path)"
        return f"; a backbone's hub id or folder is given as model.backbone (--set model.backbone={name})"
    return ""


def _resolve_backbone(config: TrainingConfig, folder: Path, from_yaml: bool) -> TrainingConfig:
    """A backbone folder a model file names relative to the config folder, as `data.path`, made absolute: read from
    the working directory, a run started elsewhere took it for a hub id. Hub ids and aliases stay as written."""
    given = Path(config.model.backbone)
    local = folder / given
    # isdir: False, not OSError, for a name too long to be a path
    if not from_yaml or expand_home(given).is_absolute() or not os.path.isdir(local):
        return config
    return config.model_copy(update={"model": config.model.model_copy(update={"backbone": str(local.resolve())})})


def _resolve_tracking(config: TrainingConfig) -> TrainingConfig:
    """A relative MLflow store (`sqlite:///mlflow.db`, `mlruns`), read from the working directory, made absolute:
    a resume or refit started elsewhere logs to the same store. MLflow's URIs without a colon stay as written."""
    uri = config.tracking.mlflow
    if uri is None:
        return config
    tracking = config.tracking.model_copy(update={"mlflow": absolute_tracking_uri(uri, Path.cwd())})
    return config.model_copy(update={"tracking": tracking})


def _resolve_data_path(config: TrainingConfig, folder: Path, data_file: Path, from_yaml: bool) -> TrainingConfig:
    """`data.path` made absolute: from a config file, inside the config folder; from an argument, from the working
    directory; a hub id (`hf://`) as it is."""
    if config.data.path is None or config.data.path.startswith(HUB_PREFIX):
        return config
    given = expand_home(config.data.path)
    resolved = (given if given.is_absolute() else (folder if from_yaml else Path.cwd()) / given).resolve()
    if from_yaml and not config.data.allow_external_paths and not resolved.is_relative_to(folder.resolve()):
        raise ConfigError(
            f"{data_file}: data.path: {config.data.path!r} resolves outside the config folder {folder}; "
            "set data.allow_external_paths: true or pass the path explicitly (data_path, --data-path)"
        )
    return config.model_copy(update={"data": config.data.model_copy(update={"path": str(resolved)})})


def load_hpo_config(path: str | Path) -> HPOConfig:
    """Read and validate `hpo/<name>.yaml` (the study name defaults to the file stem)."""
    file = expand_home(expect_instance(path, (str, os.PathLike), "path", "an hpo YAML path", ConfigError))
    return validate(HPOConfig, {"name": file.stem, **load_yaml_mapping(file)}, str(file))


def load_execution_config(path: str | Path) -> ExecutionConfig:
    """Read and validate `execution/<name>.yaml`. A relative local `azure.data_asset` is read from the config folder
    holding `execution/` (a file elsewhere: from its own folder) and made absolute: read from the working directory, a
    job started elsewhere uploaded other data or none. A local asset must exist, or the upload fails late."""
    file = expand_home(expect_instance(path, (str, os.PathLike), "path", "an execution YAML path", ConfigError))
    execution = validate(ExecutionConfig, load_yaml_mapping(file), str(file))
    azure = execution.azure
    asset = azure.data_asset if azure is not None else None
    if azure is None or asset is None or not is_local(asset):
        return execution
    given = expand_home(asset)
    in_configs = file.parent.name == "execution"
    folder = file.parent.parent if in_configs else file.parent
    resolved = given if given.is_absolute() else (folder / given).resolve()
    if not resolved.exists():
        where = "the config folder" if in_configs else "its file's folder"
        rule = "" if given.is_absolute() else f" (a relative path is read from {where} {folder})"
        raise ConfigError(f"{file}: azure.data_asset {asset!r}: {resolved} does not exist{rule}")
    if given.is_absolute():
        return execution
    return execution.model_copy(update={"azure": azure.model_copy(update={"data_asset": str(resolved)})})


def section_file(config_dir: str | Path, section: str, name_or_path: str | Path) -> Path:
    """`<config_dir>/<section>/<NAME>.yaml` for a name (`--execution azure`), or the file a path names."""
    given = expand_home(name_or_path)
    if given.suffix in (".yaml", ".yml") or given.parent != Path("."):
        if not given.exists():
            raise ConfigError(f"{given}: no such {section} config file")
        return given
    folder = _config_folder(config_dir)
    return _section_file(folder, section, str(name_or_path), folder / section)
