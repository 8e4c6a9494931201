"""One prediction pipeline: evaluation scores exactly the entities `predict` returns (`training.core.pipeline`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.documents import Document, Span, Word, split_words
from training.config.schema import ModelConfig
from training.core.evaluator import evaluate_model
from training.core.features import encode_documents
from training.core.pipeline import Entity, Windowing, predict_documents, untagged_document
from training.core.predictor import Predictor

LABELS = ("PER", "ORG", "LOC")
VOCABULARY = ("anna", "smith", "works", "at", "google", "in", "london", "the", "new", "office", ".", ",", "-", "'s")


def scrambled(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A classification head with large random weights: the untrained model then predicts varied tags, stray
    `I-` runs included."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=generator) * 3)
    return model


def biased(model: torch.nn.Module, tag: str) -> torch.nn.Module:
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[model.config.label2id[tag]] = 20.0
    return model


@pytest.fixture(scope="module")
def predictor(tiny_tokenizer_and_model) -> Predictor:
    tokenizer, model = tiny_tokenizer_and_model(LABELS)
    return Predictor(scrambled(model), tokenizer, max_length=24, stride=4, device="cpu")


def spans(entities: Sequence[Entity]) -> list[tuple[int, int, str, str]]:
    return [(entity.start, entity.end, entity.label, entity.text) for entity in entities]


def from_entities(index: int, text: str, spans: list[tuple[int, int, str]]) -> Document:
    return Document.from_spans(f"d{index}", text, tuple(Span(*span) for span in spans))


def test_span_f1_equals_entity_f1_when_segmentation_is_aligned(predictor: Predictor, ner_documents) -> None:
    texts = [document.text for document in ner_documents]
    found = predictor(texts)
    # Gold: what the model found in every other text, the corpus' own spans elsewhere, so scores lie inside (0, 1).
    documents = [
        from_entities(i, text, [(e.start, e.end, e.label) for e in found[i]]) if i % 2 else ner_documents[i]
        for i, text in enumerate(texts)
    ]
    assert all(untagged_document(0, doc.text).words == doc.words for doc in documents)

    metrics = evaluate_model(predictor.model, predictor.tokenizer, documents, max_length=24, stride=4).metrics

    assert 0.0 < metrics["entity_f1"] < 1.0 and metrics["repaired_entities"] > 0
    assert metrics["span_f1"] == metrics["entity_f1"]
    assert metrics["span_precision"] == metrics["entity_precision"]
    assert metrics["span_recall"] == metrics["entity_recall"]


def test_a_run_of_inside_tags_is_the_same_entity_for_evaluation_and_predict(tiny_tokenizer_and_model) -> None:
    tokenizer, model = tiny_tokenizer_and_model(LABELS)
    text = "anna works in the new office"
    document = from_entities(0, text, [(0, len(text), "LOC")])
    model = biased(model, "I-LOC")  # every word I-LOC: `O`-less stray run from the first word

    ((entity,),) = Predictor(model, tokenizer, device="cpu")([text])
    metrics = evaluate_model(model, tokenizer, [document]).metrics

    assert (entity.start, entity.end, entity.label) == (0, len(text), "LOC")
    assert metrics["entity_f1"] == metrics["span_f1"] == 1.0


def test_span_f1_scores_the_words_predict_cuts_not_the_words_of_the_document(tiny_tokenizer_and_model) -> None:
    """A document whose words differ from `predict`'s segmentation is predicted again from its raw text."""
    tokenizer, model = tiny_tokenizer_and_model(LABELS)
    one_word = Document("d", "new office", (Word("new office", 0, 10),), ("B-LOC",), (Span(0, 10, "LOC"),))

    metrics = evaluate_model(biased(model, "B-LOC"), tokenizer, [one_word]).metrics

    assert len(split_words(one_word.text)) == 2
    assert metrics["entity_f1"] == 1.0  # one word, tagged B-LOC
    assert metrics["span_f1"] == 0.0  # predict returns "new" and "office", two entities, neither the gold one


def test_window_settings_default_to_the_model_s_record_else_the_model_config(
    tiny_tokenizer_and_model, tiny_config
) -> None:
    tokenizer, model = tiny_tokenizer_and_model(LABELS)
    assert Predictor(model, tokenizer, device="cpu").windowing == Windowing.of(tiny_config.model)  # recorded: 64/8
    del model.config.ner_windowing  # a model trained elsewhere records none
    defaults = ModelConfig(name="m", backbone="b")

    predictor = Predictor(model, tokenizer, device="cpu")

    assert (predictor.max_length, predictor.stride) == (defaults.max_length, defaults.stride)
    assert Windowing.of(defaults, stride=5) == Windowing(defaults.max_length, 5)


