"""The one decoder from word tags to entities, shared by the metrics, best-model selection, the HPO objective and
`predict`.

Policy: predicted tags are repaired to valid IOB2, as conlleval, seqeval's default mode and Hugging Face's
token-classification pipeline read them: an `I-X` that does not continue an entity of type X starts one (it reads as
`B-X`). A model that emits `O I-PER I-PER` has then found one PER entity in evaluation exactly as in prediction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def stray_starts(tags: Sequence[str]) -> Iterator[int]:
    """Positions where a run of `I-X` starts without `B-X` or `I-X` before it."""
    previous = "O"
    for position, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            yield position
        previous = tag


def repair_iob2(tags: Sequence[str]) -> tuple[str, ...]:
    """`tags` as valid IOB2: each stray `I-X` becomes `B-X`, every other tag is kept."""
    repaired = list(tags)
    for position in stray_starts(tags):
        repaired[position] = "B-" + repaired[position][2:]
    return tuple(repaired)
