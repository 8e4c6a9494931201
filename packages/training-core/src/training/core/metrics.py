"""Entity-level NER metrics on word-level IOB2 tags: strict (seqeval's strict IOB2) or lenient (conlleval-like).

Strict: references must be valid IOB2, on which seqeval's strict entities are each `B-X` with the `I-X` after it;
predictions are read as `predict` decodes them, a stray `I-X` starting an entity (`repaired_entities` counts them),
where seqeval's strict IOB2 would silently drop it. Lenient entities come from seqeval's chunker. Counts, not seqeval's
metric functions, so a zero denominator gives 0.0 without an `UndefinedMetricWarning`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, Literal

from data.documents import is_iob2_tag, stray_starts, tag_runs
from training.common.errors import InputError

Mode = Literal["strict", "lenient"]
# (document index, entity type, first word, last word + 1)
_Entity = tuple[int, str, int, int]


def compute_metrics(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *, mode: Mode = "strict"
) -> dict[str, Any]:
    """Micro and macro entity precision/recall/F1, a per-entity table and word-level tag accuracy, as plain numbers,
    of one tag list per document paired word by word; macro scores average every entity type seen on either side."""
    if mode not in ("strict", "lenient"):
        raise InputError(f"mode must be 'strict' or 'lenient', got {mode!r}")
    gold_docs = _documents("references", references)
    predicted_docs = _documents("predictions", predictions)
    if len(gold_docs) != len(predicted_docs):
        raise InputError(
            f"{len(gold_docs)} reference documents but {len(predicted_docs)} predicted documents; they must pair up"
        )
    for index, (gold, predicted) in enumerate(zip(gold_docs, predicted_docs, strict=True)):
        if len(gold) != len(predicted):
            raise InputError(
                f"document {index}: {len(gold)} reference tags but {len(predicted)} predicted tags; they must pair up"
            )
    entities = _lenient_entities
    if mode == "strict":
        _check_strict_references(gold_docs)
        entities = _strict_entities
    gold_entities, predicted_entities = entities(gold_docs), entities(predicted_docs)
    # a strict entity that starts with `I-` is a stray run read as if it began with `B-`
    starts = [predicted_docs[index][first] for index, _, first, _ in predicted_entities]
    repaired = sum(tag.startswith("I-") for tag in starts) if mode == "strict" else 0
    pairs = list(zip(chain.from_iterable(gold_docs), chain.from_iterable(predicted_docs), strict=True))
    accuracy = _ratio(sum(gold == predicted for gold, predicted in pairs), len(pairs))
    scores = _entity_scores(gold_entities, predicted_entities)
    return {**scores, "repaired_entities": repaired, "token_accuracy": accuracy}


def _documents(name: str, documents: Sequence[Sequence[str]]) -> list[list[str]]:
    if not isinstance(documents, Iterable) or isinstance(documents, str):  # None raised a TypeError naming nothing
        got = f"{type(documents).__name__} {documents!r:.60}"
        raise InputError(f"{name}: expected one list of tags per document, got {got}")
    result = []
    for index, tags in enumerate(documents):
        if isinstance(tags, str) or not isinstance(tags, Iterable):
            got = f"the string {tags!r}" if isinstance(tags, str) else f"{type(tags).__name__} {tags!r:.60}"
            raise InputError(f"{name}[{index}] is {got}; expected a list of tags per document")
        for position, tag in enumerate(tags):
            if not is_iob2_tag(tag):
                raise InputError(
                    f"{name}[{index}][{position}]: tag {tag!r} is not IOB2; expected 'O', 'B-<type>' or 'I-<type>'"
                )
        result.append(list(tags))
    return result


def _check_strict_references(documents: list[list[str]]) -> None:
    for index, tags in enumerate(documents):
        for position in stray_starts(tags):
            previous = tags[position - 1] if position else "start of document"
            raise InputError(
                f"references[{index}][{position}]: {tags[position]!r} follows {previous!r}; strict mode needs valid "
                "IOB2 references (convert IOB1 data first, or use mode='lenient')"
            )


def _strict_entities(documents: list[list[str]]) -> set[_Entity]:
    return {(index, *run) for index, tags in enumerate(documents) for run in tag_runs(tags)}


def _lenient_entities(documents: list[list[str]]) -> set[_Entity]:
    from seqeval.metrics.sequence_labeling import get_entities  # here: seqeval.metrics imports scikit-learn (~2 s)

    return {
        (index, label, start, end + 1)
        for index, tags in enumerate(documents)
        for label, start, end in get_entities(tags)
    }


def _ratio(numerator: float, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _scores(hits: int, predicted: int, gold: int) -> dict[str, float]:
    """Precision, recall and F1 of `hits` among `predicted` and `gold` counts (0.0 where a denominator is 0)."""
    precision, recall = _ratio(hits, predicted), _ratio(hits, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _entity_scores(gold: set[_Entity], predicted: set[_Entity]) -> dict[str, Any]:
    true_count = Counter(entity[1] for entity in gold)
    predicted_count = Counter(entity[1] for entity in predicted)
    hits = Counter(entity[1] for entity in gold & predicted)
    per_entity = {
        label: {**_scores(hits[label], predicted_count[label], true_count[label]), "support": true_count[label]}
        for label in sorted(true_count.keys() | predicted_count.keys())
    }
    micro = _scores(hits.total(), predicted_count.total(), true_count.total())
    macro = {
        f"macro_{name}": _ratio(sum(row[name] for row in per_entity.values()), len(per_entity))
        for name in ("precision", "recall", "f1")
    }
    return {
        **{f"entity_{name}": value for name, value in micro.items()},
        **macro,
        "support": true_count.total(),
        "per_entity": per_entity,
    }


def span_metrics(
    references: Sequence[Iterable[tuple[int, int, str]]], predictions: Sequence[Iterable[tuple[int, int, str]]]
) -> dict[str, float]:
    """Micro precision/recall/F1 of exact character spans `(start, end, label)`, one collection per document."""
    if len(references) != len(predictions):
        raise InputError(f"{len(references)} reference documents but {len(predictions)} predicted documents")
    gold = {(index, *span) for index, spans in enumerate(references) for span in spans}
    found = {(index, *span) for index, spans in enumerate(predictions) for span in spans}
    return {f"span_{name}": value for name, value in _scores(len(gold & found), len(found), len(gold)).items()}