def test_documents_predicted_together_equal_each_document_predicted_alone(predictor: Predictor, ner_documents) -> None:
    """Windows of all documents share batches (sorted by length across documents): no tag, score or entity moves."""
    long_text = " ".join(document.text for document in ner_documents[:12])
    texts = [
        long_text,
        "",
        "anna",
        *(d.text for d in ner_documents[12:20]),
        " ".join(d.text for d in ner_documents[20:23]),
    ]
    documents = [untagged_document(index, text) for index, text in enumerate(texts)]
    windowing = Windowing(24, 4)
    windows = encode_documents(documents[:1], predictor.tokenizer, predictor.tag_names, 24, 4).windows
    model, tokenizer, names = predictor.model, predictor.tokenizer, predictor.tag_names

    together = predict_documents(model, tokenizer, documents, names, windowing, batch_size=5)
    alone = [
        predict_documents(model, tokenizer, [doc], names, windowing, batch_size=1).documents[0] for doc in documents
    ]

    assert len(windows) > 5  # the long text is merged from many overlapping windows
    assert sum(len(found.entities) for found in alone) > 10
    for index, expected in enumerate(alone):
        found = together.documents[index]
        assert found.tags == expected.tags
        assert spans(found.entities) == spans(expected.entities)
        np.testing.assert_allclose(found.scores, expected.scores, atol=1e-5)
        np.testing.assert_allclose([e.score for e in found.entities], [e.score for e in expected.entities], atol=1e-5)
    assert [spans(entities) for entities in predictor(texts)] == [spans(found.entities) for found in alone]


def test_bf16_autocast_predicts_what_fp32_predicts_within_a_tolerance(predictor: Predictor, ner_documents) -> None:
    model, tokenizer = predictor.model, predictor.tokenizer
    texts = [document.text for document in ner_documents]
    mixed = Predictor(model, tokenizer, max_length=24, stride=4, device="cpu", precision="bf16")
    documents = [untagged_document(index, text) for index, text in enumerate(texts)]
    windowing = Windowing(24, 4)

    exact = predict_documents(model, tokenizer, documents, predictor.tag_names, windowing).documents
    bf16 = predict_documents(
        model, tokenizer, documents, predictor.tag_names, windowing, autocast_dtype=torch.bfloat16
    ).documents

    agree = [a == b for index in exact for a, b in zip(exact[index].tags, bf16[index].tags, strict=True)]
    assert sum(agree) / len(agree) > 0.95
    for index in exact:
        np.testing.assert_allclose(exact[index].scores, bf16[index].scores, atol=0.05)
    assert [spans(entities) for entities in mixed(texts)] == [
        spans(bf16[index].entities) for index in range(len(texts))
    ]
    f1 = evaluate_model(model, tokenizer, ner_documents, max_length=24, stride=4).metrics["entity_f1"]
    mixed_f1 = evaluate_model(model, tokenizer, ner_documents, max_length=24, stride=4, precision="bf16").metrics[
        "entity_f1"
    ]
    assert mixed_f1 == pytest.approx(f1, abs=0.05)


@st.composite
def aligned_documents(draw: st.DrawFn) -> list[Document]:
    """Texts of random words, with random spans whose edges fall on the words `predict` cuts."""
    documents = []
    for index in range(draw(st.integers(1, 4))):
        text = " ".join(draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=30)))
        words = split_words(text)
        spans, position = [], 0
        while position < len(words):
            position += draw(st.integers(0, 3))
            length = draw(st.integers(1, 3))
            if position + length > len(words):
                break
            label = draw(st.sampled_from(LABELS))
            spans.append((words[position].start, words[position + length - 1].end, label))
            position += length
        documents.append(from_entities(index, text, spans))
    return documents


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=aligned_documents())
def test_property_evaluation_entity_f1_equals_span_f1_of_predict_output(
    predictor: Predictor, documents: list[Document]
) -> None:
    metrics = evaluate_model(predictor.model, predictor.tokenizer, documents, max_length=24, stride=4).metrics
    found = predictor([document.text for document in documents])

    gold = {(i, span.start, span.end, span.label) for i, doc in enumerate(documents) for span in doc.spans}
    predicted = {(i, e.start, e.end, e.label) for i, entities in enumerate(found) for e in entities}
    hits = len(gold & predicted)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(gold) if gold else 0.0
    assert metrics["span_precision"] == pytest.approx(precision) and metrics["span_recall"] == pytest.approx(recall)
    assert metrics["entity_f1"] == pytest.approx(metrics["span_f1"])
    assert metrics["entity_precision"] == pytest.approx(precision)
