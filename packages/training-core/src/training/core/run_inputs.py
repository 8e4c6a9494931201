"""What a run starts from: its entity labels, train and validation documents, and feature cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from data.documents import Document, document_items, iob2_tag_names
from data.loaders import Dataset
from data.splits import hold_out
from training.common.cache import cache_folder
from training.common.errors import ConfigError, DataError, InputError, expect_instance
from training.common.fingerprint import fingerprint_items
from training.config.schema import TrainingConfig
from training.core.callbacks import Callback
from training.core.run_context import RunContext
from training.core.run_metrics import PrecisionCheck


@dataclass(frozen=True)
class RunInputs:
    """A run's entity types and IOB2 tags, train and validation documents, and validation texts also in train."""

    labels: tuple[str, ...]
    tag_names: tuple[str, ...]
    train: tuple[Document, ...]
    validation: tuple[Document, ...]
    overlap: int

    @cached_property
    def validation_fingerprint(self) -> str:
        """The validation documents' fingerprint (texts and spans): what says which documents a model was chosen on."""
        return fingerprint_items(document_items(self.validation))

    def warnings(self, metric: str) -> list[str]:
        """What makes the validation split a poor judge of the run's models, `metric` choosing the best."""
        found = [f"{self.overlap} validation documents also occur in train"] if self.overlap else []
        if metric not in ("loss", "token_accuracy") and not any(doc.entity_types for doc in self.validation):
            found.append(
                f"the validation split holds no entities: {metric} is 0 at every evaluation, so the first model is "
                "kept as the best; validate on documents with entities (or choose training.metric_for_best: loss)"
            )
        return found


def run_inputs(config: TrainingConfig, dataset: Dataset) -> RunInputs:
    """What `train_model` trains and validates on; an error for bad arguments, missing splits or unlisted labels."""
    TrainingConfig.check(config)
    Dataset.check(dataset)
    labels = _labels(config, dataset)
    train, validation, overlap = _training_splits(config, dataset)
    return RunInputs(labels, iob2_tag_names(labels), train, validation, overlap)


def check_run_arguments(
    output_dir: object, cache_dir: object, precision_check: object, callbacks: object, context: object
) -> list[Callback]:
    """Refuse `train_model`'s folders, earlier precision check, callbacks and run context of the wrong type, which
    failed deep inside (None or 5 for a folder as a TypeError, a dict for the check or the context as an
    AttributeError, a function at the first hook it lacked); return the callbacks as a list."""
    expect_instance(output_dir, (str, os.PathLike), "output_dir", "the path of a run folder")
    expect_instance(
        cache_dir, (str, os.PathLike, type(None)), "cache_dir", "the path of a feature cache folder, or None"
    )
    expected = "a PrecisionCheck (an earlier run's RunMetrics.precision_check), or None"
    expect_instance(precision_check, (PrecisionCheck, type(None)), "precision_check", expected)
    # create_run_context's settings given here instead were a context, or (empty) silently none
    expected = "a RunContext (create_run_context(settings) makes one), or None"
    expect_instance(context, (RunContext, type(None)), "context", expected)
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable):  # so did one callback, not a list
        raise InputError(f"callbacks: expected a list of Callback objects, got {type(callbacks).__name__}")
    for index, callback in enumerate(callbacks := list(callbacks)):
        expect_instance(callback, Callback, f"callbacks[{index}]", "a Callback (subclass training.core.Callback)")
    return callbacks


def default_cache_dir() -> Path:
    """Where tokenised features are cached between runs and trials (`$XDG_CACHE_HOME/training/features`)."""
    return cache_folder("features")


def _labels(config: TrainingConfig, dataset: Dataset) -> tuple[str, ...]:
    if config.data.labels is None:
        if not dataset.labels:  # was reported as an empty data.labels, which the config never set
            where = f" ({config.data.path})" if config.data.path else ""
            raise DataError(
                f"the data{where} has no entities: every tag is O; label at least one entity, or list the entity "
                "types in data.labels"
            )
        return dataset.labels
    unknown = sorted(set(dataset.labels) - set(config.data.labels))
    if unknown:
        raise DataError(f"the dataset has labels {unknown} that data.labels {list(config.data.labels)} does not list")
    return tuple(config.data.labels)


def _training_splits(
    config: TrainingConfig, dataset: Dataset
) -> tuple[tuple[Document, ...], tuple[Document, ...], int]:
    """Train and validation documents, and how many validation texts also occur in train."""
    if "train" not in dataset:
        raise DataError(f"the dataset has no 'train' split (it has {list(dataset)})")
    if "validation" not in dataset:
        if config.data.holdout_fraction is None:
            raise ConfigError(
                "data.holdout_fraction: the dataset has no validation split; set a fraction of train to hold out "
                "(e.g. 0.1) or provide a validation file"
            )
        dataset = hold_out(
            dataset,
            config.data.holdout_fraction,
            seed=config.training.seed,
            stratify=config.data.stratify,
            group_by=config.data.group_by,
        )
    train_texts = {doc.text for doc in dataset["train"]}
    overlap = sum(doc.text in train_texts for doc in dataset["validation"])
    return dataset["train"], dataset["validation"], overlap
