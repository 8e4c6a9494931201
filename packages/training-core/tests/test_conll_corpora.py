"""CoNLL files as real corpora write them: comment lines, index columns, tags first, OntoNotes brackets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.documents import Span
from data.loaders import load_dataset
from training.common.errors import DataError


def read(tmp_path: Path, content: str, **options: Any) -> list[tuple[str, tuple[Span, ...]]]:
    path = tmp_path / "train.conll"
    path.write_text(content, encoding="utf-8")
    return [(doc.text, doc.spans) for doc in load_dataset(path, **options)["train"]]


def load_error(tmp_path: Path, content: str, **options: Any) -> str:
    with pytest.raises(DataError) as caught:
        read(tmp_path, content, **options)
    return str(caught.value).replace(str(tmp_path / "train.conll"), "train.conll")


def test_comment_lines_before_a_sentence_are_skipped(tmp_path: Path) -> None:
    """`# id ...` (MultiCoNER) and `# text = ...` (CoNLL-U) were read as tokens, or refused as a column more."""
    multiconer = "# id 5f4c1d\tdomain=en\nsteve _ _ B-PER\njobs _ _ I-PER\n\n# id 77\tdomain=en\nparis _ _ B-LOC\n"
    assert read(tmp_path, multiconer) == [("steve jobs", (Span(0, 10, "PER"),)), ("paris", (Span(0, 5, "LOC"),))]
    sentences = "# sent_id = 1\n# text = Anna left\nAnna B-PER\nleft O\n\n# sent_id = 2\nBob B-PER\n"
    assert read(tmp_path, sentences) == [("Anna left", (Span(0, 4, "PER"),)), ("Bob", (Span(0, 3, "PER"),))]


def test_hashtag_tokens_stay_tokens(tmp_path: Path) -> None:
    """Tweets tag `#` and `#word` tokens, at a sentence's start or inside it: a line with the file's columns and a
    tag last is a token, not a comment."""
    tweets = "#\tO\nlove\tO\n#\tB-ORG\nApple\tI-ORG\n\n#TBT\tO\nParis\tB-LOC\n"
    assert read(tmp_path, tweets) == [("# love # Apple", (Span(7, 14, "ORG"),)), ("#TBT Paris", (Span(5, 10, "LOC"),))]
