"""Windows, label alignment, padding, labelled-position readings and per-word merging of `training.core.features`."""

from __future__ import annotations

import logging.handlers
import os

import numpy as np
import pytest
import torch
import transformers

from data.documents import Document, iob2_tag_names
from training.common.errors import DataError, InputError
from training.core.features import (
    Collator,
    EncodedSplit,
    Window,
    encode_cached,
    encode_documents,
    window_readings,
)
from training.core.windowing import IGNORE_INDEX, Readings, merge_word_predictions

TAGS = iob2_tag_names(("PER", "ORG", "LOC"))
# 20 words that are single tokens of the tiny vocabulary, with a two-word person at words 13-14.
SINGLE_TOKEN_WORDS = "the team of the new office in london said that they will work with john smith at google this year"


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_and_model):
    return tiny_tokenizer_and_model()[0]


@pytest.fixture(scope="module")
def model(tiny_tokenizer_and_model):
    return tiny_tokenizer_and_model()[1]


def single_token_document() -> Document:
    words = SINGLE_TOKEN_WORDS.split()
    tags = ["O"] * len(words)
    tags[13:15] = ["B-PER", "I-PER"]
    tags[16] = "B-ORG"
    return Document.from_words("single", words, tags)


def long_document(documents: tuple[Document, ...]) -> Document:
    """All sentences of the corpus as one document."""
    words = [word.text for doc in documents for word in doc.words]
    tags = [tag for doc in documents for tag in doc.tags]
    return Document.from_words("long", words, tags)


def first_subtokens(window: Window) -> dict[int, int]:
    """Word index -> tag id, read where each word's first sub-token is in the window."""
    return {w: label for w, label in zip(window.word_ids, window.labels, strict=True) if label != IGNORE_INDEX}


def test_a_word_split_into_sub_tokens_carries_its_tag_on_the_first_one(tokenizer, ner_documents):
    document = ner_documents[0]  # Anna Kowalczykowski joined Siemens in Warsaw .
    (window,) = encode_documents([document], tokenizer, TAGS, max_length=64, stride=8).windows

    assert window.input_ids[0] == tokenizer.cls_token_id and window.input_ids[-1] == tokenizer.sep_token_id
    assert window.word_ids[0] is None and window.word_ids[-1] is None
    assert window.labels[0] == window.labels[-1] == IGNORE_INDEX
    surname = [position for position, word in enumerate(window.word_ids) if word == 1]
    assert document.words[1].text == "Kowalczykowski" and len(surname) > 2
    assert window.labels[surname[0]] == TAGS.index("I-PER")
    assert [window.labels[position] for position in surname[1:]] == [IGNORE_INDEX] * (len(surname) - 1)
    assert tokenizer.decode([window.input_ids[p] for p in surname]).replace(" ", "") == "kowalczykowski"
    assert first_subtokens(window) == {index: TAGS.index(tag) for index, tag in enumerate(document.tags)}
    assert window.length == len(window.input_ids) == len(window.labels) == len(window.word_ids)


def test_a_word_without_sub_tokens_becomes_the_unknown_token(tokenizer):
    document = Document.from_words("zero", ["Anna", "\ufffd", "left"], ["B-PER", "O", "O"])  # a word BERT drops
    assert tokenizer(["\ufffd"], is_split_into_words=True, add_special_tokens=False)["input_ids"] == []

    (window,) = encode_documents([document], tokenizer, TAGS, max_length=16, stride=2).windows

    assert window.word_ids[1:-1] == (0, 1, 2)
    assert window.input_ids[2] == tokenizer.unk_token_id
    assert window.labels[1:-1] == (TAGS.index("B-PER"), 0, 0)


def test_an_entity_across_a_window_edge_is_whole_in_the_overlapping_window(tokenizer):
    document = single_token_document()

    encoded = encode_documents([document], tokenizer, TAGS, max_length=16, stride=4)

    first, second = encoded.windows
    assert first.word_ids[1:-1] == tuple(range(14)) and second.word_ids[1:-1] == tuple(range(10, 20))
    assert 13 in first_subtokens(first) and 14 not in first_subtokens(first)
    assert first_subtokens(second)[13] == TAGS.index("B-PER") and first_subtokens(second)[14] == TAGS.index("I-PER")
    assert encoded.truncated_words == 0


