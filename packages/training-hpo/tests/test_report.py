"""`write_report`: PNG plots, an index.html embedding them, and the trials table."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from training.hpo import trials_table, write_report

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_report_of_a_finished_study(swept: tuple, tmp_path: Path) -> None:
    study, _ = swept
    table = write_report(study, tmp_path)
    for name in ("history.png", "importances.png", "parallel.png", "folds.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG), name
        assert f'<img src="{name}"' in (tmp_path / "index.html").read_text()
    lines = table.splitlines()
    header = ["trial", "state", "objective", "cv", "std", "folds", "device", "parameters", "fail", "reason"]
    assert lines[0].split() == header
    assert len(lines) == 1 + len(study.trials)
    best = study.best_trial
    assert any(line.startswith(f"{best.number} ") and f"{best.value:.4f}" in line for line in lines[1:])
    assert "training.learning_rate=" in lines[1]
    assert (tmp_path / "trials.txt").read_text() == table == trials_table(study)


def test_importances_are_skipped_with_a_note_below_two_complete_trials(swept: tuple, tmp_path: Path) -> None:
    study, _ = swept
    single = optuna.create_study(
        study_name="single", storage=f"sqlite:///{tmp_path / 'single.db'}", direction="maximize"
    )
    single.add_trial(study.trials[0])
    write_report(single, tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Skipped: needs at least 2 complete trials; the study has 1" in page
    assert not (tmp_path / "report" / "importances.png").exists()
    assert (tmp_path / "report" / "history.png").read_bytes().startswith(PNG)
