"""Texts to entity spans with character offsets (`training.core.predictor`, public as `training.core.predict`)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from data.documents import split_words
from training.common.errors import ConfigError, InputError
from training.config.schema import TrainingConfig
from training.config.validation import validate
from training.core.model import create_model_and_tokenizer, load_model, model_tag_names, save_model
from training.core.pipeline import predict_documents
from training.core.predictor import Entity, Predictor, predict
from training.core.windowing import Windowing, untagged_document

TEXTS = (
    "Anna Kowalczykowski joined Siemens in Warsaw.",
    "  Zoë   O'Brien (ACME-Corp) — e-mail: zoe@example.com ,2019 ",
    "",
    " ".join(["John Smith works at Google in London ."] * 12),
)


def biased(model: torch.nn.Module, tag: str) -> torch.nn.Module:
    """Make the untrained model predict `tag` for every word, so the spans it yields are known exactly."""
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[model.config.label2id[tag]] = 20.0
    return model


@pytest.fixture
def model_dir(tiny_tokenizer_and_model, tmp_path):
    tokenizer, model = tiny_tokenizer_and_model()
    return save_model(biased(model, "B-PER"), tokenizer, tmp_path / "run" / "model")


def test_every_word_tagged_b_gives_one_entity_per_word_at_its_offsets(model_dir):
    results = predict(model_dir, TEXTS)

    assert len(results) == len(TEXTS)
    for text, entities in zip(TEXTS, results, strict=True):
        words = split_words(text)
        assert [(e.start, e.end, e.text) for e in entities] == [(w.start, w.end, w.text) for w in words]
        assert all(e.label == "PER" and e.text == text[e.start : e.end] and 0.99 < e.score <= 1 for e in entities)
    assert results[2] == [] and len(results[3]) == 12 * 8


def test_a_run_of_i_tags_is_one_entity_from_the_first_to_the_last_word(tiny_tokenizer_and_model):
    tokenizer, model = tiny_tokenizer_and_model()
    predictor = Predictor(biased(model, "I-LOC"), tokenizer, max_length=16, stride=4, device="cpu")

    (entity,), none, (long_entity,) = predictor([TEXTS[1], "", TEXTS[3]])

    assert (entity.start, entity.end, entity.label) == (2, len(TEXTS[1].rstrip()), "LOC")
    assert entity.text == TEXTS[1].strip() and entity.text.endswith("2019")
    assert none == [] and long_entity.text == TEXTS[3]
    assert isinstance(entity, Entity) and isinstance(entity.score, float) and 0.99 < entity.score <= 1


def test_an_untrained_model_gives_well_formed_entities(tiny_tokenizer_and_model):
    tokenizer, model = tiny_tokenizer_and_model()

    results = Predictor(model, tokenizer, max_length=16, stride=4)(TEXTS)

    for text, entities in zip(TEXTS, results, strict=True):
        edges = {w.start for w in split_words(text)}, {w.end for w in split_words(text)}
        previous_end = 0
        for entity in entities:
            assert entity.start in edges[0] and entity.end in edges[1] and previous_end <= entity.start
            assert entity.text == text[entity.start : entity.end] and entity.label in ("PER", "ORG", "LOC")
            assert 0 < entity.score <= 1
            previous_end = entity.end


def test_window_settings_come_from_the_run_config_unless_given(model_dir, tiny_config):
    assert Predictor.from_folder(model_dir).windowing == Windowing(64, 8)  # the model's own record: no config.yaml

    run_config = tiny_config.with_values({"model.max_length": 24, "model.stride": 5})
    (model_dir.parent / "config.yaml").write_text(run_config.to_yaml(), encoding="utf-8")

    from_run = Predictor.from_folder(model_dir, batch_size=2)
    explicit = Predictor.from_folder(model_dir, stride=3)
    assert (from_run.max_length, from_run.stride, from_run.batch_size) == (24, 5, 2)
    assert (explicit.max_length, explicit.stride) == (24, 3)
    assert predict(model_dir, TEXTS[:2], batch_size=1) == from_run(TEXTS[:2])


@pytest.mark.parametrize("window", [{"max_length": 80}, {"max_length": 40, "stride": 6}], ids=["alone", "both"])
def test_a_predictor_tags_a_long_text_as_training_time_evaluation_does(tiny_config, ner_documents, tmp_path, window):
    # A max_length set alone kept the default stride unchecked in the config (40 tokens, stride 32: trained and
    # scored so), where Windowing.of, and a Predictor given max_length=40 or the run's folder, refused it.
    def config_of(**model: int) -> TrainingConfig:
        section = {"name": "tiny-bert", "backbone": "tiny-bert", **model}
        return validate(TrainingConfig, {**tiny_config.model_dump(), "model": section}, "tiny-bert.yaml")

    with pytest.raises(ConfigError, match=r"^tiny-bert.yaml: model.stride: must be below half of max_length \(40\)"):
        config_of(max_length=40)
    config = config_of(**window)
    torch.manual_seed(0)
    model, tokenizer = create_model_and_tokenizer(config)
    text = " ".join(document.text for document in ner_documents[:12])  # several windows of either length
    names = model_tag_names(model.config)
    evaluation = predict_documents(model, tokenizer, [untagged_document(0, text)], names, Windowing.of(config.model))
    folder = save_model(model, tokenizer, tmp_path / "run" / "model")
    (folder.parent / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")

    predictors = [
        Predictor(model, tokenizer, device="cpu"),
        Predictor(model, tokenizer, max_length=config.model.max_length, device="cpu"),
        Predictor.from_folder(folder, max_length=config.model.max_length),
    ]

    assert evaluation.documents[0].entities  # an untrained model: entities that move with the window edges
    for predictor in predictors:
        assert predictor.windowing == Windowing(config.model.max_length, config.model.stride)
        assert predictor([text]) == [list(evaluation.documents[0].entities)]
    # Windows no config takes were taken as given (stride 20 for 40 tokens, max_length 12).
    with pytest.raises(ConfigError, match=r"^window settings: stride: must be below half of max_length \(40\)"):
        Predictor(model, tokenizer, max_length=40, stride=20)
    with pytest.raises(ConfigError, match=r"^window settings: max_length: expected greater than or equal to 16"):
        Predictor.from_folder(folder, max_length=12, stride=2)


def test_a_model_folder_moved_away_from_its_run_keeps_the_window_settings_it_was_trained_with(
    tiny_tokenizer_and_model, tiny_config, tmp_path
):
    # Only the run's config.yaml held them: a copied model/ predicted, evaluated and exported with 256/32
    run_config = tiny_config.with_values({"model.max_length": 24, "model.stride": 5})
    model, tokenizer = create_model_and_tokenizer(run_config)
    save_model(model, tokenizer, tmp_path / "run" / "model")
    (tmp_path / "run" / "config.yaml").write_text(run_config.to_yaml(), encoding="utf-8")
    moved = shutil.copytree(tmp_path / "run" / "model", tmp_path / "elsewhere" / "model")

    assert json.loads((moved / "config.json").read_text())["ner_windowing"] == {"max_length": 24, "stride": 5}
    assert Predictor.from_folder(moved).windowing == Windowing(24, 5)
    assert Predictor.from_folder(moved, stride=3).windowing == Windowing(24, 3)


def test_a_model_trained_before_the_stride_rule_applied_to_a_default_stride_predicts_with_its_windows(
    model_dir, tmp_path
):
    # A max_length of 40 set alone kept stride 32, trained so and recorded: every Predictor of it, and evaluate_model,
    # was refused, even one given window settings of its own.
    model, tokenizer, _ = load_model(model_dir)
    model.config.ner_windowing = {"max_length": 40, "stride": 32}
    folder = save_model(model, tokenizer, tmp_path / "old" / "model")
    assert Predictor.from_folder(folder).windowing == Windowing(40, 32)
    assert Predictor.from_folder(folder, stride=16).windowing == Windowing(40, 16)
    with pytest.raises(ConfigError, match=r"^window settings: stride: must be below half of max_length \(40\)"):
        Predictor.from_folder(folder, stride=20)


def test_a_model_without_a_window_record_takes_the_defaults_and_a_damaged_record_is_refused(model_dir, tmp_path):
    model, tokenizer, _ = load_model(model_dir)
    del model.config.ner_windowing  # a model saved before models recorded their windows
    assert Predictor.from_folder(save_model(model, tokenizer, tmp_path / "old" / "model")).windowing == Windowing(
        256, 32
    )

    model.config.ner_windowing = {"max_length": 24}
    damaged = save_model(model, tokenizer, tmp_path / "damaged" / "model")
    with pytest.raises(InputError, match=rf"^{damaged}/config.json: ner_windowing is \{{'max_length': 24\}}; expected"):
        Predictor.from_folder(damaged)
    model.config.ner_windowing = {"max_length": "24", "stride": 5}
    with pytest.raises(InputError, match=r"config.json: ner_windowing is \{'max_length': '24', 'stride': 5\}; "):
        Predictor.from_folder(save_model(model, tokenizer, tmp_path / "text" / "model"))


def test_a_model_folder_named_from_inside_it_keeps_the_run_s_window_settings(model_dir, tiny_config, monkeypatch):
    # `.` inside run/model has `.` as its parent: the run's config was not found and the defaults windowed instead
    run_config = tiny_config.with_values({"model.max_length": 24, "model.stride": 5})
    (model_dir.parent / "config.yaml").write_text(run_config.to_yaml(), encoding="utf-8")
    monkeypatch.chdir(model_dir)

    assert Predictor.from_folder(".").windowing == Windowing(24, 5)


def test_the_public_predict_is_the_function_once_its_module_is_imported():
    """The module `training.core.predict` shadowed the public function of the same name as soon as anything imported
    it (`from training.core import Predictor` does): `predict(...)` raised "'module' object is not callable"."""
    from training.core import Predictor as public_predictor
    from training.core import predict as public_predict

    assert (public_predict, public_predictor) == (predict, Predictor)


def test_a_missing_tokenizer_is_an_input_error_before_the_first_call(tiny_tokenizer_and_model, model_dir):
    _, model = tiny_tokenizer_and_model()
    with pytest.raises(InputError, match=r"^tokenizer: expected the model's PreTrainedTokenizerBase, got NoneType"):
        Predictor(model, None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^tokenizer: expected the model's PreTrainedTokenizerBase, got PosixPath"):
        Predictor(model, model_dir)  # type: ignore[arg-type]


def test_one_string_instead_of_a_list_is_an_input_error(model_dir):
    with pytest.raises(InputError, match=r"texts: expected a list of strings, got one string; pass \[text\]"):
        predict(model_dir, TEXTS[0])
    with pytest.raises(InputError, match=r"^texts: expected a list of strings, got NoneType None$"):
        predict(model_dir, None)  # "'NoneType' object is not iterable"
    with pytest.raises(InputError, match=r"^texts: expected a list of strings, got bytes b'John'$"):
        predict(model_dir, b"John")  # "texts[0]: expected a string, got int 74"


def test_a_model_folder_given_to_the_constructor_is_an_input_error_naming_from_folder(model_dir):
    """`Predictor("runs/x/model", tokenizer)` failed on `'str' object has no attribute 'to'`."""
    refused = r"^model: expected a PreTrainedModel \(a saved folder: Predictor.from_folder\), got (PosixPath|str) "
    for folder in (model_dir, str(model_dir)):
        with pytest.raises(InputError, match=refused):
            Predictor(folder, None)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_batch_size_below_one_is_an_input_error(model_dir, batch_size):
    with pytest.raises(InputError, match=rf"^batch_size: expected a whole number of at least 1, got {batch_size}$"):
        predict(model_dir, TEXTS[:1], batch_size=batch_size)
    with pytest.raises(InputError, match=rf"^batch_size: expected a whole number of at least 1, got {batch_size}$"):
        Predictor.from_folder(model_dir, batch_size=batch_size)  # at construction, not at the first call
    with pytest.raises(InputError, match=r"^batch_size: "):
        Predictor.from_folder(model_dir / "no-such-model", batch_size=batch_size)  # before the model loads


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [("batch_size", "8", "'8'"), ("batch_size", 2.5, "2.5"), ("max_length", "16", "'16'"), ("stride", 2.0, "2.0")],
)
def test_a_window_or_batch_size_that_is_not_a_whole_number_is_an_input_error(model_dir, option, value, shown):
    # '8' (from a form or an environment variable) raised "'<' not supported between instances of 'str' and 'int'"
    at_least = " of at least 1" if option == "batch_size" else ""
    with pytest.raises(InputError, match=rf"^{option}: expected a whole number{at_least}, got {shown}$"):
        predict(model_dir, TEXTS[:1], **{option: value})


def test_a_text_that_is_not_a_string_is_an_input_error_naming_it(model_dir):
    with pytest.raises(InputError, match=r"^texts\[1\]: expected a string, got float nan$"):
        predict(model_dir, [TEXTS[0], float("nan")])
    assert len(predict(model_dir, (text for text in TEXTS[:2]))) == 2  # a generator is read once, checked and tagged
    with pytest.raises(InputError, match=r"^texts\[0\]: half a surrogate pair \('\\ud800'\) at character 1$"):
        predict(model_dir, ["a\ud800b"])  # a tokenizer's TypeError named neither the text nor the character


def test_windows_over_the_backbone_position_limit_are_a_config_error(model_dir):
    limit = "model.max_length: 600 is above the backbone's position limit of 512"
    with pytest.raises(ConfigError, match=rf"^{limit} \(bert max_position_embeddings 512\); set model.max_length to"):
        predict(model_dir, TEXTS[:1], max_length=600)


@pytest.mark.parametrize("device", ["gpu", "cuda:x"])
def test_a_device_torch_does_not_know_is_an_input_error_naming_it(model_dir, tiny_tokenizer_and_model, device):
    refused = rf"^device: '{device}' is not a device; expected cpu"  # torch raised 'Expected one of cpu, cuda, ...'
    with pytest.raises(InputError, match=refused):
        predict(model_dir, TEXTS[:1], device=device)
    tokenizer, model = tiny_tokenizer_and_model()
    with pytest.raises(InputError, match=refused):
        Predictor(model, tokenizer, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_a_gpu_this_machine_lacks_is_an_input_error_naming_it(model_dir, device):
    kind = device.split(":")[0]
    with pytest.raises(InputError, match=rf"^device: '{device}': this machine has no {kind} device; expected cpu"):
        predict(model_dir, TEXTS[:1], device=device)  # torch raised 'Torch not compiled with CUDA enabled'


def test_a_gpu_index_past_the_machine_s_gpus_is_an_input_error(model_dir):
    count = torch.cuda.device_count()
    refused = rf"^device: 'cuda:{count}': this machine has (no cuda device|{count} cuda devices?, numbered from 0)"
    with pytest.raises(InputError, match=refused):
        predict(model_dir, TEXTS[:1], device=f"cuda:{count}")
    assert predict(model_dir, TEXTS[:1], device=torch.device("cpu")) == predict(model_dir, TEXTS[:1], device="cpu")


def test_an_empty_device_picks_one_as_none_does(model_dir, tiny_tokenizer_and_model):
    tokenizer, model = tiny_tokenizer_and_model()
    assert Predictor(model, tokenizer, device="").device == Predictor(model, tokenizer).device


def test_a_text_that_begins_with_a_byte_order_mark_gives_entities_without_it(model_dir):
    text = "\ufeffJohn Smith"  # read from a Windows file by the user: the first entity was "\ufeffJohn" at 0
    assert [(e.start, e.end, e.text) for e in predict(model_dir, [text])[0]] == [(1, 5, "John"), (6, 11, "Smith")]


def test_a_run_folder_given_for_its_model_folder_is_an_input_error_naming_the_model_folder(model_dir):
    # The CLI takes a run folder; the Python API said only 'not a model folder (no config.json)'.
    run = model_dir.parent
    refused = rf"^{run}: a run folder, not a model folder; pass its model folder {model_dir}$"
    with pytest.raises(InputError, match=refused):
        predict(run, TEXTS[:1])
