"""Backbone families beyond BERT and RoBERTa, end to end on tiny random models with tokenizers trained on the spot in
their family's style: DistilBERT and ELECTRA (WordPiece), XLM-RoBERTa, DeBERTa-v3 and ALBERT (Unigram pieces after a
Metaspace "▁"), ModernBERT (byte-level BPE in a generic fast tokenizer, local attention); trained, then exported to
ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tokenizers import (
    BertWordPieceTokenizer,
    SentencePieceUnigramTokenizer,
    Tokenizer,
    decoders,
    models,
    pre_tokenizers,
    processors,
    trainers,
)

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset
from data.segmentation import split_words
from training.config import TrainingConfig
from training.core import train_model
from training.core.export import PARITY_TOLERANCE, export_onnx
from training.core.exported import OnnxPredictor, encode_words, word_tokenizer
from training.core.features import Collator, encode_documents, evaluation_mode
from training.core.model import create_model_and_tokenizer, load_model
from training.core.packing import PackedCollator, packing_problem
from training.core.predictor import Predictor
from training.core.windowing import Windowing, pad_windows, text_documents

LABELS = ("PER", "ORG", "LOC")
TAGS = iob2_tag_names(LABELS)
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
WORDPIECE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_LENGTH = 32
FAMILIES = ["distilbert", "electra", "xlm-roberta", "deberta-v3", "albert", "modernbert"]
# Why a family's packed rows are refused, where they are (the rest must pack with the loss of padded batches).
NO_PACKING = {"deberta-v3": "rejects packed rows", "modernbert": "gives packed windows other logits"}


def unigram(texts: list[str], special: list[str]) -> list[tuple[str, float]]:
    """Pieces and scores of a Unigram model trained on `texts`, `special` first (the last of them unknown words)."""
    trained = SentencePieceUnigramTokenizer()
    trained.train_from_iterator(
        texts, vocab_size=300, special_tokens=special, unk_token=special[-1], show_progress=False
    )
    return [tuple(piece) for piece in json.loads(trained.to_str())["model"]["vocab"]]


def byte_level_bpe(texts: list[str]) -> transformers.PreTrainedTokenizerFast:
    """ModernBERT's kind of tokenizer: byte-level BPE without a prefix space, saved as a generic fast tokenizer."""
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=400, special_tokens=WORDPIECE, initial_alphabet=alphabet)
    )
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), WORDPIECE, strict=True))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, **names)


