"""Word-level evaluation with sliding windows (`training.core.evaluator`)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from data.documents import Document
from training.common.errors import ConfigError, InputError
from training.core.evaluator import EvaluationResult, evaluate_model
from training.core.features import Collator, encode_documents
from training.core.model import save_model
from training.core.predictor import Predictor
from training.core.windowing import Windowing

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
RATIOS = ("entity_precision", "entity_recall", "entity_f1", "macro_precision", "macro_recall", "macro_f1")


def fit(model: torch.nn.Module, tokenizer, documents, epochs: int = 12) -> torch.nn.Module:
    """A short plain training loop, enough for the tiny BERT to learn the tags of a few sentences by heart."""
    windows = encode_documents(documents, tokenizer, TAGS, max_length=64, stride=8).windows
    collator = Collator(tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for batch_indices in torch.randperm(len(windows), generator=generator).split(16):
            loss = model(**collator([windows[i] for i in batch_indices])).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return model


@pytest.fixture(scope="module")
def trained(tiny_tokenizer_and_model, ner_documents):
    """(tokenizer, model) fitted on the corpus sentences."""
    tokenizer, model = tiny_tokenizer_and_model()
    torch.manual_seed(0)
    return tokenizer, fit(model, tokenizer, ner_documents)


def long_document(documents) -> Document:
    return Document.from_words(
        "long", [w.text for doc in documents for w in doc.words], [t for doc in documents for t in doc.tags]
    )


def test_a_model_that_learnt_the_data_scores_high_and_every_metric_is_a_ratio(trained, ner_documents):
    tokenizer, model = trained

    result = evaluate_model(model, tokenizer, ner_documents)

    assert isinstance(result, EvaluationResult)
    assert result.num_documents == 40 and result.truncated_words == 0
    assert all(0.0 <= result.metrics[key] <= 1.0 for key in (*RATIOS, "token_accuracy"))
    assert result.metrics["entity_f1"] > 0.8 and result.metrics["token_accuracy"] > 0.9
    assert set(result.metrics["per_entity"]) == {"PER", "ORG", "LOC"}
    assert [len(tags) for tags in result.predictions] == [len(doc.words) for doc in ner_documents]
    assert all(tag in TAGS for tags in result.predictions for tag in tags)


def test_long_documents_are_scored_through_overlapping_windows(trained, ner_documents):
    tokenizer, model = trained
    documents = [long_document(ner_documents[:20]), long_document(ner_documents[20:])]

    windowed = evaluate_model(model, tokenizer, documents, max_length=16, stride=4, batch_size=4)

    assert windowed.num_documents == 2 and windowed.truncated_words == 0
    assert [len(tags) for tags in windowed.predictions] == [len(doc.words) for doc in documents]
    assert all(0.0 <= windowed.metrics[key] <= 1.0 for key in RATIOS)
    gold_entities = sum(row["support"] for row in windowed.metrics["per_entity"].values())
    assert gold_entities == sum(len(doc.spans) for doc in documents)


def test_an_untrained_model_gets_valid_low_scores(tiny_tokenizer_and_model, ner_documents):
    tokenizer, model = tiny_tokenizer_and_model()

    result = evaluate_model(model, tokenizer, ner_documents, max_length=32, stride=8)

    assert all(0.0 <= result.metrics[key] <= 1.0 for key in (*RATIOS, "token_accuracy"))
    assert result.metrics["entity_f1"] < 0.5


def test_a_saved_model_folder_evaluates_like_the_model_in_memory(trained, ner_documents, tmp_path):
    tokenizer, model = trained
    folder = save_model(model, tokenizer, tmp_path / "model")

    from_folder = evaluate_model(folder, None, ner_documents[:10], device="cpu")

    assert from_folder == evaluate_model(model, tokenizer, ner_documents[:10])
    assert json.loads(json.dumps(from_folder.to_dict())) == from_folder.to_dict()
    assert set(from_folder.to_dict()) == {"metrics", "predictions", "truncated_words", "num_documents", "precision"}


def test_a_model_in_memory_evaluates_and_predicts_with_the_windows_it_records(trained, ner_documents):
    # The object ignored the ner_windowing that create_model_and_tokenizer records, where its saved folder used it:
    # the model scored 0.013 in memory and 0.025 from its folder (ModelConfig's 256/32 windows against 128/32).
    tokenizer, model = trained
    documents = [long_document(ner_documents)]
    own = Windowing.read_from(model.config)  # the fixture's model, shared: put back after
    assert own is not None
    try:
        Windowing(24, 8).write_to(model.config)
        assert Predictor(model, tokenizer).windowing == Windowing(24, 8)
        assert Predictor(model, tokenizer, max_length=32).windowing == Windowing(32, 8)  # given: kept
        # A max_length alone that the kept stride does not fit was refused only at the first call, naming the stride.
        with pytest.raises(InputError, match=r"^max_length 16: the stride it would keep \(8\) must be below half"):
            Predictor(model, tokenizer, max_length=16)
        assert Predictor(model, tokenizer, max_length=16, stride=4).windowing == Windowing(16, 4)
        with pytest.raises(ConfigError, match=r"^window settings: max_length: expected greater than or equal to 16"):
            Predictor(model, tokenizer, max_length=0)  # it said to give a stride too, which a second error refused
        assert evaluate_model(model, tokenizer, documents) == evaluate_model(
            model, tokenizer, documents, max_length=24, stride=8
        )
        Windowing(1024, 8).write_to(model.config)  # scored with it: refused by the model's position limit
        with pytest.raises(ConfigError, match=r"^model.max_length: 1024 is above the backbone's position limit"):
            evaluate_model(model, tokenizer, documents)
    finally:
        own.write_to(model.config)


def test_a_model_without_its_tokenizer_is_an_input_error(trained, ner_documents):
    with pytest.raises(InputError, match=r"tokenizer: missing; pass the model's tokenizer or a saved model folder"):
        evaluate_model(trained[1], None, ner_documents)
    with pytest.raises(InputError, match=r"^model: expected a PreTrainedModel or the path of a saved model folder"):
        evaluate_model(None, None, ner_documents)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^tokenizer: expected the model's PreTrainedTokenizerBase, got str 'model/'"):
        evaluate_model(trained[1], "model/", ner_documents)  # type: ignore[arg-type]


def test_a_run_s_model_folder_evaluates_with_the_run_s_window_settings(trained, ner_documents, tiny_config, tmp_path):
    tokenizer, model = trained
    folder = save_model(model, tokenizer, tmp_path / "run" / "model")
    run_config = tiny_config.with_values({"model.max_length": 16, "model.stride": 4})
    (tmp_path / "run" / "config.yaml").write_text(run_config.to_yaml(), encoding="utf-8")

    from_run = evaluate_model(folder, None, ner_documents[:10])

    assert from_run == evaluate_model(model, tokenizer, ner_documents[:10], max_length=16, stride=4)
    assert from_run != evaluate_model(model, tokenizer, ner_documents[:10])  # the defaults window differently
    given = evaluate_model(folder, None, ner_documents[:10], max_length=32, stride=4)
    assert given == evaluate_model(model, tokenizer, ner_documents[:10], max_length=32, stride=4)


def test_the_model_folder_named_from_inside_it_keeps_the_run_s_window_settings(
    trained, ner_documents, tiny_config, tmp_path, monkeypatch
):
    # `.` inside run/model has `.` as its parent: the run's config was not found and the defaults windowed instead
    tokenizer, model = trained
    folder = save_model(model, tokenizer, tmp_path / "run" / "model")
    run_config = tiny_config.with_values({"model.max_length": 16, "model.stride": 4})
    (tmp_path / "run" / "config.yaml").write_text(run_config.to_yaml(), encoding="utf-8")
    monkeypatch.chdir(folder)

    assert evaluate_model(".", None, ner_documents[:10]) == evaluate_model(folder, None, ner_documents[:10])


@pytest.mark.parametrize("tag_names", [("O", "B-PER", "I-PER"), ("O", "B-PER", "I-PER") * 3])
def test_tag_names_that_do_not_match_the_model_labels_are_an_input_error(
    tiny_tokenizer_and_model, ner_documents, tag_names
):
    tokenizer, model = tiny_tokenizer_and_model()
    with pytest.raises(InputError, match=rf"^tag_names: {len(tag_names)} tags for a model with 7 labels$"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=tag_names)


@pytest.mark.parametrize(
    ("tag_names", "shown"), [(5, "int 5"), ("O", "str 'O'"), (dict(enumerate(TAGS)), r"dict \{0: 'O', 1: 'B-PER'")]
)
def test_tag_names_not_in_a_list_are_an_input_error_naming_them(
    tiny_tokenizer_and_model, ner_documents, tag_names, shown
):
    # 5 failed as a TypeError; a string was read letter by letter, a model's id2label as its ids (0, 1, ...)
    tokenizer, model = tiny_tokenizer_and_model()
    with pytest.raises(InputError, match=rf"^tag_names: expected a list of tag names such as \['O', .*, got {shown}"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=tag_names)


def test_the_model_s_tags_in_another_order_are_an_input_error(tiny_tokenizer_and_model, ner_documents):
    # Tag names by the data's order of types read each predicted id as another tag: the scores of nonsense, silently
    tokenizer, model = tiny_tokenizer_and_model()
    reordered = ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    expected = (
        f"tag_names: {list(reordered)} put the model's tags at other ids ('B-LOC' at 1, the model's at 5); its "
        f"id2label has {list(TAGS)}; omit tag_names to use the model's"
    )
    with pytest.raises(InputError, match=f"^{re.escape(expected)}$"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=reordered)
    # A reorder beside a renaming passed: the model's tag names that stay still sit at other ids.
    renamed = ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PERSON", "I-PERSON")
    with pytest.raises(InputError, match=r"^tag_names: .* \('B-LOC' at 1, the model's at 5\)"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=renamed)
    assert evaluate_model(model, tokenizer, ner_documents[:2], tag_names=TAGS) == evaluate_model(
        model, tokenizer, ner_documents[:2]
    )


def test_a_device_torch_does_not_know_is_an_input_error_naming_it(tiny_tokenizer_and_model, ner_documents):
    tokenizer, model = tiny_tokenizer_and_model()
    with pytest.raises(InputError, match=r"^device: 'gpu' is not a device; expected cpu"):
        evaluate_model(model, tokenizer, ner_documents[:2], device="gpu")  # torch's RuntimeError named no argument


def test_documents_are_read_once_and_anything_else_is_an_input_error_naming_it(trained, ner_documents):
    tokenizer, model = trained
    given = evaluate_model(model, tokenizer, (document for document in ner_documents[:3]))  # a generator had no len()
    assert given == evaluate_model(model, tokenizer, ner_documents[:3])
    expected = r"expected Documents \(load_dataset\(path\)\[split\] holds them\)"
    with pytest.raises(InputError, match=rf"^documents\[1\]: {expected}, got str 'John Smith'; texts without tags"):
        evaluate_model(model, tokenizer, [ner_documents[0], "John Smith"])  # an AttributeError named no document
    with pytest.raises(InputError, match=rf"^documents: {expected}, got one Document; pass \[document\]$"):
        evaluate_model(model, tokenizer, ner_documents[0])
    with pytest.raises(InputError, match=rf"^documents: empty; {expected}$"):
        evaluate_model(model, tokenizer, [])  # it scored nothing as an F1 of 0.0
    with pytest.raises(InputError, match=rf"^documents: {expected}, got NoneType None$"):
        evaluate_model(model, tokenizer, None)  # 'NoneType' object is not iterable
    split_names = r"got a mapping of \['a'\]; pass one split, e.g. \['test'\]$"
    with pytest.raises(InputError, match=rf"^documents: {expected}, {split_names}"):
        evaluate_model(model, tokenizer, {"a": ner_documents[:1]})  # "documents[0]: ... got str 'a'"
