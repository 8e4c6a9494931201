"""Overlapping spans under `overlap_policy: keep_longest`: keep the non-overlapping set that covers the most text."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from data.documents import Span


def max_coverage(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Disjoint spans covering the most characters (weighted interval scheduling), fewest spans on a tie, in text
    order: of `[0, 5)`, `[4, 10)` and `[9, 15)` it keeps `[0, 5)` and `[9, 15)`, where a greedy pass would not."""
    ordered = sorted(set(spans), key=lambda s: (s.end, s.start, s.label))
    ends = [span.end for span in ordered]
    # best[i]: (characters covered, -spans used) by the best choice among the first i spans.
    best: list[tuple[int, int]] = [(0, 0)]
    for index, span in enumerate(ordered):
        before = bisect_right(ends, span.start, hi=index)
        covered, count = best[before]
        best.append(max(best[index], (covered + span.end - span.start, count - 1)))
    kept: list[Span] = []
    index = len(ordered)
    while index:
        span = ordered[index - 1]
        if best[index] == best[index - 1]:
            index -= 1
            continue
        kept.append(span)
        index = bisect_right(ends, span.start, hi=index - 1)
    return tuple(reversed(kept))
