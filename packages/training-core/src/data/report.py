"""`LoadReport`: what loading did besides reading, as a frozen record that runs log and keep in `metrics.json`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from training.common.plural import counted

MAX_EXAMPLES = 5


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MisalignedSpans(_Record):
    """Spans of one split whose start or end fell inside a word (or on no word edge), and the first few of them;
    `dropped` of them covered no word (only characters the word rule skips, such as U+200B), so had none to widen to."""

    count: int = 0
    dropped: int = 0
    examples: tuple[str, ...] = ()


class LoadReport(_Record):
    """Every repair or skip of a load is counted here, none is silent; misalignments are kept per split."""

    source: str
    documents: dict[str, int]
    spans_trimmed: int = 0
    duplicates_dropped: int = 0
    overlaps_dropped: int = 0
    tags_repaired: int = 0
    empty_skipped: int = 0
    rejected_skipped: int = 0  # Prodigy's records answered reject or ignore
    triggers_skipped: int = 0  # brat's event triggers: `T` lines that name no entity
    tags_converted: int = 0
    scheme: str | None = None
    misaligned: dict[str, MisalignedSpans] = {}
    files_unread: dict[str, str] = {}  # a folder's file with a split word in its name, and the name that reads it

    def lines(self, *, whole: bool = False) -> list[str]:
        """Human-readable summary lines, one per non-zero count, then each split's misaligned examples; `whole`: the
        data is one split used whole (a data file evaluated), not named as the split that loading made it."""
        counts = ", ".join(f"{name}: {count}" for name, count in self.documents.items())
        if len(self.documents) == 1:  # `train: 1 document`; the data evaluated whole: `1 document`
            [(name, count)] = self.documents.items()
            counts = counted(count, "document") if whole else f"{name}: {counted(count, 'document')}"
        else:
            counts += " documents"
        lines = [f"{self.source}: {counts}"]
        notes = {
            "spans_trimmed": ("span", "had surrounding whitespace (or invisible marks) trimmed"),
            "duplicates_dropped": ("duplicate span", "dropped (same start, end and label)"),
            "overlaps_dropped": ("overlapping span", "dropped (keep_longest)"),
            "tags_repaired": ("stray I- tag", "read as B- (IOB1 to IOB2)"),
            "empty_skipped": ("empty document", "skipped"),
            "rejected_skipped": ("record", "answered reject or ignore skipped"),
            "triggers_skipped": ("event trigger", "skipped (brat T lines an E line names first)"),
            "tags_converted": (f"{self.scheme} tag", "converted to IOB2"),
        }
        lines += [
            f"{counted(getattr(self, key), noun)} {text}" for key, (noun, text) in notes.items() if getattr(self, key)
        ]
        lines += [
            f"{file} not read: beside files named by a split alone, a split word inside a name is not read; rename it "
            f"{name} to read it"
            for file, name in self.files_unread.items()
        ]
        for split, found in self.misaligned.items():
            if found.count:
                outcome = f"{found.count - found.dropped} expanded to words, {found.dropped} covering no word dropped"
                outcome = outcome if found.dropped else "expanded to words"
                spans = counted(found.count, "span" if whole else f"{split} span")
                lines.append(f"{spans} did not start and end on word edges ({outcome})")
                lines += [f"  {example}" for example in found.examples]
        return lines
