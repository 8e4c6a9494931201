"""`training predict EXPORTED_FOLDER`: onnxruntime without torch, giving `training predict RUN`'s entities; and
`training export --quantize` reporting the int8 model's F1 change."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data.loaders import load_dataset

pytestmark = pytest.mark.slow

# `training ARGS...` as `python -m training` runs it, then a last line on stderr saying whether torch was imported.
WATCHING_TORCH = """
import runpy, sys
sys.argv = ["training", *sys.argv[1:]]
try:
    runpy.run_module("training.cli", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as done:
    code = done.code
print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
sys.exit(code)
"""


def watched(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", WATCHING_TORCH, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def entities(stdout: str) -> list[list[dict]]:
    return [json.loads(line)["entities"] for line in stdout.splitlines()]


def test_predict_on_an_exported_folder_gives_torchs_entities_without_importing_torch(
    tagging_run: Path, exported_run: tuple[Path, str], config_dir: Path
) -> None:
    texts = [document.text.replace("\n", " ") for document in load_dataset(config_dir / "resumes")["validation"]]
    by_torch = watched("predict", str(tagging_run), *texts, "--json", "--precision", "fp32")  # the run's may be bf16
    by_onnx = watched("predict", str(exported_run[0]), *texts, "--json")
    assert by_torch.returncode == 0 and by_onnx.returncode == 0, by_torch.stderr + by_onnx.stderr
    assert by_torch.stderr.splitlines()[-1] == "torch imported"  # the check can tell
    assert by_onnx.stderr.splitlines()[-1] == "torch not imported"
    expected, got = entities(by_torch.stdout), entities(by_onnx.stdout)
    assert sum(map(len, expected)) >= len(texts), "the tiny model found few entities: the comparison means little"
    strip = [[{k: v for k, v in e.items() if k != "score"} for e in found] for found in got]
    assert strip == [[{k: v for k, v in e.items() if k != "score"} for e in found] for found in expected]
    scores = [e["score"] for found in got for e in found]
    assert scores == pytest.approx([e["score"] for found in expected for e in found], abs=1e-4)


def test_the_int8_model_predicts_and_serves_and_only_an_export_has_one(
    cli, tagging_run: Path, exported_run: tuple[Path, str]
) -> None:
    int8 = cli("predict", str(exported_run[0]), "Maria Novak works at Spotify.", "--quantized", "--json")
    assert int8.returncode == 0, int8.stderr
    assert len(entities(int8.stdout)) == 1
    run = str(tagging_run)
    for refused in (cli("predict", run, "some text", "--quantized"), cli("serve", run, "--quantized")):
        assert refused.returncode == 2 and "--quantized needs an exported folder" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert cli("predict", str(exported_run[0]), "some text", "--precision", "fp32").returncode == 0  # what it is
    for command in ("predict", "serve"):
        text = ["some text"] if command == "predict" else []
        refused = cli(command, str(exported_run[0]), *text, "--precision", "bf16")
        assert refused.returncode == 2 and refused.stderr.splitlines() == [
            f"training {command}: error: --precision bf16: {exported_run[0]} is an exported folder, which computes in "
            "fp32 (int8 with --quantized); --precision is for a run's torch model"
        ]
    scored = cli("evaluate", str(exported_run[0]), "--data-path", str(tagging_run))  # evaluate needs the torch model
    assert scored.returncode == 2 and scored.stderr.splitlines() == [
        f"training evaluate: error: {exported_run[0]}: an exported model folder; expected the run folder or model/ "
        "folder it came from"
    ]


def test_the_metadata_of_a_served_model_says_whether_it_is_the_int8_one(
    exported_run: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --quantized` answered the fp32 model's /metadata: nothing told a client which model tagged its texts."""
    pytest.importorskip("fastapi")
    from training.cli.serving import SETTINGS_VARIABLE, ServeSettings, app_from_settings

    for quantized in (False, True):
        settings = tmp_path / f"settings-{quantized}.json"
        settings.write_text(ServeSettings(model_dir=str(exported_run[0]), quantized=quantized).model_dump_json())
        monkeypatch.setenv(SETTINGS_VARIABLE, str(settings))
        routes = app_from_settings().routes
        (route,) = [route for route in routes if getattr(route, "path", "") == "/metadata" and "GET" in route.methods]
        metadata = asyncio.run(route.endpoint())
        assert metadata["quantized"] is quantized and metadata["precision"] == ("int8" if quantized else "fp32")


def test_export_quantize_prints_and_records_the_f1_change(exported_run: tuple[Path, str]) -> None:
    folder, printed = exported_run
    report = json.loads((folder / "export.json").read_text())["quantization"]
    assert report["split"] == "validation" and report["documents"] > 0
    assert report["onnx_f1"] == report["torch_f1"] > 0.0 and 0.0 <= report["int8_f1"] <= 1.0
    figures = f"{report['torch_f1']:.4f} / {report['onnx_f1']:.4f} / {report['int8_f1']:.4f}"
    assert figures in printed and f"{report['int8_f1'] - report['onnx_f1']:+.4f}" in printed


def test_a_broken_export_record_exits_2_with_one_line(exported_run: tuple[Path, str], cli, tmp_path: Path) -> None:
    record = json.loads((exported_run[0] / "export.json").read_text())
    (tmp_path / "export.json").write_text(json.dumps({**record, "stride": None}))
    completed = cli("predict", str(tmp_path), "text")
    assert completed.returncode == 2 and "export.json: stride:" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_an_export_keeps_its_runs_lineage_once_the_run_is_gone(cli, trained_run: Path, tmp_path: Path) -> None:
    # An export had no lineage.json: `training lineage` refused it and the service's metadata lost (or, with its
    # source trained again, misstated) the lineage once the run folder was moved away; the metadata's backbone and
    # window, read from the source run's config.yaml, still were.
    pytest.importorskip("fastapi")
    from training.cli.serving import model_metadata
    from training.core.exported import read_export
    from training.execution import Lineage

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    recorded = Lineage(run_id="final-1", config_fingerprint="c0", backbone="tiny-bert", python="3", created_at="now")
    recorded.save(run)
    assert cli("export", str(run), "--output", str(tmp_path / "onnx")).returncode == 0
    deployed = tmp_path / "deployed"
    (tmp_path / "onnx").rename(deployed)
    shutil.rmtree(run)
    shown = cli("lineage", str(deployed), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == recorded.model_dump(mode="json")
    record = read_export(deployed)
    metadata = model_metadata(deployed, record.tag_names, precision="fp32")
    assert metadata["lineage"] == recorded.summary()
    assert (metadata["backbone"], metadata["max_length"]) == ("tiny-bert", 64)


def test_an_export_without_lineage_inside_another_run_is_not_given_that_runs(
    cli, trained_run: Path, tmp_path: Path
) -> None:
    # The lineage of the run folder around an export was shown as the export's, though it came from another run.
    from training.execution import Lineage

    source = tmp_path / "source"
    shutil.copytree(trained_run, source)
    (source / "lineage.json").unlink()
    run = tmp_path / "final"
    shutil.copytree(trained_run, run)
    Lineage(run_id="final-1", config_fingerprint="c0", backbone="tiny-bert", python="3", created_at="now").save(run)
    inside = run / "onnx"
    assert cli("export", str(source), "--output", str(inside)).returncode == 0
    shown = cli("lineage", str(inside))
    assert shown.returncode == 2
    expected = f"{inside}: an exported folder without lineage.json: it was exported from a run without one"
    assert shown.stderr.strip() == f"training lineage: error: {expected}"
