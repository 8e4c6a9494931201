"""Properties of sliding windows: windows never exceed `max_length` and leave no word out, however long the document
or its words; and for documents that fit in one window, the windowed, batched and merged predictions equal those of
one plain forward pass of the tiny BERT over the document alone."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.documents import Document, iob2_tag_names
from training.config import TrainingConfig
from training.core.features import Collator, encode_documents, window_readings
from training.core.windowing import merge_word_predictions

TAGS = iob2_tag_names(("PER", "ORG", "LOC"))
SETTINGS = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
# Words as the tiny BERT's vocabulary sees them: known words, unknown ones that split into many pieces, punctuation.
WORDS = st.one_of(
    st.sampled_from(["Anna", "Smith", "works", "at", "Siemens", "in", "Warsaw", "engineer", "data", "Python"]),
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=25),
    st.sampled_from([".", ",", "(", ")", "-", "@", "O'Brien", "e-mail", "2019-2021", "anna@example.com"]),
)


def document(index: int, words: Sequence[str]) -> Document:
    return Document.from_words(f"doc-{index}", list(words), ["O"] * len(words))


@pytest.fixture(scope="module")
def tiny_bert(single_thread: None) -> tuple[Any, Any]:
    """A freshly initialised tiny BERT for PER/ORG/LOC and its tokenizer, in eval mode."""
    from training.core.model import create_model_and_tokenizer

    config = TrainingConfig.model_validate(
        {
            "model": {"name": "tiny-bert", "backbone": "tiny-bert"},
            "data": {"name": "ner", "labels": ["PER", "ORG", "LOC"]},
        }
    )
    model, tokenizer = create_model_and_tokenizer(config)
    return model.eval(), tokenizer


@settings(max_examples=200, **SETTINGS)
@given(
    documents=st.lists(st.lists(WORDS, min_size=1, max_size=120), min_size=1, max_size=4),
    max_length=st.integers(16, 64),
    stride_share=st.floats(0.0, 0.49),
)
def test_windows_fit_and_cover_every_word(
    tiny_bert: tuple[Any, Any], documents: list[list[str]], max_length: int, stride_share: float
) -> None:
    """Any document, window length and stride: every window fits, every word's first sub-token is in some window."""
    _, tokenizer = tiny_bert
    docs = [document(index, words) for index, words in enumerate(documents)]
    stride = int(max_length * stride_share)  # below half of max_length, as the config requires
    encoded = encode_documents(docs, tokenizer, TAGS, max_length, stride)
    assert encoded.truncated_words == 0
    for index, doc in enumerate(docs):
        windows = [window for window in encoded.windows if window.doc_index == index]
        assert all(window.length <= max_length for window in windows)
        labelled = {
            word
            for window in windows
            for word, label in zip(window.word_ids, window.labels, strict=True)
            if label != -100
        }
        assert labelled == set(range(len(doc.words)))


@settings(max_examples=60, **SETTINGS)
@given(documents=st.lists(st.lists(WORDS, min_size=1, max_size=40), min_size=1, max_size=5))
def test_windowed_predictions_equal_a_plain_forward_pass(
    tiny_bert: tuple[Any, Any], documents: list[list[str]]
) -> None:
    """Documents that fit one window: merged predictions (batched, padded) equal the model on each document alone."""
    model, tokenizer = tiny_bert
    docs = [document(index, words) for index, words in enumerate(documents)]
    encoded = encode_documents(docs, tokenizer, TAGS, max_length=512, stride=32)
    assert len(encoded.windows) == len(docs)
    merged = merge_word_predictions(docs, encoded.windows, window_readings(model, encoded.windows, Collator(0), 3))
    for index, doc in enumerate(docs):
        words = [word.text for word in doc.words]  # a token holding punctuation (`O'Brien`) is several words
        inputs = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            probabilities = model(**inputs).logits[0].softmax(-1)
        word_ids = inputs.word_ids()
        first = [word_ids.index(word) for word in range(len(words))]
        plain = probabilities[first]
        tag_ids, scores = merged[index]
        chosen = plain[torch.arange(len(words)), torch.as_tensor(tag_ids)]
        assert torch.all(chosen >= plain.max(-1).values - 1e-5), "a different tag than the plain forward pass"
        assert torch.allclose(torch.as_tensor(scores), plain.max(-1).values, atol=1e-5)
