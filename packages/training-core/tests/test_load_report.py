"""The `LoadReport` of `load_dataset`: spans off word edges counted per split (or refused), a frozen record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from data.documents import Span
from data.loaders import load_dataset
from data.report import LoadReport, MisalignedSpans
from training.common.errors import DataError


def write_split(folder: Path, split: str, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def misaligned_folder(tmp_path: Path) -> Path:
    """Train: `Google` labelled inside `Googleplex` (line 2); validation: `ohn` inside `John` and one aligned span."""
    folder = tmp_path / "data"
    write_split(
        folder,
        "train",
        [
            {"text": "Ann met Bob", "annotations": [[0, 3, "PER"], [8, 11, "PER"]]},
            {"text": "Googleplex is big", "annotations": [[0, 6, "ORG"]]},
        ],
    )
    write_split(folder, "validation", [{"text": "John lives in Rome", "annotations": [[1, 4, "PER"], [14, 18, "LOC"]]}])
    return folder


def test_misaligned_spans_are_widened_to_words_and_counted_per_split(misaligned_folder: Path) -> None:
    dataset = load_dataset(misaligned_folder)
    assert dataset["train"][1].spans == (Span(0, 10, "ORG"),)
    assert dataset["train"][1].tags == ("B-ORG", "O", "O")
    assert dataset["validation"][0].spans == (Span(0, 4, "PER"), Span(14, 18, "LOC"))
    train_file, validation_file = misaligned_folder / "train.jsonl", misaligned_folder / "validation.jsonl"
    train_example = f"{train_file}:2: [0, 6, 'ORG'] 'Google' widened to 'Googleplex'"
    validation_example = f"{validation_file}:1: [1, 4, 'PER'] 'ohn' widened to 'John'"
    assert dataset.report.misaligned == {
        "train": MisalignedSpans(count=1, examples=(train_example,)),
        "validation": MisalignedSpans(count=1, examples=(validation_example,)),
    }
    lines = dataset.report.lines()
    assert "1 train span did not start and end on word edges (expanded to words)" in lines
    assert f"  {validation_file}:1: [1, 4, 'PER'] 'ohn' widened to 'John'" in lines


def test_a_span_covering_no_word_is_reported_as_dropped_not_expanded(tmp_path: Path) -> None:
    """A span over a zero-width space has no word to widen to: the report said it was expanded to words."""
    write_split(tmp_path, "train", [{"text": "Ann \u200b Bo", "annotations": [[0, 2, "PER"], [4, 5, "PER"]]}])
    dataset = load_dataset(tmp_path / "train.jsonl")
    assert dataset["train"][0].spans == (Span(0, 3, "PER"),)
    examples = (
        f"{tmp_path / 'train.jsonl'}:1: [0, 2, 'PER'] 'An' widened to 'Ann'",
        f"{tmp_path / 'train.jsonl'}:1: [4, 5, 'PER'] '\\u200b' covers no word, is dropped",
    )
    assert dataset.report.misaligned["train"] == MisalignedSpans(count=2, dropped=1, examples=examples)
    assert dataset.report.lines()[1:] == [
        "2 train spans did not start and end on word edges (1 expanded to words, 1 covering no word dropped)",
        *(f"  {example}" for example in examples),
    ]
    write_split(tmp_path, "train", [{"text": "Ann \u200b Bo", "annotations": [[4, 5, "PER"]]}])
    with pytest.raises(DataError) as error:
        load_dataset(tmp_path / "train.jsonl", misaligned_policy="error")
    assert str(error.value) == (
        f"{tmp_path / 'train.jsonl'}:1: [4, 5, 'PER'] '\\u200b' does not start and end on word edges "
        "(covers no word, is dropped under data.misaligned_policy: expand)"
    )


def test_misaligned_examples_stop_at_five_but_all_are_counted(tmp_path: Path) -> None:
    records = [{"text": f"Xavier{i} left", "annotations": [[0, 6, "PER"]]} for i in range(7)]
    write_split(tmp_path, "train", records)
    report = load_dataset(tmp_path / "train.jsonl").report
    assert report.misaligned["train"].count == 7 and len(report.misaligned["train"].examples) == 5


def test_misaligned_policy_error_names_the_file_line_and_span(misaligned_folder: Path) -> None:
    with pytest.raises(DataError) as error:
        load_dataset(misaligned_folder, misaligned_policy="error")
    assert str(error.value) == (
        f"{misaligned_folder / 'train.jsonl'}:2: [0, 6, 'ORG'] 'Google' does not start and end on word edges "
        "(widened to 'Googleplex' under data.misaligned_policy: expand)"
    )
    with pytest.raises(DataError, match=r"unknown misaligned_policy 'drop'; expected 'expand' or 'error'"):
        load_dataset(misaligned_folder, misaligned_policy="drop")  # type: ignore[arg-type]


def test_spans_widened_into_one_another_meet_the_overlap_policy(tmp_path: Path) -> None:
    write_split(tmp_path, "train", [{"text": "JohnSmith", "annotations": [[0, 4, "PER"], [4, 9, "PER"]]}])
    with pytest.raises(DataError) as caught:
        load_dataset(tmp_path / "train.jsonl")
    assert str(caught.value) == (  # the annotations as written, which the file holds, then what they became
        f"{tmp_path / 'train.jsonl'}:1: annotations [0, 4, 'PER'] and [4, 9, 'PER'] overlap once widened to word "
        "edges ([0, 9, 'PER'] and [0, 9, 'PER']); fix the data or set data.overlap_policy: keep_longest"
    )
    dataset = load_dataset(tmp_path / "train.jsonl", overlap_policy="keep_longest")
    assert dataset["train"][0].spans == (Span(0, 9, "PER"),)
    assert dataset.report.misaligned["train"].count == 2 and dataset.report.overlaps_dropped == 1


def test_the_report_is_a_frozen_record_that_round_trips_through_json(misaligned_folder: Path) -> None:
    report = load_dataset(misaligned_folder).report
    assert LoadReport.model_validate_json(report.model_dump_json()) == report
    with pytest.raises(ValidationError):
        report.spans_trimmed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        LoadReport.model_validate({"source": "x", "documents": {}, "unknown": 1})
