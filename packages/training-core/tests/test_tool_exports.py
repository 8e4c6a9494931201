"""Span JSON lines as annotation tools export them: doccano (both exports), Prodigy (`db-out`) and spaCy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data.documents import Span
from data.formats import json_format
from data.loaders import Dataset, load_dataset
from training.common.errors import DataError

TEXT = "Paul lives in Paris."
PRODIGY_TOKENS = [
    {"text": word, "start": start, "end": start + len(word), "id": index}
    for index, (word, start) in enumerate([("Paul", 0), ("lives", 5), ("in", 11), ("Paris", 14), (".", 19)])
]


def prodigy(answer: str | None, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A record as `prodigy db-out` writes one of `ner.manual`: token objects beside the spans, and the answer."""
    record = {"text": TEXT, "spans": spans, "tokens": PRODIGY_TOKENS, "_input_hash": 1, "_view_id": "ner_manual"}
    return record if answer is None else {**record, "answer": answer}


PAUL = {"start": 0, "end": 4, "label": "PER", "token_start": 0, "token_end": 0}
PARIS = {"start": 14, "end": 19, "label": "LOC", "token_start": 3, "token_end": 3}


def load(tmp_path: Path, records: list[dict[str, Any]]) -> Dataset:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return load_dataset(path)


def load_error(tmp_path: Path, records: list[dict[str, Any]]) -> str:
    with pytest.raises(DataError) as caught:
        load(tmp_path, records)
    return str(caught.value).replace(str(tmp_path / "train.jsonl"), "train.jsonl")


def read(dataset: Dataset) -> list[tuple[str, str, tuple[Span, ...]]]:
    return [(doc.id, doc.text, doc.spans) for doc in dataset["train"]]


def test_doccano_s_text_label_export_reads_its_label_list(tmp_path: Path) -> None:
    """doccano's "JSONL" export writes the spans as `label`; the record was refused as missing 'annotations'."""
    records = [{"id": 1, "text": TEXT, "label": [[0, 4, "PER"], [14, 19, "LOC"]], "Comments": []}]
    assert read(load(tmp_path, records)) == [("1", TEXT, (Span(0, 4, "PER"), Span(14, 19, "LOC")))]


def test_doccano_s_export_with_relations_reads_its_entities_offsets(tmp_path: Path) -> None:
    entities = [
        {"id": 3, "label": "PER", "start_offset": 0, "end_offset": 4},
        {"id": 4, "label": "LOC", "start_offset": 14, "end_offset": 19},
    ]
    records = [{"id": 1, "text": TEXT, "entities": entities, "relations": []}]
    assert read(load(tmp_path, records)) == [("1", TEXT, (Span(0, 4, "PER"), Span(14, 19, "LOC")))]


def test_prodigy_records_read_their_spans_beside_their_token_objects(tmp_path: Path) -> None:
    dataset = load(tmp_path, [prodigy("accept", [PAUL, PARIS]), prodigy(None, [PARIS])])
    assert read(dataset) == [
        ("train-1", TEXT, (Span(0, 4, "PER"), Span(14, 19, "LOC"))),
        ("train-2", TEXT, (Span(14, 19, "LOC"),)),
    ]
    assert json_format(tmp_path / "train.jsonl", json.dumps(prodigy("accept", [PAUL])), kept="tokens") == "spans"


def test_spacy_s_doc_json_reads_its_ents(tmp_path: Path) -> None:
    """`Doc.to_json()`: `ents` beside token objects of character offsets and the sentences."""
    tokens = [{"id": token["id"], "start": token["start"], "end": token["end"]} for token in PRODIGY_TOKENS]
    ents = [{"start": 0, "end": 4, "label": "PER"}, {"start": 14, "end": 19, "label": "LOC"}]
    record = {"text": TEXT, "ents": ents, "sents": [{"start": 0, "end": 20}], "tokens": tokens}
    assert read(load(tmp_path, [record])) == [("train-1", TEXT, (Span(0, 4, "PER"), Span(14, 19, "LOC")))]
    groups = {**record, "spans": {"sc": [{"start": 0, "end": 10, "label": "PERSON", "kb_id": ""}]}}  # spaCy >= 3.3.1
    assert read(load(tmp_path, [groups])) == read(load(tmp_path, [record]))  # span groups are no entities