@pytest.mark.parametrize(("max_length", "stride"), [(16, 4), (16, 0), (24, 10), (40, 8), (512, 32)])
def test_windows_cover_every_word_within_the_length_limit(tokenizer, ner_documents, max_length, stride):
    documents = [long_document(ner_documents), *ner_documents[:5]]

    encoded = encode_documents(documents, tokenizer, TAGS, max_length=max_length, stride=stride)

    assert encoded.num_documents == len(documents) and encoded.truncated_words == 0
    assert all(window.length <= max_length for window in encoded.windows)
    for doc_index, document in enumerate(documents):
        windows = [window for window in encoded.windows if window.doc_index == doc_index]
        seen: dict[int, int] = {}
        for window in windows:
            labelled = first_subtokens(window)
            assert all(seen.get(word, label) == label for word, label in labelled.items())
            seen.update(labelled)
            # A window starts inside a word only when the word before its start is longer than a window.
            if window.labels[1] == IGNORE_INDEX:
                cut_word = window.word_ids[1]
                assert len(tokenizer.tokenize(document.words[cut_word].text)) > max_length - 2
        assert seen == {index: TAGS.index(tag) for index, tag in enumerate(document.tags)}


def test_a_word_longer_than_a_window_is_cut_but_still_labelled_once(tokenizer):
    document = Document.from_words("giant", ["Kowalczykowski" * 4, "left"], ["B-PER", "O"])

    encoded = encode_documents([document], tokenizer, TAGS, max_length=16, stride=4)

    assert len(encoded.windows) > 2 and all(window.length <= 16 for window in encoded.windows)
    labelled = [first_subtokens(window) for window in encoded.windows]
    assert labelled[0] == {0: TAGS.index("B-PER")}
    assert all(0 not in words for words in labelled[1:])
    assert labelled[-1] == {1: 0}


def test_documents_longer_than_the_model_limit_are_windowed_without_a_length_warning(
    tokenizer, ner_documents, monkeypatch
):
    monkeypatch.setattr(tokenizer, "model_max_length", 16)
    monkeypatch.setattr(tokenizer, "deprecation_warnings", {})  # the warning is given once per tokenizer
    warnings = logging.handlers.BufferingHandler(capacity=100)
    library = transformers.logging.get_logger()  # it logs to stderr, not through the root logger
    library.addHandler(warnings)
    try:
        encoded = encode_documents([long_document(ner_documents)], tokenizer, TAGS, max_length=16, stride=4)
    finally:
        library.removeHandler(warnings)

    assert len(encoded.windows) > 2
    assert [record.getMessage() for record in warnings.buffer] == []


def test_empty_documents_get_no_windows_but_are_counted(tokenizer, ner_documents):
    empty = Document.from_spans("empty", "", ())

    encoded = encode_documents([empty, ner_documents[0]], tokenizer, TAGS, max_length=64, stride=8)

    assert encoded.num_documents == 2 and [window.doc_index for window in encoded.windows] == [1]


def test_bad_lengths_and_unknown_tags_are_errors(tokenizer, ner_documents):
    with pytest.raises(InputError, match=r"max_length 2: no room for text beside 2 special tokens"):
        encode_documents(ner_documents, tokenizer, TAGS, max_length=2, stride=0)
    with pytest.raises(InputError, match=r"stride 14: expected 0 <= stride < 14 \(max_length minus special tokens\)"):
        encode_documents(ner_documents, tokenizer, TAGS, max_length=16, stride=14)
    with pytest.raises(DataError, match=r"document 'doc-0': tag 'B-PER' is not one of the model's tags \['O', 'B-X'"):
        encode_documents(ner_documents, tokenizer, iob2_tag_names(("X",)), max_length=16, stride=4)


def test_the_cache_returns_equal_features_and_rebuilds_a_corrupt_file(tokenizer, ner_documents, tmp_path):
    documents = [long_document(ner_documents), *ner_documents]
    fresh = encode_documents(documents, tokenizer, TAGS, max_length=24, stride=6)

    first = encode_cached(documents, tokenizer, TAGS, 24, 6, tmp_path, key_fingerprint="dataset:train")
    (cache_file,) = tmp_path.glob("features-*.npz")
    written = cache_file.stat().st_mtime_ns
    second = encode_cached(documents, tokenizer, TAGS, 24, 6, tmp_path, key_fingerprint="dataset:train")

    assert first == fresh and second == fresh
    assert isinstance(second, EncodedSplit) and cache_file.stat().st_mtime_ns == written
    with np.load(cache_file, allow_pickle=False) as archive:
        assert archive["input_ids"].dtype == np.int64

    for corrupt in (b"not a zip file", cache_file.read_bytes()[:200]):
        cache_file.write_bytes(corrupt)
        assert encode_cached(documents, tokenizer, TAGS, 24, 6, tmp_path, key_fingerprint="dataset:train") == fresh
        assert encode_cached(documents, tokenizer, TAGS, 24, 6, tmp_path, key_fingerprint="dataset:train") == fresh