def backbone(family: str, folder: Path, texts: list[str]) -> Path:
    """A backbone folder as a hub model of `family` holds one: its tokenizer and a randomly initialised masked LM."""
    folder.mkdir(parents=True)
    if family in ("distilbert", "electra"):
        trained = BertWordPieceTokenizer(lowercase=False)
        trained.train_from_iterator(texts, vocab_size=300, special_tokens=WORDPIECE, show_progress=False)
        trained.save_model(str(folder))
        kind = transformers.DistilBertTokenizerFast if family == "distilbert" else transformers.ElectraTokenizerFast
        tokenizer = kind.from_pretrained(folder, do_lower_case=False)
    elif family == "xlm-roberta":
        tokenizer = transformers.XLMRobertaTokenizerFast(vocab=unigram(texts, ["<s>", "<pad>", "</s>", "<unk>"]))
    elif family == "deberta-v3":
        pieces = unigram(texts, ["[PAD]", "[CLS]", "[SEP]", "[UNK]"])
        tokenizer = transformers.DebertaV2TokenizerFast(vocab=[*pieces, ("[MASK]", 0.0)], unk_id=3)
    elif family == "albert":
        tokenizer = transformers.AlbertTokenizerFast(vocab=unigram(texts, ["<pad>", "[CLS]", "[SEP]", "<unk>"]))
    else:
        tokenizer = byte_level_bpe(texts)
    configs = {
        "distilbert": (transformers.DistilBertConfig, {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
        "electra": (transformers.ElectraConfig, {"embedding_size": 16, **SMALL}),
        "xlm-roberta": (transformers.XLMRobertaConfig, SMALL),
        "deberta-v3": (
            transformers.DebertaV2Config,
            {"relative_attention": True, "position_biased_input": False, "pos_att_type": ["p2c", "c2p"], **SMALL},
        ),
        "albert": (transformers.AlbertConfig, {"embedding_size": 16, **SMALL}),
        "modernbert": (
            transformers.ModernBertConfig,
            {"local_attention": 16, "global_attn_every_n_layers": 2, **SMALL}  # 8 tokens each side: under a window
            | {name: tokenizer.cls_token_id for name in ("cls_token_id", "bos_token_id")}
            | {name: tokenizer.sep_token_id for name in ("sep_token_id", "eos_token_id")},
        ),
    }
    kind, options = configs[family]
    size = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(0)
    model = transformers.AutoModelForMaskedLM.from_config(
        kind(**options, **size, max_position_embeddings=MAX_LENGTH + 4)
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def family_config(
    family: str, tiny_config: TrainingConfig, documents: tuple[Document, ...], folder: Path
) -> TrainingConfig:
    """The tiny config training one epoch on a fresh `backbone` of `family` (windows of MAX_LENGTH, stride 8)."""
    source = backbone(family, folder, [document.text for document in documents])
    settings = {"backbone": str(source), "name": family, "max_length": MAX_LENGTH, "stride": 8, "dropout": 0.2}
    return tiny_config.with_values(
        {**{f"model.{key}": value for key, value in settings.items()}, "training.num_epochs": 1}
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_a_backbone_family_trains_packs_as_it_pads_and_tags_whole_words(
    family: str, tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = family_config(family, tiny_config, ner_documents, tmp_path / family)
    model, tokenizer = create_model_and_tokenizer(config)

    # Each word reads as in running text (a byte-level BPE's with its leading space), and model.dropout is every
    # dropout of the backbone (ModernBERT's MLP and embedding ones too).
    text = "John Smith works at Google in London"
    running, split = tokenizer(text), tokenizer(text.split(), is_split_into_words=True)
    assert [i for i, w in zip(split.input_ids, split.word_ids(), strict=True) if w] == [
        i for i, w in zip(running.input_ids, running.word_ids(), strict=True) if w
    ]
    assert {layer.p for layer in model.base_model.modules() if isinstance(layer, torch.nn.Dropout)} == {0.2}

    encoded = encode_documents(ner_documents, tokenizer, TAGS, MAX_LENGTH, 8)
    windows = sorted(encoded.windows, key=lambda window: window.length)[:8]  # short ones, that share rows
    padded = Collator(tokenizer.pad_token_id)
    problem = packing_problem(model, MAX_LENGTH)
    if family in NO_PACKING:
        assert problem is not None and NO_PACKING[family] in problem
    else:
        packed = PackedCollator.for_model(model, padded, MAX_LENGTH)(windows)
        assert packed["input_ids"].shape[0] < len(windows)
        with evaluation_mode(model), torch.no_grad():
            assert float(model(**packed).loss) == pytest.approx(float(model(**padded(windows)).loss), rel=1e-5)

    dataset = Dataset({"train": ner_documents[:32], "validation": ner_documents[32:]}, LABELS)
    predictor = Predictor.from_folder(train_model(config, dataset, tmp_path / "run").model_dir)
    with torch.no_grad():  # every word a PER of its own: its span must be the word's, wherever its pieces fall
        predictor.model.classifier.weight.zero_()
        predictor.model.classifier.bias.copy_(torch.tensor([20.0 if tag == "B-PER" else 0.0 for tag in TAGS]))
    # Words of many pieces, of none (WordPiece's for a private-use character), and a text of several windows.
    texts = [
        "Anna Kowalczykowski joined Zzqx \ue000 Brzęczyszczykiewicz .",
        " ".join(ner_documents[i].text for i in range(6)),
    ]
    for text, entities in zip(texts, predictor(texts), strict=True):
        assert [(e.start, e.end, e.label) for e in entities] == [(w.start, w.end, "PER") for w in split_words(text)]


# Texts that stress a tokenizer: accents, CJK, emoji (a flag, a family), a word longer than a window (under 100
# characters, which WordPiece makes one [UNK]), spaces around, NBSP, digits, punctuation runs, mixed case, one word.
STRESS_TEXTS = [
    "Zoë Ångström visited the café in Besançon with Müller",
    "東京タワー は 北京大学 の 近く",
    "Emoji 😀 party 🎉🇵🇱 with Anna 👩‍👩‍👧",
    "Anna " + "Brzęczyszczykiewicz" * 5 + " joined Siemens",
    "   John Smith works at Google   ",
    "John\u00a0Smith works\u00a0at Google",
    "In 1843 there were 12,345 people and 3.14159 pies",
    "Wow!!! ... ?!?! --- (((Anna))) ,,, ;;",
    "jOHN sMITH WORKS AT gOOGLE in lONDON",
    "London",
]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_a_backbone_family_exports_to_onnx_that_encodes_and_tags_as_torch(
    family: str, tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    config = family_config(family, tiny_config, ner_documents, tmp_path / family)
    dataset = Dataset({"train": ner_documents[:32], "validation": ner_documents[32:]}, LABELS)
    run = train_model(config, dataset, tmp_path / "run").model_dir
    exported = tmp_path / "onnx"
    with warnings.catch_warnings(record=True) as caught:  # `training export` printed DeBERTa's, from tracing
        warnings.simplefilter("always")
        export_onnx(run, exported, quantize=True)
    assert [str(warning.message) for warning in caught] == []

    model, tokenizer, _ = load_model(run)
    long_word = tokenizer([STRESS_TEXTS[3].split()[1]], is_split_into_words=True, add_special_tokens=False)
    assert len(long_word.input_ids) > MAX_LENGTH
    documents = text_documents(STRESS_TEXTS)
    expected = encode_documents(documents, tokenizer, TAGS, MAX_LENGTH, 8)
    got = encode_words(word_tokenizer(exported), documents, TAGS, Windowing(MAX_LENGTH, 8), tokenizer.unk_token_id)
    assert got == expected

    batch = pad_windows(expected.windows, tokenizer.pad_token_id)  # one batch: padding too must not change logits
    feed = {name: batch[name] for name in ("input_ids", "attention_mask")}
    onnx = OnnxPredictor(exported, batch_size=4)
    with torch.no_grad():
        logits = model.eval()(**{name: torch.from_numpy(array) for name, array in feed.items()}).logits.numpy()
    difference = np.abs(onnx.session.run(["logits"], feed)[0] - logits)[batch["attention_mask"] == 1]
    assert difference.max() < PARITY_TOLERANCE

    def spans(found: list) -> list:
        return [[(e.start, e.end, e.label, e.text) for e in entities] for entities in found]

    wanted = Predictor.from_folder(run, precision="fp32")(STRESS_TEXTS)
    assert spans(onnx(STRESS_TEXTS)) == spans(wanted) and sum(map(len, wanted)) >= len(STRESS_TEXTS)
    assert len(OnnxPredictor(exported, quantized=True)(STRESS_TEXTS)) == len(STRESS_TEXTS)
    command = [sys.executable, "-m", "training.cli", "predict", str(exported), "--json", *STRESS_TEXTS]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line)["entities"] for line in done.stdout.splitlines()]
    assert [[(e["start"], e["end"], e["label"], e["text"]) for e in entities] for entities in printed] == spans(wanted)
