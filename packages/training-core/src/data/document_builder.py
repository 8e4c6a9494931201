"""Records of one split's file validated into documents: spans aligned to words, overlaps resolved, tags converted to
IOB2, every repair counted for the load report."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from data.columns import NAMED_SPAN_KEYS, SPAN_KEYS, TAG_COLUMNS, TOKEN_COLUMNS, Columns, span_keys
from data.documents import Document, Span, align_spans, spans_to_tags, tag_as_type, token_spans
from data.formats import HALF_SURROGATE, Record
from data.overlaps import max_coverage
from data.report import MAX_EXAMPLES, MisalignedSpans
from data.schemes import Place, to_iob2
from data.segmentation import Word, split_words
from training.common.errors import DataError

# Whitespace a token may not hold: ASCII's, and the line and record breaks `str.isspace` counts (U+2028, U+0085, ...).
# A no-break, ideographic or other Unicode space (Zs) stays in its token, as CoNLL columns keep it (`data.formats`): the
# words are split from the tokens' text (`10\u00a0000` is two words of one entity, as `U.S.` is four) as `predict`
# splits them, each tagged once, and entities keep the token's text.
_TOKEN_BREAK = re.compile(r"[\t-\r\x1c- \x85\u2028\u2029]")
OverlapPolicy = Literal["error", "keep_longest"]
MisalignedPolicy = Literal["expand", "error"]


@dataclass
class DocumentBuilder:
    """Validates the records of one split's file into documents, counting every repair."""

    file: str
    split: str
    format: str
    labels: Sequence[str] | None
    policy: OverlapPolicy
    misaligned_policy: MisalignedPolicy
    counts: Counter[str]
    scheme: str | None
    columns: Columns = Columns()  # the keys of token records, and of spans in `datasets` input
    index: int = 0
    misaligned_examples: list[str] = field(default_factory=list)
    misaligned_count: int = 0
    misaligned_dropped: int = 0

    def load(self, records: Iterable[Record]) -> tuple[Document, ...]:
        documents = tuple(doc for doc in map(self.build, records) if doc is not None)
        if not documents:
            raise DataError(f"{self.file}: the {self.split!r} split has no documents")
        return documents

    def misaligned(self) -> MisalignedSpans:
        return MisalignedSpans(
            count=self.misaligned_count, dropped=self.misaligned_dropped, examples=tuple(self.misaligned_examples)
        )

    def build(self, record: Record) -> Document | None:
        self.index += 1
        fields = record.fields
        where = record.file or f"{self.file}:{record.line}"  # a document of its own file (brat's): its spans' lines
        doc_id = str(fields.get("id", f"{self.split}-{self.index}"))
        group = fields.get("group") if record.group is None else record.group
        group = None if group is None else str(group)
        if fields.get("answer") in ("reject", "ignore"):  # Prodigy's: no training data, unlike `accept`
            self.counts["rejected_skipped"] += 1
            return None
        if fields.get("_view_id") == "ner":  # ner.teach's: one suggestion accepted, the text's other entities unknown
            raise DataError(
                f"{where}: a binary Prodigy annotation (_view_id 'ner', as ner.teach makes) holds one accepted "
                "suggestion, not every entity of its text; export a dataset made with ner.manual or ner.correct"
            )
        if self.format == "spans":
            if "text" not in fields:
                raise DataError(
                    f"{where}: a span record needs 'text' and spans ({NAMED_SPAN_KEYS}); found keys {sorted(fields)}"
                )
            return self._from_spans(where, doc_id, fields, group)
        words, key = self.columns.keys(where, fields)
        if words is None or key is None:
            missing = TOKEN_COLUMNS if words is None else TAG_COLUMNS
            beside = "" if words is None else f" beside {words!r}"
            raise DataError(
                f"{where}: a token record needs one of {list(missing)}{beside} (or the key data.columns names); "
                f"found keys {sorted(fields)}"
            )
        return self._from_tokens(Place(self.file, record.line, record.lines), doc_id, fields, (words, key), group)

    def _from_spans(self, where: str, doc_id: str, fields: dict[str, Any], group: str | None) -> Document | None:
        text = fields["text"]
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string, got {type(text).__name__}")
        if half := HALF_SURROGATE.search(text):
            raise DataError(f"{where}: 'text' holds half a surrogate pair ({half[0]!r} at character {half.start()})")
        key = _span_key(where, fields) if self.columns.tags is None else self.columns.tags  # a `datasets` column's
        raw = fields[key]
        if not isinstance(raw, list):
            raise DataError(f"{where}: {key!r} must be a list of [start, end, label], got {type(raw).__name__}")
        given = [self._span(where, text, item) for item in raw]  # on a blank text, any is out of range or blank
        if not text.strip():
            self.counts["empty_skipped"] += 1
            return None
        words = split_words(text)
        trimmed = {span for span, was_trimmed in given if was_trimmed}  # of whitespace, counted once each
        self.counts["spans_trimmed"] += sum(was_trimmed for _, was_trimmed in given)
        unique = list(dict.fromkeys(span for span, _ in given))  # one entity annotated twice is no overlap
        self.counts["duplicates_dropped"] += len(given) - len(unique)
        kept = self._resolve_overlaps(where, self._align(where, text, words, unique, trimmed))
        # `from_spans` would align the spans once more: they are on word edges, and in text order, already.
        return Document(doc_id, text, words, spans_to_tags(words, kept), kept, group)

    def _align(
        self, where: str, text: str, words: tuple[Word, ...], spans: list[Span], trimmed: set[Span]
    ) -> list[tuple[Span, Span]]:
        """Spans widened to whole words (counted, with the first few examples), or an error under policy `error`;
        each paired with the annotation as written, which errors name. Spans in `trimmed` are counted as such."""
        aligned = []
        for span, widened in align_spans(words, spans):
            if widened == span:
                aligned.append((span, span))
                continue
            # Beyond its words only by characters in no word (a BOM, a bidi mark, a control): trimmed as whitespace is.
            if widened and span.start <= widened.start and widened.end <= span.end:
                self.counts["spans_trimmed"] += span not in trimmed  # once, where its whitespace was trimmed too
                aligned.append((widened, span))
                continue
            found = f"{where}: [{span.start}, {span.end}, {span.label!r}] {text[span.start : span.end]!r}"
            outcome = f"widened to {text[widened.start : widened.end]!r}" if widened else "covers no word, is dropped"
            if self.misaligned_policy == "error":
                raise DataError(
                    f"{found} does not start and end on word edges ({outcome} under data.misaligned_policy: expand)"
                )
            self.misaligned_count += 1
            self.misaligned_dropped += widened is None
            if len(self.misaligned_examples) < MAX_EXAMPLES:
                self.misaligned_examples.append(f"{found} {outcome}")
            if widened is not None:
                aligned.append((widened, span))
        return aligned

    def _span(self, where: str, text: str, item: Any) -> tuple[Span, bool]:
        """The annotation `item`, checked, with surrounding whitespace trimmed, and whether any was."""
        if isinstance(item, dict) and {"start", "end", "label"} <= item.keys():
            start, end, label = item["start"], item["end"], item["label"]
        elif isinstance(item, dict) and {"start_offset", "end_offset", "label"} <= item.keys():  # doccano's
            start, end, label = item["start_offset"], item["end_offset"], item["label"]
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            start, end, label = item
        else:
            raise DataError(
                f"{where}: annotation {item!r} must be [start, end, label], {{start, end, label}} or "
                "{start_offset, end_offset, label}"
            )
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise DataError(f"{where}: annotation {item!r}: start and end must be integers")
        if not isinstance(label, str) or not label or label != label.strip():  # 'PER ' would be a type of its own
            raise DataError(f"{where}: annotation {item!r}: label must be a non-empty string without outer whitespace")
        if "|" in label:  # as in a tag: a tag of this type would be refused where a run's predictions are read back
            raise DataError(
                f"{where}: annotation {item!r}: label {label!r} has '|', which joins the types of nested entities (as "
                "some exports write them) and no type holds; expected one entity type per annotation"
            )
        if problem := tag_as_type(label):
            raise DataError(f"{where}: annotation {item!r}: label {problem}")
        if start >= end:
            raise DataError(f"{where}: annotation {item!r} is inverted or empty: start {start} must be below end {end}")
        # Browser tools (doccano, Label Studio, Prodigy) count UTF-16 units: an emoji before a span shifts it by one.
        written = item.get("text") if isinstance(item, dict) else None
        if isinstance(written, str) and start >= 0 and text[start:end] != written:
            units = text.encode("utf-16-le")[2 * start : 2 * end].decode("utf-16-le", "replace") == written
            hint = "; the offsets look like UTF-16 code units: count characters (code points)" if units else ""
            raise DataError(
                f"{where}: annotation [{start}, {end}, {label!r}] cuts out {text[start:end]!r}, not its text "
                f"{written!r}{hint}"
            )
        if start < 0 or end > len(text):
            raise DataError(f"{where}: annotation {item!r} is out of range: the text has {len(text)} characters")
        self._check_label(where, label)
        covered = text[start:end]
        trimmed_start, trimmed_end = end - len(covered.lstrip()), start + len(covered.rstrip())
        if trimmed_start >= trimmed_end:
            raise DataError(f"{where}: annotation {item!r} covers only whitespace")
        return Span(trimmed_start, trimmed_end, label), (trimmed_start, trimmed_end) != (start, end)

    def _resolve_overlaps(self, where: str, pairs: list[tuple[Span, Span]]) -> tuple[Span, ...]:
        # The order of `sorted(pairs)`, without a Python-level `Span.__lt__` call per comparison.
        ordered = sorted(pairs, key=lambda p: (p[0].start, p[0].end, p[0].label, p[1].start, p[1].end, p[1].label))
        for (previous, previous_given), (span, span_given) in pairwise(ordered):
            if span.start < previous.end and self.policy == "error":
                pair, given = _listed((previous, span)), _listed((previous_given, span_given))
                widened = "" if given == pair else f" once widened to word edges ({pair})"
                raise DataError(
                    f"{where}: annotations {given} overlap{widened}; fix the data or set "
                    "data.overlap_policy: keep_longest"
                )
        disjoint = all(span.start >= previous.end for (previous, _), (span, _) in pairwise(ordered))  # then all kept
        kept = tuple(a for a, _ in ordered) if disjoint else max_coverage(a for a, _ in ordered)
        self.counts["overlaps_dropped"] += len(ordered) - len(kept)
        return kept

    def _from_tokens(
        self, place: Place, doc_id: str, fields: dict[str, Any], keys: tuple[str, str], group: str | None
    ) -> Document | None:
        """A document of a token record's `fields`, its words and its tags under `keys`."""
        where = str(place)
        name, key = keys
        tokens, tags = fields[name], fields[key]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(f"{where}: '{name}' must be a list of strings")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError(
                f"{where}: '{key}' must be a list of tag names such as 'B-PER' (integer tag ids need their names)"
            )
        if len(tokens) != len(tags):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} {key}; they must pair up")
        if not tokens:
            self.counts["empty_skipped"] += 1
            return None
        # One search over the record finds whether any token is bad: a bad record alone is walked.
        joined = "".join(tokens)
        bad = not all(tokens) or _TOKEN_BREAK.search(joined) or HALF_SURROGATE.search(joined)
        for position, token in enumerate(tokens if bad else ()):
            if not token or _TOKEN_BREAK.search(token):
                raise DataError(f"{place.of(position)}: token {position} ({token!r}) is empty or contains whitespace")
            if HALF_SURROGATE.search(token):
                raise DataError(f"{place.of(position)}: token {position} ({token!r}) holds half a surrogate pair")
        # The words are predict's (`Document.from_words`); invisible characters trim or drop an entity as in a span.
        text, given = token_spans(tokens, self._iob2(place, tags))
        words = split_words(text)
        kept = tuple(span for span, _ in self._align(where, text, words, list(given), set()))
        return Document(doc_id, text, words, spans_to_tags(words, kept), kept, group)

    def _iob2(self, place: Place, tags: list[str]) -> list[str]:
        conversion = to_iob2(tags, self.scheme or "IOB2", place)  # every tag well-formed, or an error naming its line
        if self.labels is not None and (unknown := {tag[2:] for tag in set(conversion.tags)} - {"", *self.labels}):
            position = next(position for position, tag in enumerate(conversion.tags) if tag[2:] in unknown)
            self._check_label(place.of(position), conversion.tags[position][2:])
        # IOB1 and IOB2 differ only in I- tags that start an entity: those are repairs, the rest conversions.
        self.counts["tags_repaired" if self.scheme in ("IOB1", "IOB2") else "tags_converted"] += conversion.changed
        return list(conversion.tags)

    def _check_label(self, where: str, label: str) -> None:
        if self.labels is not None and label not in self.labels:
            # difflib finds no likeness between `per` and `PER` (lower-case tags keep their type as written)
            cased = [known for known in self.labels if known.lower() == label.lower()]
            close = cased or difflib.get_close_matches(label, list(self.labels), n=1)
            hint = f" (did you mean {close[0]!r}?{' types keep their case' if cased else ''})" if close else ""
            raise DataError(f"{where}: label {label!r} is not in the schema{hint}; expected one of {list(self.labels)}")


def _span_key(where: str, fields: dict[str, Any]) -> str:
    """The key of a span record's spans: the first of `SPAN_KEYS` present; another present must hold the same."""
    keys = span_keys(fields)
    label = fields.get("label")
    names = isinstance(label, list) and label and all(isinstance(item, str) for item in label)  # doccano's classes
    if (isinstance(label, str) or names) and keys[:1] in ([], ["label"]):
        raise DataError(
            f"{where}: 'label' is {fields['label']!r}, a class of the whole text (text classification data), not a "
            f"list of spans; expected a list of [start, end, label] under {NAMED_SPAN_KEYS}"
        )
    if not keys:
        others = " or ".join(map(repr, SPAN_KEYS[1:]))
        raise DataError(f"{where}: missing 'annotations' (or {others}; use [] for a document without entities)")
    if differing := [key for key in keys[1:] if fields[key] != fields[keys[0]]]:
        raise DataError(f"{where}: both {keys[0]!r} and {differing[0]!r} hold spans, and they differ; keep one of them")
    return keys[0]


def _listed(spans: Iterable[Span]) -> str:
    return " and ".join(f"[{span.start}, {span.end}, {span.label!r}]" for span in spans)
