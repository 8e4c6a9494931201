"""The `data:` section: its policies' defaults and bad values, and `DataConfig.load` reading data with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.common.errors import ConfigError, DataError, InputError
from training.config import DataColumns, DataConfig, build_training_config


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A minimal config folder whose data section names no path."""
    root = tmp_path / "configs"
    files = {
        "train.yaml": "backbone: tiny\ndata: corpus\n",
        "model/tiny.yaml": "backbone: tiny-bert\n",
        "data/corpus.yaml": "format: spans\nlabels: [PER, LOC]\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_data_policies_default_and_bad_values(folder: Path) -> None:
    data = build_training_config(None, folder).data
    assert (data.misaligned_policy, data.group_by) == ("expand", "group")
    assert build_training_config({"set": ["data.group_by=null"]}, folder).data.group_by is None
    with pytest.raises(ConfigError, match=r"data\.misaligned_policy: expected 'expand' or 'error', got 'drop'$"):
        build_training_config({"set": ["data.misaligned_policy=drop"]}, folder)
    with pytest.raises(ConfigError, match=r"data\.group_by: expected 'group', got 'author'$"):
        build_training_config({"set": ["data.group_by=author"]}, folder)


def test_data_encoding_defaults_to_utf_8_and_an_unknown_one_is_named(folder: Path) -> None:
    assert build_training_config(None, folder).data.encoding == "utf-8"
    expected = "unknown encoding; expected a text encoding Python reads, such as utf-8, latin-1 or cp1252"
    with pytest.raises(ConfigError) as caught:
        build_training_config({"set": ["data.encoding=latin-9x"]}, folder)
    assert str(caught.value) == f"--set data.encoding=latin-9x: data.encoding: {expected}, got 'latin-9x'"
    (folder / "data/corpus.yaml").write_text("format: conll\nencoding: rot13\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"data/corpus\.yaml: data\.encoding: {expected}, got 'rot13'$"):
        build_training_config(None, folder)
    (folder / "data/corpus.yaml").write_text("format: conll\nencoding: latin-1\n", encoding="utf-8")
    latin = build_training_config(None, folder)
    assert latin.data.encoding == "latin-1"
    # The text read, which the encoding decides, has the dataset's fingerprint; runs made before it keep theirs.
    assert latin.fingerprint == build_training_config({"set": ["data.encoding=utf-8"]}, folder).fingerprint


def test_the_data_section_loads_with_its_policies(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "JohnSmith left", "annotations": [[0, 4, "PER"]]}\n', encoding="utf-8")
    data = build_training_config(None, folder).data
    assert data.load(path).report.misaligned["train"].count == 1
    strict = build_training_config({"set": ["data.misaligned_policy=error"]}, folder).data
    with pytest.raises(DataError, match=r"train\.jsonl:1: \[0, 4, 'PER'\] 'John' does not start and end on word"):
        strict.load(path)
    given = r"^data\.path: no data set given; pass a data path \(--data-path\) or set path in data/"
    with pytest.raises(ConfigError, match=given):
        strict.model_copy(update={"path": None}).load()


def test_other_data_keeps_the_columns_it_takes(tmp_path: Path) -> None:
    """A refit on other data recorded the sweep's columns beside it, positions for JSON files that its config then
    refused; other data keeps the positions where it has a CoNLL file, names where it is `datasets` input or JSON."""
    data = DataConfig(name="germeval", columns={"tokens": 1, "tags": 2})
    conll, jsonl = tmp_path / "train.conll", tmp_path / "train.jsonl"
    conll.write_text("1\tParis\tB-LOC\n", encoding="utf-8")
    jsonl.write_text('{"tokens": ["Paris"], "tags": ["B-LOC"]}\n', encoding="utf-8")
    assert data.for_data(str(conll)).columns == data.columns
    other = data.for_data(str(jsonl))
    assert (other.path, other.columns) == (str(jsonl), DataColumns())
    assert other.load().fingerprint == DataConfig(name="json", path=str(jsonl)).load().fingerprint
    named = DataConfig(name="hub", columns={"tokens": "words", "tags": 2})
    assert named.for_data(str(conll)).columns == DataColumns(tags=2)
    assert named.for_data(str(jsonl)).columns == DataColumns(tokens="words")  # JSON token records' keys


def test_other_data_is_read_in_its_own_format(tmp_path: Path) -> None:
    """A refit on other data kept the sweep's `data.format`: JSON lines read as CoNLL (`tag '"PER"]]}' is malformed`),
    CoNLL as JSON (invalid JSON), span records as tokens. That data's content decides where it shows another format;
    a suffix alone does not (JSON lines saved as `.txt`), and the sweep's own data keeps its format always."""
    conll, wikiann, jsonl = tmp_path / "train.conll", tmp_path / "wikiann" / "train", tmp_path / "train.jsonl"
    wikiann.parent.mkdir()
    conll.write_text("Anna\tB-PER\nworks\tO\n", encoding="utf-8")
    wikiann.write_text("en:Anna\tB-PER\nen:works\tO\n", encoding="utf-8")
    jsonl.write_text('{"text": "Anna works", "annotations": [[0, 4, "PER"]]}\n', encoding="utf-8")
    tokens = tmp_path / "tokens"  # no suffix: JSON by its content
    tokens.write_text('{"tokens": ["Anna", "works"], "tags": ["B-PER", "O"]}\n', encoding="utf-8")
    expected = DataConfig(name="json", path=str(jsonl)).load().fingerprint
    for sweep, other, format in (
        ("conll", jsonl, "spans"),
        ("tokens", jsonl, "spans"),
        ("spans", conll, "conll"),
        ("tokens", wikiann.parent, "conll"),
        ("conll", tokens, "tokens"),
        ("spans", tokens, "tokens"),
    ):
        refit = DataConfig(name="sweep", format=sweep).for_data(str(other))
        assert refit.format == format
        assert refit.load().fingerprint == expected
    assert DataConfig(name="sweep", format="conll").for_data(str(wikiann.parent)).format == "conll"
    text = tmp_path / "text"
    text.mkdir()
    (text / "train.txt").write_text(jsonl.read_text(encoding="utf-8"), encoding="utf-8")
    for other_data in (True, False):  # `.txt`: a CoNLL suffix, but JSON content, as the sweep read it
        assert DataConfig(name="sweep", format="spans").for_data(str(text), other_data=other_data).format == "spans"
    untold = tmp_path / "untold"  # no suffix, a start that shows no format: the sweep's format reads it
    untold.write_text("\n\n", encoding="utf-8")
    assert DataConfig(name="sweep", format="spans").for_data(str(untold)).format == "spans"
    # The sweep's own data is never re-read in another format: data whose content shows one is other data.
    with pytest.raises(InputError, match=r"train.jsonl: its files show spans data, not the sweep's data.format conll"):
        DataConfig(name="sweep", format="conll").for_data(str(jsonl), other_data=False)


def test_a_format_given_is_kept_whatever_the_content(tmp_path: Path) -> None:
    """evaluate's `--format tokens` on span records was refused as the sweep's own data showing another format: a
    format given is kept (the load names what does not read in it), only the columns that data takes are."""
    spans = tmp_path / "spans.jsonl"
    spans.write_text('{"text": "Anna works", "annotations": [[0, 4, "PER"]]}\n', encoding="utf-8")
    run = DataConfig(name="sweep", format="spans", columns={"tokens": 1, "tags": 2})
    given = run.for_data(str(spans), format="tokens")
    assert (given.format, given.columns) == ("tokens", DataColumns())
    with pytest.raises(DataError, match=r"spans\.jsonl:1: a token record needs one of \['tokens', 'words'\]"):
        given.load(inherited=True)


def test_labels_holding_a_bar_are_refused() -> None:
    """A tag of type `LOC|GPE` is refused ('|' joins the tags of nested entities); `data.labels` naming it was not."""
    with pytest.raises(ValueError, match=r"labels: 'LOC\|GPE' has '\|', which joins types and no type holds"):
        DataConfig(name="sweep", labels=["PER", "LOC|GPE"])


def test_a_run_s_column_names_tell_its_token_records_in_other_data(tmp_path: Path) -> None:
    """Other data's format was told without the run's column names: token records under named keys beside their
    sentence's `text` were taken for spans, and the refit read them as such."""
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "Anna works", "toks": ["Anna", "works"], "bio": ["B-PER", "O"]}\n', encoding="utf-8")
    config = DataConfig(name="sweep", format="tokens", columns={"tokens": "toks", "tags": "bio"})
    refit = config.for_data(str(other))
    assert refit.format == "tokens"
    assert [document.tags for document in refit.load(inherited=True)["train"]] == [("B-PER", "O")]
