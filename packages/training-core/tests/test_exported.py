"""An exported folder under onnxruntime: the torch `Predictor`'s entities, word encodings equal to transformers', and
the int8 model's F1 on record."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from data.documents import Document
from data.loaders import load_dataset
from training.common.errors import ConfigError, InputError
from training.config import build_training_config
from training.core.evaluator import evaluate_model
from training.core.export import export_onnx
from training.core.exported import OnnxPredictor, encode_words, read_export, word_tokenizer
from training.core.features import encode_documents
from training.core.pipeline import Windowing
from training.core.predictor import Predictor
from training.core.trainer import train_model
from training.core.windowing import text_documents

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagging_run(ner_config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-BERT run trained long enough to find entities, so that comparing them means something."""
    overrides = {"set": ["training.num_epochs=12", "training.learning_rate=5e-3"]}
    config = build_training_config(overrides, ner_config_dir)
    folder = tmp_path_factory.mktemp("exported") / "run"
    train_model(config, load_dataset(ner_config_dir / "data" / "ner", format="spans"), folder)
    return folder


@pytest.fixture(scope="module")
def exported(tagging_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx") / "model"
    export_onnx(tagging_run / "model", folder, quantize=True)
    return folder


def test_onnxruntime_gives_the_entities_of_the_torch_predictor(exported: Path, tagging_run: Path, ner_documents):
    texts = [document.text for document in ner_documents[32:]]  # the run's validation texts
    texts.append(" ".join(texts))  # longer than one 64-token window: windows overlap and are merged
    onnx = OnnxPredictor(exported, batch_size=3)
    assert onnx.windowing == Windowing(64, 8)
    got, expected = onnx(texts), Predictor.from_folder(tagging_run / "model", precision="fp32")(texts)
    assert [[(e.start, e.end, e.label, e.text) for e in entities] for entities in got] == [
        [(e.start, e.end, e.label, e.text) for e in entities] for entities in expected
    ]
    scores = [e.score for entities in got for e in entities]
    assert scores == pytest.approx([e.score for entities in expected for e in entities], abs=1e-4)
    assert sum(map(len, expected)) >= len(texts), "the tiny model found few entities: the comparison means little"
    with pytest.raises(InputError, match="a list of strings"):
        onnx(texts[0])


def test_the_int8_f1_change_is_recorded_on_the_validation_split(exported: Path, tagging_run: Path, ner_documents):
    report = read_export(exported).quantization
    assert report is not None and (report.split, report.documents) == ("validation", 8)
    validation = ner_documents[32:]
    windows = {"max_length": 64, "stride": 8, "precision": "fp32"}  # the export's reference: torch in fp32
    torch_f1 = evaluate_model(tagging_run / "model", None, validation, **windows).metrics["entity_f1"]
    assert report.torch_f1 == pytest.approx(torch_f1) and report.onnx_f1 == report.torch_f1 > 0.0
    assert 0.0 <= report.int8_f1 <= 1.0 and report.f1_change == report.int8_f1 - report.onnx_f1
    int8 = OnnxPredictor(exported, quantized=True)
    assert len(int8([validation[0].text])) == 1


def test_the_int8_model_tags_a_text_alike_whatever_is_batched_with_it(exported: Path, ner_documents) -> None:
    # int8 activations are scaled over the whole batch: a served text's entities changed with other clients' texts.
    int8 = OnnxPredictor(exported, quantized=True)
    texts = [document.text for document in ner_documents]
    texts.append(" ".join(texts[:6]))  # a longer text: the others padded to it
    batched = int8.predict_documents(text_documents(texts))
    for index in (0, 17, len(texts) - 1):
        alone = int8.predict_documents(text_documents([texts[index]]))[0]
        assert alone.scores == batched[index].scores and alone.entities == batched[index].entities


def test_an_exported_folder_given_to_the_torch_predictor_is_an_input_error_naming_onnx(exported: Path) -> None:
    refused = rf"^{exported}: an exported folder, not a model folder; OnnxPredictor runs it$"
    with pytest.raises(InputError, match=refused):
        Predictor.from_folder(exported)  # it said only 'not a model folder (no config.json)'


def test_the_onnxruntime_thread_count_is_set_or_refused(exported: Path) -> None:
    one = OnnxPredictor(exported, threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(InputError, match=r"^threads: expected a whole number of at least 1, got 0$"):
        OnnxPredictor(exported, threads=0)
    with pytest.raises(InputError, match=r"^threads: expected a whole number of at least 1, got '2'$"):
        OnnxPredictor(exported, threads="2")  # onnxruntime's TypeError listed its bindings' signatures
    for batch_size in (0, -1, 2.5):  # at construction, not at the first call (a server failed every request)
        with pytest.raises(InputError, match=rf"^batch_size: expected a whole number of at least 1, got {batch_size}$"):
            OnnxPredictor(exported, batch_size=batch_size)


def test_quantizing_logs_no_preprocessing_advice_and_leaves_the_root_logger_as_it_was(
    tagging_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    handlers, filters = list(root.handlers), list(root.filters)
    with caplog.at_level(logging.WARNING):
        export_onnx(tagging_run / "model", tmp_path / "out", quantize=True)
    assert (tmp_path / "out" / "model.int8.onnx").is_file()
    assert not [record for record in caplog.records if "pre-processing" in record.getMessage()]
    assert (root.handlers, root.filters) == (handlers, filters)


def test_a_bare_model_folder_needs_data_to_score_quantization(tagging_run: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for item in (tagging_run / "model").iterdir():
        (bare / item.name).write_bytes(item.read_bytes())
    with pytest.raises(InputError, match=r"pass data_path \(--data-path\)$"):
        export_onnx(bare, tmp_path / "out", quantize=True)
    assert not (tmp_path / "out").exists()


def test_a_model_without_its_runs_metrics_is_scored_only_on_data_named_for_it(
    tagging_run: Path, tmp_path: Path
) -> None:
    """Without the run's metrics.json nothing says what the model trained on (a final run trains on its validation
    split): --data-path is required."""
    final = tmp_path / "final"
    (final / "model").mkdir(parents=True)
    for item in (tagging_run / "model").iterdir():
        (final / "model" / item.name).write_bytes(item.read_bytes())
    (final / "config.yaml").write_bytes((tagging_run / "config.yaml").read_bytes())
    with pytest.raises(
        InputError, match=r"a final run trains on them.* data_path \(--data-path\), and split='test' \(--split test\)$"
    ):
        export_onnx(final / "model", tmp_path / "out", quantize=True)
    assert not (tmp_path / "out").exists()


def test_a_broken_export_record_is_an_input_error(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    record = json.loads((exported / "export.json").read_text())
    (folder / "export.json").write_text(json.dumps({**record, "max_length": "long"}))
    with pytest.raises(InputError, match=r"export\.json: max_length: .*re-export"):
        read_export(folder)
    # an edited window length was taken: 0 or less failed in windowing, one past the positions in onnxruntime
    most = record["positions"]
    assert record["max_length"] <= most
    for edited, problem in (
        ({"max_length": 0}, "max_length: expected greater than or equal to 16, got 0"),
        ({"max_length": most + 1}, f"max_length {most + 1} is above the model's position limit of {most}"),
        ({"stride": record["max_length"]}, f"stride {record['max_length']} must be below half of max_length"),
    ):
        (folder / "export.json").write_text(json.dumps({**record, **edited}))
        with pytest.raises(InputError, match=rf"^{re.escape(str(folder / 'export.json'))}: {problem}.*re-export"):
            read_export(folder)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "export.json").write_text(json.dumps({**record, "quantized_file": None}))
    with pytest.raises(InputError, match=r"exported without quantize \(--quantize\), so it holds no int8 model$"):
        OnnxPredictor(plain, quantized=True)


def test_token_ids_of_an_edited_record_outside_the_vocabulary_are_config_errors(exported: Path, tmp_path: Path) -> None:
    """onnxruntime's embedding lookup refused a padding id past the vocabulary mid-request (an internal error)."""
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    record = json.loads((folder / "export.json").read_text())
    size = word_tokenizer(folder).get_vocab_size()
    for name, token, problem in (
        ("pad_token_id", size, f"pad_token_id {size} is not a token of tokenizer.json \\(ids 0 to {size - 1}\\)"),
        ("unk_token_id", size, f"unk_token_id {size} is not a token of tokenizer.json"),
        ("pad_token_id", -1, "pad_token_id: expected greater than or equal to 0, got -1"),
    ):
        (folder / "export.json").write_text(json.dumps({**record, name: token}))
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(folder / 'export.json'))}: {problem}.*re-export"):
            OnnxPredictor(folder)(["John Smith works in London", "Hi"])


@pytest.mark.parametrize(
    ("name", "quantized", "damage"),
    [
        ("model.onnx", False, None),
        ("model.int8.onnx", True, None),
        ("model.onnx", False, b"not onnx"),
        ("tokenizer.json", False, None),
        ("tokenizer.json", True, b"{"),
    ],
)
def test_a_missing_or_unreadable_file_of_an_export_is_a_config_error_naming_it(
    exported: Path, tmp_path: Path, name: str, quantized: bool, damage: bytes | None
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    if damage is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(damage)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(folder / name))}: .*re-export"):
        OnnxPredictor(folder, quantized=quantized)


def byte_level_tokenizer(folder: Path):
    """A RoBERTa-style byte-level BPE tokenizer trained on the spot, loaded for split words as a run loads it."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer, RobertaTokenizerFast

    corpus = ["Anna Kowalczykowski joined Siemens in Warsaw.", "John Smith works at Google in London."] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    RobertaTokenizerFast(tokenizer_object=bpe._tokenizer).save_pretrained(folder / "backbone")
    tokenizer = AutoTokenizer.from_pretrained(folder / "backbone", add_prefix_space=True)  # as model.py loads it
    tokenizer.save_pretrained(folder / "export")  # as export.py writes it
    return tokenizer


def test_word_encodings_equal_transformers_for_wordpiece_and_byte_level_bpe(
    tiny_tokenizer_and_model, ner_documents, tmp_path: Path
) -> None:
    wordpiece = tiny_tokenizer_and_model()[0]
    wordpiece.save_pretrained(tmp_path / "wordpiece")
    documents = (*ner_documents, Document.from_words("x", ["Zoë", "\u200b", "Kowalczykowski", "!"], ["O"] * 4))
    tags = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    windowing = Windowing(16, 4)  # small windows: many documents are cut into overlapping ones
    byte_level = byte_level_tokenizer(tmp_path)
    for tokenizer, folder in ((wordpiece, tmp_path / "wordpiece"), (byte_level, tmp_path / "export")):
        expected = encode_documents(documents, tokenizer, tags, windowing.max_length, windowing.stride)
        got = encode_words(word_tokenizer(folder), documents, tags, windowing, tokenizer.unk_token_id)
        assert got == expected and len(got.windows) > len(documents)
    # Every word is encoded as following a space ("ĠSmith"), as add_prefix_space asks for split words.
    smith = word_tokenizer(tmp_path / "export").encode(["Smith"], is_pretokenized=True, add_special_tokens=False)
    assert smith.tokens[0].startswith("Ġ")