def test_the_cache_key_follows_every_input(tokenizer, ner_documents, tmp_path):
    base = (ner_documents, tokenizer, TAGS, 24, 6, tmp_path, "dataset:train")
    encode_cached(*base)
    encode_cached(ner_documents[:10], tokenizer, TAGS, 24, 6, tmp_path, "dataset:train")
    encode_cached(ner_documents, tokenizer, TAGS, 32, 6, tmp_path, "dataset:train")
    encode_cached(ner_documents, tokenizer, TAGS, 24, 4, tmp_path, "dataset:train")
    encode_cached(
        ner_documents, tokenizer, iob2_tag_names(("PER", "ORG", "LOC", "MISC")), 24, 6, tmp_path, "dataset:train"
    )
    encode_cached(ner_documents, tokenizer, TAGS, 24, 6, tmp_path, "dataset:validation")

    assert len(list(tmp_path.glob("features-*.npz"))) == 6
    assert encode_cached(ner_documents[:10], tokenizer, TAGS, 24, 6, tmp_path, "dataset:train") == encode_documents(
        ner_documents[:10], tokenizer, TAGS, 24, 6
    )


def test_the_cache_removes_what_killed_writers_left_and_keeps_a_live_writers_file(tokenizer, ner_documents, tmp_path):
    from training.common.atomic import STALE_STAGING_S

    killed, live = tmp_path / ".features-0a.npz.k1.tmp", tmp_path / ".features-0b.npz.l1.tmp"
    for staging in (killed, live):
        staging.write_bytes(b"PK half an archive")
    when = killed.stat().st_mtime - STALE_STAGING_S - 60
    os.utime(killed, (when, when))

    encode_cached(ner_documents, tokenizer, TAGS, 24, 6, tmp_path, "dataset:train")

    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == [live.name]


def test_a_cache_hit_also_removes_what_a_writer_killed_mid_write_left(
    tokenizer, ner_documents, tmp_path, kill_9_mid_write
):
    from training.common.atomic import STALE_STAGING_S

    fresh = encode_cached(ner_documents, tokenizer, TAGS, 24, 6, tmp_path, "dataset:train")
    script = "from training.common.atomic import atomic_write_bytes\narchive = b'PK' * 2**24\n"
    script += f"while True:\n    atomic_write_bytes({str(tmp_path / 'features-0a.npz')!r}, archive)\n"
    left = kill_9_mid_write(script, tmp_path, ".features-0a.npz.*.tmp")
    when = left.stat().st_mtime - STALE_STAGING_S - 60  # killed over an hour ago
    os.utime(left, (when, when))

    assert encode_cached(ner_documents, tokenizer, TAGS, 24, 6, tmp_path, "dataset:train") == fresh
    assert not left.exists()


def test_the_collator_pads_dynamically():
    windows = [Window(0, (2, 5, 3), (-100, 1, -100), (None, 0, None)), Window(1, (2, 3), (-100, -100), (None, None))]

    batch = Collator(pad_token_id=0)(windows)
    padded = Collator(pad_token_id=0, pad_to_multiple_of=8)(windows)

    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]]
    assert all(tensor.dtype == torch.long for tensor in batch.values())
    assert padded["input_ids"].shape == (2, 8) and padded["labels"][0, 3:].tolist() == [-100] * 5


def test_window_readings_keep_order_and_do_not_depend_on_batching(tokenizer, model, ner_documents):
    encoded = encode_documents(ner_documents[:12], tokenizer, TAGS, max_length=16, stride=4)
    collator = Collator(tokenizer.pad_token_id)
    model.train()

    batched = window_readings(model, encoded.windows, collator, batch_size=8)
    one_by_one = window_readings(model, encoded.windows, collator, batch_size=1, device="cpu")

    assert model.training
    labelled = sum(label != IGNORE_INDEX for window in encoded.windows for label in window.labels)
    assert batched.tag_ids.shape == batched.scores.shape == batched.label_log_probs.shape == (labelled,)
    assert batched.scores.dtype == batched.label_log_probs.dtype == np.float32 and batched.tag_ids.dtype == np.int64
    assert batched.tag_ids.tolist() == one_by_one.tag_ids.tolist()
    np.testing.assert_allclose(batched.scores, one_by_one.scores, atol=1e-5)
    np.testing.assert_allclose(batched.label_log_probs, one_by_one.label_log_probs, atol=1e-5)


