"""The format a data file's start shows (read only that far), and the format a run's settings read other data in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from data.columns import Columns
from data.loaders import load_dataset
from data.sniffing import content_format, own_format
from data.text_files import HEAD_BYTES
from training.common.errors import DataError
from training.config import DataConfig


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
    assert content_format(tmp_path / "missing") is None
    blank = tmp_path / "blank"
    blank.write_text("\n \n", encoding="utf-8")
    assert content_format(blank) is None


def test_a_first_record_past_the_start_is_read_on(tmp_path: Path) -> None:
    """A first record longer than the start showed nothing, so a CoNLL run read a long document's JSON lines as CoNLL
    (`tag '"PER"]]}' is malformed`); the file is read on until that record ends."""
    text = "word " * HEAD_BYTES + "Anna"
    long = tmp_path / "train.jsonl"
    long.write_text(json.dumps({"text": text, "annotations": [[len(text) - 4, len(text), "PER"]]}) + "\n" + "x" * 9)
    assert content_format(long) == "spans"
    assert own_format(long, "conll") == "spans"
    array = tmp_path / "train.json"
    array.write_text(json.dumps([{"tokens": ["word"] * HEAD_BYTES, "tags": ["O"] * HEAD_BYTES}]), encoding="utf-8")
    assert own_format(array, "spans") == "tokens"


def test_a_start_that_is_no_json_is_conll(tmp_path: Path) -> None:
    """Few-NERD's own `train.txt` (bare types: `Paul person-artist/author`) shows no CoNLL tag, so a spans run kept
    its format and read it as JSON (`invalid JSON`); a start that is not JSON is CoNLL, whatever its first tags."""
    fewnerd = tmp_path / "fewnerd"
    fewnerd.mkdir()
    for name in ("train", "dev", "test"):
        (fewnerd / f"{name}.txt").write_text("Paul\tperson-artist/author\nlives\tO\n", encoding="utf-8")
    assert content_format(fewnerd / "train.txt") == "conll"
    assert own_format(fewnerd, "spans") == own_format(fewnerd, "tokens") == "conll"


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


def test_a_token_in_brackets_is_no_json(tmp_path: Path) -> None:
    path = tmp_path / "train"
    path.write_text("[\tO\nAnna\tB-PER\n", encoding="utf-8")
    assert content_format(path) == "conll"
    assert own_format(path, "spans") == "conll"


def test_a_start_is_read_in_the_data_encoding(tmp_path: Path) -> None:
    """A Latin-1 WikiANN file without a suffix is told CoNLL by its start; a UTF-16 JSON lines file read as UTF-8
    showed no JSON start, so the sweep's own data was refused as other data showing conll."""
    wikiann = tmp_path / "wikiann"
    wikiann.mkdir()
    (wikiann / "train").write_bytes("es:España\tB-LOC\nes:gana\tO\n".encode("latin-1"))
    assert load_dataset(wikiann, encoding="latin-1")["train"][0].text == "España gana"
    spans = tmp_path / "train.jsonl"
    spans.write_text('{"text": "España gana", "annotations": [[0, 6, "LOC"]]}\n', encoding="utf-16")
    assert content_format(spans, encoding="utf-16") == "spans"
    sweep = DataConfig(name="sweep", format="conll", encoding="utf-16")
    assert sweep.for_data(str(spans)).load().labels == ("LOC",)
    assert own_format(spans, "spans", other_data=False, encoding="utf-16") == "spans"
    # without a BOM, in this machine's byte order, as bytes.decode reads it: telling its format was an internal error
    spans.write_bytes(spans.read_text(encoding="utf-16").encode(f"utf-16-{sys.byteorder[0]}e"))
    assert content_format(spans, encoding="utf-16") == "spans"
    assert sweep.for_data(str(spans)).load().labels == ("LOC",)


def test_a_utf16_file_of_crlf_lines_in_a_utf8_run_is_named_as_utf16(tmp_path: Path) -> None:
    """Read as UTF-8, Windows' UTF-16 holds a "\r" inside its first line (before the NUL of "\r\n"): telling whether it
    is a CSV table failed in the csv module, an internal error, before the file could be named as UTF-16."""
    spans = tmp_path / "train.jsonl"
    spans.write_text('{"text": "Anna", "annotations": []}\r\n', encoding="utf-16")
    utf16 = r"train\.jsonl: UTF-16 text \(it starts with a UTF-16 byte-order mark\); save it as UTF-8, or set data\."
    with pytest.raises(DataError, match=rf"{utf16}encoding: utf-16 \(--encoding of evaluate and report\)$"):
        DataConfig(name="sweep", format="spans").for_data(str(spans)).load()
    assert DataConfig(name="sweep", format="spans", encoding="utf-16").for_data(str(spans)).load()["train"]  # read so


def test_files_showing_two_formats_are_read_each_by_its_own(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "Anna", "annotations": []}\n', encoding="utf-8")
    (tmp_path / "test.conll").write_text("Anna\tB-PER\n", encoding="utf-8")
    assert own_format(tmp_path, "tokens") == "auto"
    assert own_format(tmp_path, "auto") == "auto"
