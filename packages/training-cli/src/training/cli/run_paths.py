"""Finding things in run folders given by the user: the model folder, the run's config, data read as the run read
it, and the predictor that runs a model (torch for a model folder, onnxruntime for an exported one)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.common.errors import ConfigError, DataError, InputError, TagNamesNeeded

if TYPE_CHECKING:
    from data.loaders import Dataset
    from training.config.schema import DataColumns
    from training.core.exported import OnnxPredictor
    from training.core.predictor import Predictor
    from training.core.run_folder import RunFolder


def model_folder(path: Path) -> Path:
    """`path` itself when it holds a model, else its `model/` folder; an error naming `path` otherwise."""
    from training.core.exported import is_exported
    from training.core.run_folder import RunFolder

    for candidate in (path, path / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    if is_exported(path):  # predict and serve run one; scoring or exporting again needs the torch model
        raise InputError(f"{path}: an exported model folder; expected the run folder or model/ folder it came from")
    if not path.exists():
        raise InputError(f"{path}: no such model folder")
    if not path.is_dir():
        raise InputError(f"{path}: a file; expected a model folder or a run folder with model/")
    if _unfinished(RunFolder(path)):
        raise InputError(
            f"{path}: an unfinished run (metrics.json: running) with no model yet; its training saves one at its first "
            "evaluation (training still, or stopped before it)"
        )
    raise InputError(f"{path}: not a model folder or a run folder with model/ (no config.json found)")


def note_unfinished(args: argparse.Namespace, folder: Path) -> None:
    """A note (`output.note`) where the run that saved the model in `folder` has not finished: its `metrics.json`
    says running (training still, or stopped mid-way), and its model is the best of the evaluations so far."""
    from training.cli.output import note
    from training.core.run_folder import RunFolder

    run = RunFolder.of_model(folder)
    if _unfinished(run):
        note(args, f"note: {run.root} is an unfinished run (metrics.json: running); its model is the best so far")


def _unfinished(run: RunFolder) -> bool:
    """Whether `run`'s `metrics.json` says running; not where it has none, or another tool's or a damaged one."""
    try:
        record = run.read_metrics()
    except ConfigError:
        return False
    return record is not None and not record.completed


def predictor_folder(path: Path, *, quantized: bool = False, precision: str | None = None) -> Path:
    """`path` itself when it is an exported folder (checked to hold the model asked for), else its model folder."""
    from training.core.exported import is_exported, model_file

    if is_exported(path):
        if precision is not None and (quantized or precision != "fp32"):  # fp32 is what it computes in: fine
            raise InputError(
                f"--precision {precision}: {path} is an exported folder, which computes in fp32 (int8 "
                "with --quantized); --precision is for a run's torch model"
            )
        model_file(path, quantized=quantized)
        return path
    if quantized:
        raise InputError(f"{path}: --quantized needs an exported folder (training export --quantize)")
    return model_folder(path)


def load_predictor(
    folder: Path, batch_size: int, *, quantized: bool = False, precision: str | None = None
) -> OnnxPredictor | Predictor:
    """The predictor of a `predictor_folder`: onnxruntime for an exported folder (torch never imported), else torch
    in `precision` (default: the run's)."""
    from training.core.exported import OnnxPredictor, is_exported

    if is_exported(folder):
        return OnnxPredictor(folder, quantized=quantized, batch_size=batch_size)
    from training.core.predictor import Predictor

    return Predictor.from_folder(folder, batch_size=batch_size, precision=precision)  # windows: the run's config


@dataclass(frozen=True)
class DataOptions:
    """How to read the data given with `--data-path` (`--format`, `--encoding`, `--columns`, `--tag-names`): None, the
    run's."""

    format: str | None = None
    encoding: str | None = None
    columns: DataColumns | None = None
    tag_names: tuple[str, ...] | None = None


def run_dataset(model_dir: Path, data_path: str, options: DataOptions = DataOptions()) -> Dataset:
    """The data at `data_path`, read with the run's data options (format, encoding, scheme, labels, columns) when
    known, as a refit on other data reads it (`DataConfig.for_data`: the format its files' content shows where it
    contradicts the run's, and the run's columns it takes), in those of `options` that are given; an error naming
    `data_path` where it has entity types the model does not tag."""
    try:
        dataset = _read_dataset(model_dir, data_path, options)
    except TagNamesNeeded as error:  # this command's option names them
        raise error.naming_with("pass --tag-names with") from error
    from data.schemes import declared_types
    from training.core.model import model_tag_names, read_model_config

    types = declared_types(model_tag_names(read_model_config(model_dir), f"{model_dir}/config.json"))
    unknown = sorted(set(dataset.labels) - set(types))
    if unknown:
        told = f"{data_path}: has entity types {unknown} that the model does not tag"
        raise DataError(f"{told} (its types: {list(types)})")
    return dataset


def _read_dataset(model_dir: Path, data_path: str, options: DataOptions) -> Dataset:
    from data.columns import Columns
    from data.hf_datasets import is_datasets_input
    from data.text_files import EncodingError
    from training.core.run_folder import RunFolder

    config = RunFolder.of_model(model_dir).read_config()
    if config is not None:
        given = {"encoding": options.encoding, "tag_names": options.tag_names}
        own = config.data.model_copy(update={key: value for key, value in given.items() if value is not None})
        data = own.for_data(data_path, format=options.format, columns=options.columns)  # a format given is kept
        try:
            return data.load(inherited=options.columns is None)
        except DataError as error:  # other data in the run's format: say which was used, and how to choose
            told = options.format or data.format != config.data.format or data.format == "auto"
            # no format reads text of another encoding, names tag ids, or reads `datasets` input (its columns shape it)
            if told or isinstance(error, (EncodingError, TagNamesNeeded)) or is_datasets_input(data_path):
                raise
            hint = f"read as {data.format}, the run's data.format; --format auto detects it"
            raise DataError(f"{error} ({hint})") from error
    from data.loaders import load_dataset

    columns = Columns(**dict(options.columns)) if options.columns is not None else None
    return load_dataset(
        data_path,
        format=options.format or "auto",
        encoding=options.encoding or "utf-8",
        columns=columns,
        tag_names=options.tag_names,
    )
