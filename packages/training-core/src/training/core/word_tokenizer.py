"""The tokenizer of a backbone or model folder, set up for text already split into words, and checked on one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from training.common.errors import InputError, first_line
from training.core.features import encode_documents
from training.core.windowing import text_documents

# A tokenizer folder holds one of these (a fast tokenizer's file, or a vocabulary transformers converts).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "spm.model",
    "sentencepiece.bpe.model",
)


def load_word_tokenizer(source: str | Path, **options: Any) -> PreTrainedTokenizerBase:
    """The tokenizer, set up for text already split into words: byte-level BPE ones (RoBERTa, GPT-2, ModernBERT, ...)
    get `add_prefix_space=True`, as their documentation asks, or every word would read as text-initial ("Sm", "ith").
    A folder without tokenizer files is an OSError: transformers built a tokenizer of five special tokens from the
    config alone, and every word became `[UNK]`."""
    if Path(source).is_dir() and not any((Path(source) / name).is_file() for name in TOKENIZER_FILES):
        raise OSError(f"no tokenizer files in {source} (expected {', '.join(TOKENIZER_FILES)})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    except Exception as error:  # tokenizers' bare one: a tokenizer.json it cannot read (a newer release's, or edited)
        if type(error) is not Exception:
            raise
        raise ValueError(f"tokenizer.json: {first_line(error)}") from error
    if getattr(tokenizer, "add_prefix_space", None) is False and _byte_level(tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(source, add_prefix_space=True, **options)
        for part in _byte_level(tokenizer):  # transformers 5's generic fast tokenizer (ModernBERT's) only records it
            part.add_prefix_space = True
    return tokenizer


def _byte_level(tokenizer: PreTrainedTokenizerBase) -> list[pre_tokenizers.ByteLevel]:
    """The byte-level steps of the tokenizer's pre-tokenizer (none for WordPiece or SentencePiece ones)."""
    pre_tokenizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    steps = pre_tokenizer if isinstance(pre_tokenizer, pre_tokenizers.Sequence) else [pre_tokenizer]
    return [step for step in steps if isinstance(step, pre_tokenizers.ByteLevel)]


def check_tokenizer(tokenizer: PreTrainedTokenizerBase, what: str, error: type[InputError]) -> None:
    """A fast tokenizer that encodes words as training and prediction do: some hand-edited tokenizer values (a
    `model_max_length` of text, an `unk_token` of "", a vocabulary without it) fail only there, mid-run or
    mid-request."""
    if not tokenizer.is_fast:
        raise error(f"{what}: {type(tokenizer).__name__} is not a fast tokenizer; word alignment needs one")
    try:
        encode_documents(text_documents(["a \ua66e"]), tokenizer, ("O",), 16, 0)  # a word no vocabulary holds: [UNK]
    except Exception as problem:  # tokenizers raises a bare Exception ("Missing [UNK] token from the vocabulary")
        raise error(
            f"{what}: its tokenizer fails on a word ({type(problem).__name__}: {first_line(problem)})"
        ) from problem
