"""`load_dataset`: a folder of split files or one file, validated into documents with a fingerprint."""

from __future__ import annotations

import difflib
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from data.documents import Document, Span, align_spans, document_items, iob2_tag_names, spans_to_tags
from data.formats import FORMATS, HALF_SURROGATE, Record, detect_format, read_records, read_text, tag_key
from data.hf_datasets import Columns, is_datasets_input, named_tags, read_datasets_input
from data.overlaps import max_coverage
from data.report import MAX_EXAMPLES, LoadReport, MisalignedSpans
from data.schemes import SCHEMES, detect_scheme, split_tag, to_iob2
from data.segmentation import Word, split_words
from data.split_names import SPLIT_ALIASES, SPLIT_ORDER
from training.common.errors import DataError
from training.common.fingerprint import fingerprint_items
from training.common.gc_pause import gc_paused

OverlapPolicy = Literal["error", "keep_longest"]
MisalignedPolicy = Literal["expand", "error"]


class Dataset(Mapping[str, tuple[Document, ...]]):
    """Splits of documents (like a `DatasetDict`), their entity types and a content fingerprint."""

    def __init__(
        self,
        splits: Mapping[str, Sequence[Document]],
        labels: Sequence[str] | None = None,
        report: LoadReport | None = None,
    ) -> None:
        self._splits = {name: tuple(documents) for name, documents in splits.items()}
        found = {label for docs in self._splits.values() for doc in docs for label in doc.entity_types}
        if labels is not None and (unknown := sorted(found - set(labels))):
            raise DataError(f"labels {unknown} occur in the data but not in the schema {list(labels)}")
        self.labels: tuple[str, ...] = tuple(labels if labels is not None else sorted(found))
        self.report = report or LoadReport(
            source="<memory>", documents={name: len(d) for name, d in self._splits.items()}
        )

    def __getitem__(self, split: str) -> tuple[Document, ...]:
        try:
            return self._splits[split]
        except KeyError:
            raise KeyError(f"no split {split!r}; this dataset has {list(self._splits)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._splits)

    def __len__(self) -> int:
        return len(self._splits)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(docs)}" for name, docs in self._splits.items())
        return f"Dataset({sizes}, labels={list(self.labels)}, fingerprint={self.fingerprint[:12]})"

    @property
    def tag_names(self) -> tuple[str, ...]:
        """IOB2 tag names: `O`, then `B-X`, `I-X` for each entity type in order."""
        return iob2_tag_names(self.labels)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over labels and each split's texts and spans: equal content, equal fingerprint."""
        return fingerprint_items(self._fingerprint_items())

    def _fingerprint_items(self) -> Iterator[Any]:
        yield {"labels": list(self.labels)}
        for name in sorted(self._splits):
            yield {"split": name}
            yield from document_items(self._splits[name])


@gc_paused()
def load_dataset(
    data_asset: str | os.PathLike[str] | Any,
    *,
    format: str = "auto",
    labels: Sequence[str] | None = None,
    overlap_policy: OverlapPolicy = "error",
    misaligned_policy: MisalignedPolicy = "expand",
    scheme: str = "auto",
    tag_names: Sequence[str] | None = None,
    columns: Columns | None = None,
) -> Dataset:
    """Load a folder (`train`/`validation`/`test` files), one file (a `train` split) or a Hugging Face dataset.

    `labels` is the entity-type schema (default: the data's). A span edge inside a word is widened to whole words
    and counted (`misaligned_policy="expand"`) or an error; overlaps are resolved after that. Tags of any `scheme`
    become IOB2; `tag_names` names integer tags (token files, `datasets` input without `ClassLabel`); `columns`
    serves `datasets` input with unusual columns.
    """
    if format != "auto" and format not in FORMATS:
        raise DataError(f"{data_asset}: unknown format {format!r}; expected one of auto, {', '.join(FORMATS)}")
    if overlap_policy not in ("error", "keep_longest"):
        raise DataError(f"unknown overlap_policy {overlap_policy!r}; expected 'error' or 'keep_longest'")
    if misaligned_policy not in ("expand", "error"):
        raise DataError(f"unknown misaligned_policy {misaligned_policy!r}; expected 'expand' or 'error'")
    if scheme != "auto" and scheme not in SCHEMES:
        raise DataError(f"unknown tagging scheme {scheme!r}; expected auto or one of {', '.join(SCHEMES)}")
    twice = [name for name, count in Counter(tag_names or ()).items() if count > 1]  # a typo merges two tags' words
    if twice:
        raise DataError(f"data.tag_names names {twice[0]!r} twice; expected one name per tag id, got {list(tag_names)}")
    if is_datasets_input(data_asset):
        source, raw = read_datasets_input(data_asset, tag_names=tag_names, columns=columns or Columns())
        sources = {name: _Source(f"{source}[{split}]", "tokens", raw[split]) for name, split in _splits(source, raw)}
    else:
        source = str(data_asset)
        path = Path(data_asset)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder")
        files = _split_files(path) if path.is_dir() else {"train": path}
        sources = {name: _file_source(file, format, tag_names) for name, file in files.items()}
    used = _scheme(scheme, sources.values())
    counts: Counter[str] = Counter()
    builders = {
        name: _DocumentBuilder(part.where, name, part.format, labels, overlap_policy, misaligned_policy, counts, used)
        for name, part in sources.items()
    }
    splits = {name: builders[name].load(part.records) for name, part in sources.items()}
    report = LoadReport(
        source=source,
        documents={name: len(docs) for name, docs in splits.items()},
        misaligned={name: builder.misaligned() for name, builder in builders.items()},
        scheme=used,
        **counts,
    )
    return Dataset(splits, labels=labels, report=report)


