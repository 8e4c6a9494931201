"""Token positions of a backbone: how many a window may hold, and where its position ids start."""

from __future__ import annotations

from transformers import PretrainedConfig, PreTrainedTokenizerBase

from training.common.errors import ConfigError

# Model types whose position ids start after the padding id (RoBERTa's offset of 2), so fewer positions are usable.
_PADDING_OFFSET_TYPES = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm", "data2vec-text", "xmod"}
    | {"longformer", "mpnet", "luke", "ibert", "markuplm", "layoutlmv3", "esm"}
)
# Tokenizers without a known limit report transformers' VERY_LARGE_INTEGER (1e30).
_NO_TOKENIZER_LIMIT = 10**12


def check_max_length(
    max_length: int, model_config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase | None
) -> None:
    """`ConfigError` when windows of `max_length` tokens exceed the backbone's positions or the tokenizer's limit
    (None: positions only; a saved model's tokenizer limit is advice, its positions are not)."""
    most = position_limit(model_config)
    if most is not None and max_length > most:
        offset = position_offset(model_config)
        shift = f" minus its padding offset of {offset}" if offset else ""
        raise ConfigError(
            f"model.max_length: {max_length} is above the backbone's position limit of {most} "
            f"({model_config.model_type} max_position_embeddings {most + offset}{shift}); "
            f"set model.max_length to at most {most}"
        )
    limit = tokenizer.model_max_length if tokenizer is not None else _NO_TOKENIZER_LIMIT
    if limit < _NO_TOKENIZER_LIMIT and max_length > limit:
        raise ConfigError(
            f"model.max_length: {max_length} is above the tokenizer's model_max_length of {limit}; "
            f"set model.max_length to at most {limit}"
        )


def position_limit(model_config: PretrainedConfig) -> int | None:
    """The most tokens a window of the backbone holds: its positions less their offset (None: it does not say)."""
    positions = getattr(model_config, "max_position_embeddings", None)
    return positions - position_offset(model_config) if isinstance(positions, int) else None


def position_offset(model_config: PretrainedConfig) -> int:
    """The position id of a sequence's first token: 0, or the padding id plus one for RoBERTa-like backbones."""
    pad = model_config.pad_token_id
    return pad + 1 if model_config.model_type in _PADDING_OFFSET_TYPES and isinstance(pad, int) else 0
