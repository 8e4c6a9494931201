"""The resume generator: seeded corpora whose three splits all hold documents."""

from __future__ import annotations

import pytest

from data.generate import generate_corpus


@pytest.mark.parametrize(("documents", "sizes"), [(3, [1, 1, 1]), (4, [2, 1, 1]), (5, [3, 1, 1]), (20, [14, 3, 3])])
def test_every_split_holds_a_document(documents: int, sizes: list[int]) -> None:
    """The smallest corpora allowed left `test` empty, which `load_dataset` then refused."""
    corpus = generate_corpus(documents, seed=1, max_sentences=2)

    assert [len(corpus[split]) for split in ("train", "validation", "test")] == sizes
