"""Labelled text for named-entity recognition: documents, formats, loading, splits and a corpus generator."""

from typing import TYPE_CHECKING

from training.common.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "Dataset": "data.loaders",
        "Document": "data.documents",
        "LoadReport": "data.report",
        "Span": "data.documents",
        "Word": "data.segmentation",
        "hold_out": "data.splits",
        "load_dataset": "data.loaders",
        "split_words": "data.segmentation",
        "train_test_split": "data.splits",
    },
)

if TYPE_CHECKING:
    from data.documents import Document, Span
    from data.loaders import Dataset, load_dataset
    from data.report import LoadReport
    from data.segmentation import Word, split_words
    from data.splits import hold_out, train_test_split