def test_prodigy_records_answered_reject_or_ignore_are_skipped_and_counted(tmp_path: Path) -> None:
    """A rejected suggestion is no entity: such records were read as training data."""
    records = [prodigy("reject", [PARIS]), prodigy("accept", [PAUL]), prodigy("ignore", [])]
    dataset = load(tmp_path, records)
    assert read(dataset) == [("train-2", TEXT, (Span(0, 4, "PER"),))]
    assert dataset.report.rejected_skipped == 2
    assert "2 records answered reject or ignore skipped" in dataset.report.lines()
    other = load(tmp_path, [prodigy("yes", [PAUL])])  # an `answer` of other data is no Prodigy answer: read
    assert read(other) == [("train-1", TEXT, (Span(0, 4, "PER"),))]


def test_two_span_keys_of_different_spans_are_refused_naming_both(tmp_path: Path) -> None:
    record = {"text": TEXT, "annotations": [[0, 4, "PER"]], "spans": [[14, 19, "LOC"]]}
    assert load_error(tmp_path, [record]) == (
        "train.jsonl:1: both 'annotations' and 'spans' hold spans, and they differ; keep one of them"
    )
    same = {"text": TEXT, "entities": [[0, 4, "PER"]], "label": [[0, 4, "PER"]]}
    assert read(load(tmp_path, [same])) == [("train-1", TEXT, (Span(0, 4, "PER"),))]


def test_a_string_label_is_refused_as_text_classification_data(tmp_path: Path) -> None:
    """doccano's text-classification export holds the text's class in `label`: it was 'missing annotations'."""
    records = [{"text": TEXT, "label": [[0, 4, "PER"]]}, {"id": 7, "text": TEXT, "label": "positive"}]
    assert load_error(tmp_path, records) == (
        "train.jsonl:2: 'label' is 'positive', a class of the whole text (text classification data), not a list of "
        "spans; expected a list of [start, end, label] under 'annotations' or 'entities' or 'spans' or 'ents' or "
        "'label'"
    )
    classes = [{"id": 1, "text": TEXT, "label": ["positive", "travel"], "Comments": []}]  # doccano's, as written
    assert load_error(tmp_path, classes).startswith("train.jsonl:1: 'label' is ['positive', 'travel'], a class of")


def test_prodigy_s_binary_annotations_are_refused_and_rejects_skipped_in_token_files_too(tmp_path: Path) -> None:
    """ner.teach accepts one suggestion per text: read as gold, every other entity of the text was O."""
    teach = {**prodigy("accept", [PARIS]), "_view_id": "ner"}
    assert load_error(tmp_path, [prodigy("accept", [PAUL]), teach]) == (
        "train.jsonl:2: a binary Prodigy annotation (_view_id 'ner', as ner.teach makes) holds one accepted "
        "suggestion, not every entity of its text; export a dataset made with ner.manual or ner.correct"
    )
    tokens = [{"tokens": ["Paul"], "ner_tags": ["B-PER"], "answer": answer} for answer in ("reject", "accept")]
    dataset = load(tmp_path, tokens)
    assert [doc.spans for doc in dataset["train"]] == [(Span(0, 4, "PER"),)]
    assert dataset.report.rejected_skipped == 1


def test_doccano_offsets_in_utf16_units_are_named_where_the_span_carries_its_text(tmp_path: Path) -> None:
    text = "\U0001f600\U0001f600 Al Bo Cy"
    bo = {"start_offset": 8, "end_offset": 10, "label": "PER", "text": "Bo"}  # 'Bo' in UTF-16 units
    assert load_error(tmp_path, [{"text": text, "entities": [bo]}]) == (
        "train.jsonl:1: annotation [8, 10, 'PER'] cuts out ' C', not its text 'Bo'; the offsets look like UTF-16 code "
        "units: count characters (code points)"
    )
    characters = {**bo, "start_offset": 6, "end_offset": 8}
    assert read(load(tmp_path, [{"text": text, "entities": [characters]}])) == [("train-1", text, (Span(6, 8, "PER"),))]
