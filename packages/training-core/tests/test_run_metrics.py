"""`metrics.json` as typed records: scores, per-entity scores and history entries read by attribute, in the file's
JSON shape, including files written before the records were typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.common.errors import ConfigError, InputError
from training.core.result import TrainResult
from training.core.run_folder import RunFolder
from training.core.run_metrics import Evaluation, PrecisionCheck, RunMetrics

SCORES = {
    "entity_precision": 0.8,
    "entity_recall": 0.6,
    "entity_f1": 0.6857,
    "macro_precision": 0.75,
    "macro_recall": 0.5,
    "macro_f1": 0.6,
    "support": 5,
    "token_accuracy": 0.9,
    "loss": 0.42,
}
PER_ENTITY = {
    "LOC": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    "PER": {"precision": 0.5, "recall": 0.0, "f1": 0.0, "support": 4},
}
# A completed run's file as runs wrote it before span scores were recorded (with the old `invalid_entities`).
OLD_FILE = {
    "format": 1,
    "status": "completed",
    "history": [{"epoch": 1, "step": 3, **SCORES, "invalid_entities": 0}],
    "config_fingerprint": "c" * 64,
    "dataset_fingerprint": "d" * 64,
    "best": {**SCORES, "invalid_entities": 0, "per_entity": PER_ENTITY},
    "best_epoch": 1,
}


def _run(tmp_path: Path, record: dict) -> RunFolder:
    (tmp_path / "metrics.json").write_text(json.dumps(record), encoding="utf-8")
    return RunFolder(tmp_path)


def test_a_file_of_the_old_shape_reads_as_typed_records(tmp_path: Path) -> None:
    record = _run(tmp_path, OLD_FILE).read_metrics()
    assert record is not None and record.best is not None
    assert record.best.entity_f1 == 0.6857 and record.best.score("macro_f1") == 0.6
    assert record.best.per_entity["PER"].support == 4 and record.best.span_f1 is None
    assert record.precision is None and record.precision_check is None
    assert (record.history[0].epoch, record.history[0].step, record.history[0].loss) == (1, 3, 0.42)
    assert "invalid_entities" not in record.best.scalars() and "span_f1" not in record.best.scalars()
    result = TrainResult(tmp_path, record)
    assert result["entity_f1"] == 0.6857 and result["per_entity"]["LOC"]["f1"] == 1.0 and "span_f1" not in result


def test_a_running_file_has_no_best_and_keeps_its_json_shape(tmp_path: Path) -> None:
    running = {key: OLD_FILE[key] for key in ("format", "history", "config_fingerprint", "dataset_fingerprint")}
    run = _run(tmp_path, {**running, "status": "running", "best": {}})
    record = run.read_metrics()
    assert record is not None and record.best is None and not record.completed
    run.write_metrics(record)
    assert json.loads(run.metrics.read_text(encoding="utf-8"))["best"] == {}


def test_a_completed_record_round_trips_through_its_file(tmp_path: Path) -> None:
    best = Evaluation(**SCORES, span_precision=1.0, span_recall=0.5, span_f1=0.6667, per_entity=PER_ENTITY)
    record = RunMetrics(
        status="completed",
        history=(best.entry(epoch=1, step=3),),
        config_fingerprint="c" * 64,
        dataset_fingerprint="d" * 64,
        best=best,
        precision="fp32",
        precision_check=PrecisionCheck(bf16_f1=0.6, fp32_f1=0.6857, switched=True),
    )
    run = RunFolder(tmp_path)
    run.write_metrics(record)
    on_disk = json.loads(run.metrics.read_text(encoding="utf-8"))
    assert on_disk["best"]["per_entity"] == PER_ENTITY and on_disk["history"][0]["span_f1"] == 0.6667
    assert "per_entity" not in on_disk["history"][0] and on_disk["history"][0]["epoch"] == 1
    assert on_disk["precision_check"] == {"bf16_f1": 0.6, "fp32_f1": 0.6857, "switched": True}
    assert run.read_metrics() == record


def test_a_best_evaluation_without_a_score_names_the_file_and_the_field(tmp_path: Path) -> None:
    broken = {**OLD_FILE, "best": {key: value for key, value in OLD_FILE["best"].items() if key != "entity_f1"}}
    with pytest.raises(InputError, match=r"metrics\.json.*best\.entity_f1"):
        _run(tmp_path, broken).read_metrics()


def test_a_score_the_evaluation_did_not_record_is_an_input_error_naming_it() -> None:
    evaluation = Evaluation(**(SCORES | {"loss": None}))

    assert evaluation.score("entity_f1") == 0.6857
    for metric in ("loss", "span_f1", "entity_f2"):
        with pytest.raises(InputError, match=f"metric '{metric}': not recorded in this evaluation; it has entity_f1"):
            evaluation.score(metric)


def test_a_config_yaml_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path) -> None:
    # Saved by an editor in Latin-1: evaluate, predict and report stopped with an internal UnicodeDecodeError.
    run = RunFolder(tmp_path)
    run.config.write_bytes(b"# caf\xe9\nmodel: {}\n")
    with pytest.raises(ConfigError, match=rf"^{run.config}: cannot read the file \("):
        run.read_config()