def test_the_loss_of_readings_is_the_cross_entropy_of_the_labelled_tokens(tokenizer, model, ner_documents):
    encoded = encode_documents(ner_documents[:6], tokenizer, TAGS, max_length=64, stride=8)
    batch = Collator(tokenizer.pad_token_id)(encoded.windows)

    readings = window_readings(model, encoded.windows, Collator(tokenizer.pad_token_id), batch_size=4)

    model.eval()
    with torch.no_grad():
        expected = model(**batch).loss.item() * int((batch["labels"] != IGNORE_INDEX).sum())
    assert readings.loss_sum == pytest.approx(expected, rel=1e-4)


def test_windowed_predictions_equal_whole_document_predictions_when_it_fits(tokenizer, model, ner_documents):
    documents = ner_documents[:6]
    encoded = encode_documents(documents, tokenizer, TAGS, max_length=64, stride=8)
    readings = window_readings(model, encoded.windows, Collator(tokenizer.pad_token_id), batch_size=4)

    merged = merge_word_predictions(documents, encoded.windows, readings)

    model.eval()
    for index, document in enumerate(documents):
        inputs = tokenizer([w.text for w in document.words], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            probabilities = model(**inputs).logits[0].softmax(-1).numpy()
        word_ids = inputs.word_ids()
        firsts = [word_ids.index(word) for word in range(len(document.words))]
        tag_ids, scores = merged[index]
        assert tag_ids.tolist() == probabilities[firsts].argmax(-1).tolist()
        np.testing.assert_allclose(scores, probabilities[firsts].max(-1), atol=1e-5)


def test_merging_takes_each_word_from_the_window_where_it_has_most_context(tokenizer):
    document = single_token_document()
    windows = encode_documents([document], tokenizer, TAGS, max_length=16, stride=4).windows
    # Window k predicts tag k + 1 everywhere, so each word's tag tells which window it was read from.
    counts = [sum(label != IGNORE_INDEX for label in window.labels) for window in windows]
    tag_ids = np.concatenate([np.full(count, k + 1) for k, count in enumerate(counts)])
    readings = Readings(tag_ids, np.full(len(tag_ids), 0.999, np.float32), np.zeros(len(tag_ids), np.float32))

    tag_ids, scores = merge_word_predictions([document], windows, readings)[0]

    # Overlap: words 10-13; word 10 and 11 sit further from the first window's edge, 12 and 13 from the second's.
    assert tag_ids.tolist() == [1] * 12 + [2] * 8
    assert scores.shape == (20,) and np.all(scores > 0.99)


def test_merged_predictions_cover_every_word_exactly_once(tokenizer, model, ner_documents):
    documents = [long_document(ner_documents), Document.from_spans("empty", "", ()), *ner_documents[:3]]
    encoded = encode_documents(documents, tokenizer, TAGS, max_length=16, stride=4)
    readings = window_readings(model, encoded.windows, Collator(tokenizer.pad_token_id), batch_size=16)

    merged = merge_word_predictions(documents, encoded.windows, readings)

    assert sorted(merged) == list(range(len(documents)))
    for index, document in enumerate(documents):
        tag_ids, scores = merged[index]
        assert tag_ids.shape == scores.shape == (len(document.words),)
        assert tag_ids.dtype == np.int64 and scores.dtype == np.float32
        assert np.all((scores > 0) & (scores <= 1)) and np.all((tag_ids >= 0) & (tag_ids < len(TAGS)))


def test_window_readings_under_bf16_autocast_are_float32_and_close(tokenizer, model, ner_documents):
    windows = encode_documents(ner_documents[:8], tokenizer, TAGS, max_length=32, stride=8).windows
    collator = Collator(tokenizer.pad_token_id)

    exact = window_readings(model, windows, collator, batch_size=4)
    mixed = window_readings(model, windows, collator, batch_size=4, device="cpu", autocast_dtype=torch.bfloat16)

    assert mixed.scores.dtype == mixed.label_log_probs.dtype == np.float32
    np.testing.assert_allclose(exact.scores, mixed.scores, atol=0.05)
    np.testing.assert_allclose(exact.label_log_probs, mixed.label_log_probs, atol=0.1)