@dataclass(frozen=True)
class _Source:
    """The records of one split, where they come from (for messages) and their format."""

    where: str
    format: str
    records: list[Record]


def _file_source(file: Path, format: str, tag_names: Sequence[str] | None) -> _Source:
    text = read_text(file)
    file_format = detect_format(file, text) if format == "auto" else format
    records = list(read_records(file, text, file_format))
    if file_format == "tokens":  # a span record's other fields are its own business
        records = [_named_tags(file, record, tag_names) for record in records]
    return _Source(str(file), file_format, records)


def _named_tags(file: Path, record: Record, names: Sequence[str] | None) -> Record:
    """A token record whose tags are ids (as `datasets` exports `ClassLabel` columns) with `names` in their place."""
    key = tag_key(record.fields)
    tags = record.fields.get(key)
    if not isinstance(tags, list) or not tags or not all(type(tag) is int for tag in tags):  # true/false are no ids
        return record
    if names is None:
        raise DataError(
            f"{file}:{record.line}: '{key}' holds tag ids; set data.tag_names to the tag names in id order "
            "(or write the names)"
        )
    named = named_tags(str(file), record.line, key, tags, names)
    return replace(record, fields={**record.fields, key: named})


def _splits(source: str, raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Our split names for a dataset's own (`validation`, `valid`, `dev`, `test`), in our order."""
    found: dict[str, str] = {}
    for split in raw:
        name = SPLIT_ALIASES.get(split.lower())
        if name is None:
            raise DataError(f"{source}: split {split!r} is not one of {', '.join(SPLIT_ALIASES)}; rename or drop it")
        if name in found:
            raise DataError(f"{source}: splits {found[name]!r} and {split!r} both are the {name!r} split; keep one")
        found[name] = split
    if "train" not in found:
        raise DataError(f"{source}: no train split; the dataset has {list(raw)}")
    return [(name, found[name]) for name in SPLIT_ORDER if name in found]


def _scheme(requested: str, sources: Iterable[_Source]) -> str | None:
    """The tagging scheme of every token record together (detected unless requested); None without tags."""
    sequences = [
        (f"{part.where}:{record.line}", tags)
        for part in sources
        if part.format != "spans"
        for record in part.records
        if isinstance(tags := record.fields.get(tag_key(record.fields)), list)
        and all(isinstance(tag, str) for tag in tags)
    ]
    if not sequences:
        return None
    return detect_scheme(sequences) if requested == "auto" else requested


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(file.stem.lower())
        if split is None or not file.is_file():
            continue
        if split in found:
            raise DataError(f"{folder}: both {found[split].name} and {file.name} hold the {split!r} split; keep one")
        found[split] = file
    if "train" not in found:
        raise DataError(
            f"{folder}: no train file; expected files named train, validation (or dev) and test "
            f"with a suffix such as .jsonl, .json or .conll"
        )
    return {name: found[name] for name in SPLIT_ORDER if name in found}


@dataclass
class _DocumentBuilder:
    """Validates the records of one split's file into documents, counting every repair."""

    file: str
    split: str
    format: str
    labels: Sequence[str] | None
    policy: OverlapPolicy
    misaligned_policy: MisalignedPolicy
    counts: Counter[str]
    scheme: str | None
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
        where = f"{self.file}:{record.line}"
        doc_id = str(fields.get("id", f"{self.split}-{self.index}"))
        group = fields.get("group") if record.group is None else record.group
        group = None if group is None else str(group)
        if self.format == "spans":
            if "text" not in fields:
                raise DataError(f"{where}: a span record needs 'text' and 'annotations'; found keys {sorted(fields)}")
            return self._from_spans(where, doc_id, fields, group)
        if "tokens" not in fields:
            raise DataError(
                f"{where}: a token record needs 'tokens' and 'tags' (or 'ner_tags'); found keys {sorted(fields)}"
            )
        return self._from_tokens(where, doc_id, fields, group)

    def _from_spans(self, where: str, doc_id: str, fields: dict[str, Any], group: str | None) -> Document | None:
        text = fields["text"]
        if not isinstance(text, str):
            raise DataError(f"{where}: 'text' must be a string, got {type(text).__name__}")
        if half := HALF_SURROGATE.search(text):
            raise DataError(f"{where}: 'text' holds half a surrogate pair ({half[0]!r} at character {half.start()})")
        if "annotations" not in fields:
            raise DataError(f"{where}: missing 'annotations' (use [] for a document without entities)")
        raw = fields["annotations"]
        if not isinstance(raw, list):
            raise DataError(f"{where}: 'annotations' must be a list of [start, end, label], got {type(raw).__name__}")
        if not text.strip():
            self.counts["empty_skipped"] += 1
            return None
        words = split_words(text)
        given = [self._span(where, text, item) for item in raw]
        unique = list(dict.fromkeys(given))  # one entity annotated twice is not an overlap (counted, then dropped)
        self.counts["duplicates_dropped"] += len(given) - len(unique)
        kept = self._resolve_overlaps(where, self._align(where, text, words, unique))
        # `from_spans` would align the spans once more: they are on word edges, and in text order, already.
        return Document(doc_id, text, words, spans_to_tags(words, kept), kept, group)

    def _align(self, where: str, text: str, words: tuple[Word, ...], spans: list[Span]) -> list[tuple[Span, Span]]:
        """Spans widened to whole words (counted, with the first few examples), or an error under policy `error`;
        each paired with the annotation as written, which errors name."""
        aligned = []
        for span, widened in align_spans(words, spans):
            if widened == span:
                aligned.append((span, span))
                continue
            if widened and span.start <= widened.start and widened.end <= span.end:  # beyond its words: only marks
                self.counts["spans_trimmed"] += 1  # that separate words (a BOM, a bidi mark), trimmed as whitespace is
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

    def _span(self, where: str, text: str, item: Any) -> Span:
        if isinstance(item, dict) and {"start", "end", "label"} <= item.keys():
            start, end, label = item["start"], item["end"], item["label"]
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            start, end, label = item
        else:
            raise DataError(f"{where}: annotation {item!r} must be [start, end, label] or {{start, end, label}}")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            raise DataError(f"{where}: annotation {item!r}: start and end must be integers")
        if not isinstance(label, str) or not label or label != label.strip():  # 'PER ' would be a type of its own
            raise DataError(f"{where}: annotation {item!r}: label must be a non-empty string without outer whitespace")
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
        if (trimmed_start, trimmed_end) != (start, end):
            self.counts["spans_trimmed"] += 1
        return Span(trimmed_start, trimmed_end, label)

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

    def _from_tokens(self, where: str, doc_id: str, fields: dict[str, Any], group: str | None) -> Document | None:
        tokens = fields["tokens"]
        key = tag_key(fields)
        if key not in fields:
            raise DataError(f"{where}: 'tokens' needs 'tags' or 'ner_tags' beside it")
        tags = fields[key]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(f"{where}: 'tokens' must be a list of strings")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise DataError(
                f"{where}: '{key}' must be a list of tag names such as 'B-PER' (integer tag ids need their names)"
            )
        if len(tokens) != len(tags):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} {key}; they must pair up")
        if not tokens:
            self.counts["empty_skipped"] += 1
            return None
        # `split()` returns the tokens unchanged iff none is empty or holds whitespace: a bad record alone is walked.
        joined = " ".join(tokens)
        for position, token in enumerate(tokens if joined.split() != tokens or HALF_SURROGATE.search(joined) else ()):
            if not token or token != token.strip() or any(c.isspace() for c in token):
                raise DataError(f"{where}: token {position} ({token!r}) is empty or contains whitespace")
            if HALF_SURROGATE.search(token):
                raise DataError(f"{where}: token {position} ({token!r}) holds half a surrogate pair")
        return Document.from_words(doc_id, tokens, self._iob2(where, tags), group)

    def _iob2(self, where: str, tags: list[str]) -> list[str]:
        if self.labels is not None:
            for label in dict.fromkeys(split_tag(tag, where)[1] for tag in tags if tag != "O"):
                self._check_label(where, label)
        conversion = to_iob2(tags, self.scheme or "IOB2", where)
        # IOB1 and IOB2 differ only in I- tags that start an entity: those are repairs, the rest conversions.
        self.counts["tags_repaired" if self.scheme in ("IOB1", "IOB2") else "tags_converted"] += conversion.changed
        return list(conversion.tags)

    def _check_label(self, where: str, label: str) -> None:
        if self.labels is not None and label not in self.labels:
            close = difflib.get_close_matches(label, list(self.labels), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{where}: label {label!r} is not in the schema{hint}; expected one of {list(self.labels)}")


def _listed(spans: Iterable[Span]) -> str:
    return " and ".join(f"[{span.start}, {span.end}, {span.label!r}]" for span in spans)
