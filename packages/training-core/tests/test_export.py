"""ONNX export: the exported model computes torch's logits on texts it was not checked on, at any batch shape."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from data.loaders import Dataset, load_dataset
from training.common.errors import InputError
from training.config.schema import TrainingConfig
from training.core.export import EXPORT_RECORD, ExportedModel, export_onnx
from training.core.model import load_model
from training.core.run_folder import RunFolder
from training.core.trainer import train_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tiny_config: TrainingConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "run"
    train_model(tiny_config, load_dataset(tiny_config.data.path, format="spans"), folder)
    return folder


def test_the_export_gives_torchs_logits_on_held_back_texts(run_dir: Path, ner_documents, tmp_path: Path) -> None:
    record = export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True)
    assert record == ExportedModel.model_validate_json((tmp_path / "onnx" / EXPORT_RECORD).read_text())
    assert (record.max_length, record.stride, record.backbone) == (64, 8, "tiny-bert")
    assert record.parity_max_abs_diff < 1e-4
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", EXPORT_RECORD} <= {
        p.name for p in (tmp_path / "onnx").iterdir()
    }
    model, tokenizer, tag_names = load_model(run_dir / "model")
    assert record.tag_names == tag_names
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    for size in (1, 3, 8):  # batch and sequence axes both vary
        texts = [doc.text for doc in ner_documents[-size:]]
        batch = tokenizer(texts, padding=True, return_tensors="np")
        feed = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        got = session.run(["logits"], feed)[0]
        with torch.no_grad():
            expected = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    int8 = ort.InferenceSession(str(tmp_path / "onnx" / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    assert int8.run(["logits"], feed)[0].shape == expected.shape
    # The parity check's encoding set truncation at max_length and padding on the tokenizer, and the export saved
    # them: any other reader of its tokenizer.json (tokenizers alone, another language) cut texts at 64 tokens.
    exported = json.loads((tmp_path / "onnx" / "tokenizer.json").read_text())
    own = json.loads((run_dir / "model" / "tokenizer.json").read_text())
    assert (exported["truncation"], exported["padding"]) == (own["truncation"], own["padding"]) == (None, None)


def test_the_export_command_writes_a_folder_and_refuses_a_non_model(run_dir: Path, tmp_path: Path) -> None:
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "training.cli", *args], capture_output=True, text=True)

    done = cli("export", str(run_dir), "--format", "onnx", "--output", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["onnx_file"] == "model.onnx" and (tmp_path / "out" / "model.onnx").is_file()
    refused = cli("export", str(tmp_path), "--output", str(tmp_path / "out2"))
    assert refused.returncode == 2 and "not a model folder" in refused.stderr and not (tmp_path / "out2").exists()
    assert "Traceback" not in refused.stderr


def test_the_export_refuses_to_replace_what_is_not_an_export(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "notes.txt").write_text("kept")
    (tmp_path / "model.onnx").write_text("kept")
    run_files = sorted(run_dir.rglob("*"))
    for target in (run_dir, tmp_path / "exports", tmp_path / "model.onnx"):
        with pytest.raises(InputError, match="not an exported folder, and the export would replace it"):
            export_onnx(run_dir / "model", target)
    assert sorted(run_dir.rglob("*")) == run_files
    assert (tmp_path / "exports" / "notes.txt").read_text() == (tmp_path / "model.onnx").read_text() == "kept"


def test_the_export_replaces_an_earlier_export(run_dir: Path, tmp_path: Path) -> None:
    export_onnx(run_dir / "model", tmp_path / "onnx")
    (tmp_path / "onnx" / "stale.txt").write_text("from before")
    export_onnx(run_dir / "model", tmp_path / "onnx")
    assert (tmp_path / "onnx" / "model.onnx").is_file() and not (tmp_path / "onnx" / "stale.txt").exists()


def test_an_export_into_a_folder_whose_parent_cannot_be_written_is_refused_before_any_work(
    run_dir: Path, tmp_path: Path
) -> None:
    # The export is staged beside its folder: an existing folder in a read-only one passed the check and ended as a
    # bare PermissionError once the model had loaded
    locked, made = tmp_path / "locked", []
    (locked / "onnx").mkdir(parents=True)
    if os.geteuid() != 0:
        locked.chmod(0o555)
    elif shutil.which("chattr") is None or subprocess.run(["chattr", "+i", locked], capture_output=True).returncode:
        pytest.skip("root writes in a read-only folder, and chattr +i cannot make it immutable here")
    else:
        made.append(locked)
    try:
        with pytest.raises(InputError, match=rf"^{re.escape(str(locked))}: cannot be written \(.+\); choose another"):
            export_onnx(run_dir / "model", locked / "onnx")
    finally:  # so that tmp_path can be removed
        for path in made:
            subprocess.run(["chattr", "-i", path], check=True)
        locked.chmod(0o755)
    assert [path.name for path in locked.iterdir()] == ["onnx"] and not any((locked / "onnx").iterdir())


@pytest.mark.parametrize(
    ("names", "refusal"),
    [
        (lambda tags: tags[:3], "model.onnx: gives {count} tags where export.json names 3; expected as many"),
        (lambda tags: [*tags, "B-X", "I-X"], "model.onnx: gives {count} tags where export.json names {more}; expected"),
        (lambda tags: [tags[0], tags[1], tags[1], *tags[3:]], "export.json: tag_names .* are not IOB2 tag names"),
        (lambda tags: ["B-X", *tags[1:]], "export.json: tag_names .* are not IOB2 tag names; .*, each once$"),
    ],
    ids=["fewer", "more", "a tag twice", "no O"],
)
def test_tag_names_that_do_not_fit_the_exported_model_are_refused(
    run_dir: Path, tmp_path: Path, names, refusal
) -> None:
    """An export.json of another export: an IndexError deep in decoding, or entities of other tags, silently."""
    from training.core.exported import OnnxPredictor

    record = export_onnx(run_dir / "model", tmp_path / "onnx")
    tags = list(record.tag_names)
    (tmp_path / "onnx" / EXPORT_RECORD).write_text(
        record.model_copy(update={"tag_names": names(tags)}).model_dump_json()
    )
    with pytest.raises(InputError, match=refusal.format(count=len(tags), more=len(tags) + 2)):
        OnnxPredictor(tmp_path / "onnx")


def test_the_int8_model_is_scored_on_a_split_named_as_its_file_or_on_a_single_file_whole(
    run_dir: Path, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    """`--split dev` was "no such split" although the loader reads dev.jsonl as validation, and a single file needed
    `--split train`, where `training evaluate` takes both."""
    data = tmp_path / "data"
    data.mkdir()
    validation = Path(tiny_config.data.path) / "validation.jsonl"
    for name in ("train", "dev"):
        (data / f"{name}.jsonl").write_text(validation.read_text(encoding="utf-8"), encoding="utf-8")
    documents = len(validation.read_text(encoding="utf-8").splitlines())
    for data_path, split, scored in ((data, "dev", "validation"), (validation, None, "train")):
        record = export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True, data_path=str(data_path), split=split)
        assert (record.quantization.split, record.quantization.documents) == (scored, documents)
    with pytest.raises(InputError, match=r"^split test \(--split\): .*data has no such split; it has train, valid"):
        export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True, data_path=str(data), split="test")


def test_without_data_the_int8_model_is_scored_on_its_runs_validation_split_unless_it_trained_on_it(
    tiny_config: TrainingConfig, run_dir: Path, tmp_path: Path
) -> None:
    """A final run, which trains on its sweep's validation split, was told apart by its lineage.json, which every
    `training train` run has now too: what tells is the fingerprint of the documents its run was evaluated on."""
    dataset = tiny_config.data.load()
    record = export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True)  # trained on `load_dataset(path)`
    assert record.quantization.split == "validation" and record.quantization.documents == len(dataset["validation"])
    (run_dir / "lineage.json").write_text("{}")  # as `training train` writes one now: no sign of a refit
    try:
        assert export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True).quantization.split == "validation"
    finally:
        (run_dir / "lineage.json").unlink()
    older = tmp_path / "older"  # a run recorded before runs kept the fingerprint: lineage.json alone tells a refit
    shutil.copytree(run_dir, older)
    record = json.loads((older / "metrics.json").read_text())
    del record["validation_fingerprint"]
    (older / "metrics.json").write_text(json.dumps(record))
    assert export_onnx(older / "model", tmp_path / "onnx", quantize=True).quantization.split == "validation"
    (older / "lineage.json").write_text("{}")
    with pytest.raises(InputError, match=r"/older/model: nothing says its run was evaluated on the validation doc"):
        export_onnx(older / "model", tmp_path / "onnx", quantize=True)
    merged, test = dataset["train"][:-4] + dataset["validation"], dataset["train"][-4:]  # a refit evaluated on test
    train_model(tiny_config, Dataset({"train": merged, "validation": test}, labels=dataset.labels), tmp_path / "refit")
    with pytest.raises(InputError, match=r"/refit/model: nothing says its run was evaluated on the validation doc"):
        export_onnx(tmp_path / "refit" / "model", tmp_path / "refit-onnx", quantize=True)
    assert not (tmp_path / "refit-onnx").exists()


def test_a_refit_s_config_with_its_sweep_s_column_positions_scores_on_its_own_data(
    run_dir: Path, tmp_path: Path
) -> None:
    """A refit on JSON data after a sweep on a CoNLL corpus recorded the sweep's column positions beside that data,
    and the int8 model, scored on the run's validation split, was refused for them: a run's columns not taken are
    ignored, as for other data."""
    refit = tmp_path / "refit"
    shutil.copytree(run_dir, refit)
    folder = RunFolder(refit)
    config = folder.read_config()
    assert config is not None
    folder.write_config(config.with_values({"data": {"columns": {"tokens": 0, "tags": 3}}}).to_yaml())
    record = export_onnx(refit / "model", tmp_path / "onnx", quantize=True)
    assert record.quantization.split == "validation"


def test_data_and_split_for_scoring_are_refused_where_they_would_be_ignored(
    run_dir: Path, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    """Without --quantize they chose nothing, --split without --data-path scored the run's validation split, and a
    split that is not a name raised an AttributeError."""
    ignored = r"^data_path \(--data-path\) and split \(--split\) choose .*; add quantize=True \(--quantize\)$"
    with pytest.raises(InputError, match=ignored):
        export_onnx(run_dir / "model", tmp_path / "onnx", data_path=str(run_dir))
    alone = r"^split test \(--split\): names a split of data_path \(--data-path\); pass data_path too$"
    with pytest.raises(InputError, match=alone):
        export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True, split="test")
    with pytest.raises(InputError, match=r"^split: expected a split name such as 'test', got 5$"):
        export_onnx(run_dir / "model", tmp_path / "onnx", quantize=True, data_path=str(tiny_config.data.path), split=5)
    assert not (tmp_path / "onnx").exists()
