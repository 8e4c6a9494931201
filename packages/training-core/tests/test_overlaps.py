"""`max_coverage`: the non-overlapping spans that cover the most text, as `overlap_policy: keep_longest` keeps them."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from data.documents import Span
from data.loaders import load_dataset
from data.overlaps import max_coverage


def covered(spans: tuple[Span, ...]) -> int:
    return sum(span.end - span.start for span in spans)


def disjoint(spans: tuple[Span, ...]) -> bool:
    ordered = sorted(spans, key=lambda s: s.start)
    return all(a.end <= b.start for a, b in itertools.pairwise(ordered))


def test_two_outer_spans_beat_the_longest_one_between_them() -> None:
    spans = [Span(0, 5, "A"), Span(4, 10, "B"), Span(9, 15, "C")]
    assert max_coverage(spans) == (Span(0, 5, "A"), Span(9, 15, "C"))


def test_a_tie_keeps_fewer_spans_and_duplicates_count_once() -> None:
    assert max_coverage([Span(0, 2, "A"), Span(2, 4, "A"), Span(0, 4, "B")]) == (Span(0, 4, "B"),)
    assert max_coverage([Span(1, 3, "A"), Span(1, 3, "A")]) == (Span(1, 3, "A"),)
    assert max_coverage([]) == ()


def test_the_result_is_optimal_against_every_subset() -> None:
    rng = random.Random(0)
    for _ in range(200):
        spans = []
        for _ in range(rng.randint(1, 7)):
            start = rng.randint(0, 20)
            spans.append(Span(start, start + rng.randint(1, 8), rng.choice("AB")))
        kept = max_coverage(spans)
        best = max(
            covered(subset)
            for size in range(len(spans) + 1)
            for subset in itertools.combinations(spans, size)
            if disjoint(subset)
        )
        assert disjoint(kept) and set(kept) <= set(spans) and covered(kept) == best


def test_keep_longest_in_the_loader_keeps_the_most_text(tmp_path: Path) -> None:
    """A greedy pass kept the longer `bbbb cccc dddd` (14 characters) over `aaaa bbbb` and `cccc dddd` (18)."""
    record = {"text": "aaaa bbbb cccc dddd", "annotations": [[0, 9, "A"], [5, 19, "B"], [10, 19, "C"]]}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    dataset = load_dataset(path, overlap_policy="keep_longest")
    assert dataset["train"][0].spans == (Span(0, 9, "A"), Span(10, 19, "C"))
    assert dataset.report.overlaps_dropped == 1
