"""The format a data file's start shows (read only that far), and the format a run's settings read other data in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.columns import Columns
from data.sniffing import content_format, own_format
from data.text_files import HEAD_BYTES


def test_a_file_s_format_is_told_by_its_start_alone(tmp_path: Path) -> None:
    """Telling a format read and split whole files (4 s and 856 MB for a 126 MB corpus): only the first `HEAD_BYTES`
    are read, a character cut there and bytes that are not UTF-8 past it do not matter."""
    conll = tmp_path / "train"
    conll.write_bytes(b"# comment\n-DOCSTART- O\n\nAnna\tB-PER\n" + "é".encode() * HEAD_BYTES + b"\xff")
    assert content_format(conll) == "conll"
    spans = tmp_path / "spans.txt"
    spans.write_text('{"text": "Anna", "annotations": [[0, 4, "PER"]]}\n' + "x" * 2 * HEAD_BYTES, encoding="utf-8")
    assert content_format(spans) == "spans"
    array = tmp_path / "tokens.json"
    array.write_text('\ufeff [{"tokens": ["Anna"], "tags": ["B-PER"]}, ' + "x" * 2 * HEAD_BYTES, encoding="utf-8")
    assert content_format(array) == "tokens"
    cut = tmp_path / "long"  # a first record past the start shows nothing
    cut.write_text('{"text": "' + "x" * HEAD_BYTES + '", "annotations": []}\n', encoding="utf-8")
    assert content_format(cut) is None
    assert content_format(tmp_path / "missing") is None


def test_a_token_in_brackets_is_no_json(tmp_path: Path) -> None:
    path = tmp_path / "train"
    path.write_text("[\tO\nAnna\tB-PER\n", encoding="utf-8")
    assert content_format(path) == "conll"
    assert own_format(path, "spans") == "conll"


def test_files_showing_two_formats_are_read_each_by_its_own(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "Anna", "annotations": []}\n', encoding="utf-8")
    (tmp_path / "test.conll").write_text("Anna\tB-PER\n", encoding="utf-8")
    assert own_format(tmp_path, "tokens") == "auto"
    assert own_format(tmp_path, "auto") == "auto"


@pytest.mark.parametrize("format", ["spans", "tokens"])
def test_a_record_holding_both_formats_keeps_the_run_s(tmp_path: Path, format: str) -> None:
    """A tokens run on records that keep their text and annotations beside tokens and tags read its own data as
    spans: a refit refused it as other data, evaluate switched. Such a record reads in either, so the run's stays."""
    both = {"text": "Anna works", "annotations": [[0, 4, "PER"]], "tokens": ["Anna", "works"], "tags": ["B-PER", "O"]}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(both) + "\n", encoding="utf-8")
    assert content_format(path, format=format) == own_format(path, format, other_data=False) == format
    assert own_format(path, "conll") == "spans"  # a CoNLL run reads no JSON: the record shows spans, as detected
    named = {"text": "Anna works", "annotations": [], "toks": ["Anna", "works"], "bio": ["B-PER", "O"]}
    path.write_text(json.dumps(named) + "\n", encoding="utf-8")
    assert own_format(path, format, Columns("toks", "bio", inherited=True), other_data=False) == format
    untagged = {"text": "Anna works", "annotations": [], "tokens": ["Anna", "works"]}  # no tags: no token record
    path.write_text(json.dumps(untagged) + "\n", encoding="utf-8")
    assert own_format(path, "tokens") == "spans"
