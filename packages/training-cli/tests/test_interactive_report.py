"""A run's interactive report: learning curves, F1 per entity and the confusion as plotly figures on one offline
page, each titled and labelled with units and the run's metric."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest

from training.cli.interactive_report import run_figures
from training.core.run_folder import RunFolder

pytest.importorskip("plotly")


@pytest.mark.slow
def test_the_report_command_writes_an_offline_interactive_page(cli, trained_run: Path, tmp_path: Path) -> None:
    reported = cli("report", str(trained_run), "--output", str(tmp_path / "report"))
    assert reported.returncode == 0, reported.stderr
    page = (tmp_path / "report" / "interactive.html").read_text(encoding="utf-8")
    assert "window.PlotlyConfig" in page and len(page) > 1_000_000  # plotly.js is inlined: the page opens offline
    assert page.count("Plotly.newPlot(") == 3  # curves, F1 per entity, confusion (the run's data is found)
    for title in ("Learning curves (checkpoints chosen by entity_f1)", "Entity types per word: gold against predicted"):
        assert title in page
    static = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert '<a href="interactive.html">' in static and '<img src="learning_curves.png"' in static
    assert re.search(r"entity_f1 +\d\.\d{4}", static)  # the best scores, in the page's table
    assert (tmp_path / "report" / "learning_curves.png").is_file()  # the PNGs stay


def test_the_figures_carry_the_run_s_numbers_titles_and_units(trained_run: Path) -> None:
    record = RunFolder(trained_run).read_metrics()
    assert record is not None and record.best is not None
    history, best = record.history, record.best
    confusion = {"PERSON": Counter({"PERSON": 3, "O": 1}), "O": Counter({"O": 20})}
    (_, curves, _), (_, entities, _), (_, matrix, _) = run_figures(history, best.per_entity, confusion, "macro_f1", "")

    assert curves.layout.title.text == "Learning curves (checkpoints chosen by macro_f1)"
    assert curves.layout.xaxis.title.text == "optimizer step (count)"
    assert (curves.layout.yaxis.title.text, curves.layout.yaxis2.title.text) == (
        "score (0 to 1)",
        "loss (cross-entropy, nats)",
    )
    by_name = {trace.name: trace for trace in curves.data}
    assert next(iter(by_name)) == "macro_f1"  # the run's metric first
    assert list(by_name["entity_f1"].y) == [entry.entity_f1 for entry in history]
    assert list(by_name["loss"].x) == [entry.step for entry in history]

    assert entities.layout.title.text == "F1 per entity type at the best checkpoint by macro_f1"
    assert (entities.layout.xaxis.title.text, entities.layout.yaxis.title.text) == ("entity type", "F1 (0 to 1)")
    labels = sorted(best.per_entity)
    assert list(entities.data[0].x) == labels
    assert list(entities.data[0].y) == [best.per_entity[label].f1 for label in labels]

    assert list(matrix.data[0].x) == ["O", "PERSON"]
    assert [list(row) for row in matrix.data[0].text] == [[20, 0], [1, 3]]
    assert list(matrix.data[0].z[1]) == [0.25, 0.75]
    assert matrix.layout.yaxis.title.text == "gold type (words, counts in cells)"


def test_missing_parts_are_skipped_with_a_note() -> None:
    sections = run_figures([], {}, None, "entity_f1", "needs the run's data (pass --data-path)")
    assert [(heading, figure) for heading, figure, _ in sections] == [
        ("Learning curves", None),
        ("F1 per entity type", None),
        ("Confusion of entity types", None),
    ]
    assert sections[2][2] == "needs the run's data (pass --data-path)"


def test_the_png_curves_name_the_metric_and_leave_an_unrecorded_loss_as_a_gap(trained_run: Path) -> None:
    pytest.importorskip("matplotlib").use("Agg")
    from training.cli.report import _learning_curves

    record = RunFolder(trained_run).read_metrics()
    assert record is not None
    history = [record.history[0].model_copy(update={"loss": None}), *record.history[1:]]
    left, right = _learning_curves(history, "macro_f1").axes
    assert left.get_title() == "validation scores (checkpoints chosen by macro_f1)"
    assert left.get_legend_handles_labels()[1][0] == "macro_f1"  # the run's metric first
    assert (left.get_ylabel(), right.get_ylabel()) == ("score (0 to 1)", "loss (cross-entropy, nats)")
    losses = list(right.lines[0].get_ydata())
    assert math.isnan(losses[0]) and losses[1:] == [entry.loss for entry in history[1:]]  # a gap, not a zero loss


def test_a_report_folder_that_is_or_lies_inside_a_file_is_an_input_error(trained_run: Path, tmp_path: Path) -> None:
    from training.cli.report import write_run_report
    from training.common.errors import InputError

    file = tmp_path / "notes.txt"
    file.write_text("kept")
    for out_dir, message in [(file, "is a file"), (file / "sub", f"lies inside the file {file}")]:
        with pytest.raises(InputError, match=f"^{re.escape(str(out_dir))}: {re.escape(message)}; expected a folder"):
            write_run_report(trained_run, out_dir)
    with pytest.raises(InputError, match="is a file; expected a folder"):  # before a whole evaluation on the data
        write_run_report(trained_run, file, str(tmp_path / "gone"))
    assert file.read_text() == "kept"


def test_a_run_without_history_gets_no_empty_curves_and_the_page_says_why(trained_run: Path, tmp_path: Path) -> None:
    import warnings

    from training.cli.report import write_run_report

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)  # no model: the report reads the metrics alone
    folder = RunFolder(run)
    record = RunFolder(trained_run).read_metrics()
    assert record is not None
    folder.write_metrics(record.model_copy(update={"history": ()}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend"
        write_run_report(run, tmp_path / "report")
    assert not (tmp_path / "report" / "learning_curves.png").exists()
    assert (tmp_path / "report" / "entity_f1.png").is_file()
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Learning curves</h2><p><em>Skipped: no evaluation yet</em>" in page  # as on the interactive page
    assert '<img src="entity_f1.png"' in page


def test_an_interrupted_run_s_page_names_each_plot_it_leaves_out(tmp_path: Path) -> None:
    """A run stopped before its first evaluation: index.html says what is missing and why, not 'best epoch None'."""
    pytest.importorskip("matplotlib")
    from training.cli.report import write_run_report
    from training.common.errors import InputError
    from training.core.run_metrics import RunMetrics

    run = tmp_path / "run"
    run.mkdir()
    RunFolder(run).write_metrics(RunMetrics(status="running", config_fingerprint="c", dataset_fingerprint="d"))
    no_model = rf"^{re.escape(str(run))}: no model folder \(model/\) to compute the entity-type confusion on data"
    with pytest.raises(InputError, match=no_model):  # the data it was told to use was left unread, and said so
        write_run_report(run, tmp_path / "report", "data")
    assert not (tmp_path / "report").exists()
    page = write_run_report(run, tmp_path / "report").read_text(encoding="utf-8")
    assert "Run unfinished (metrics.json: running; training still, or stopped), no best checkpoint yet." in page
    assert "None" not in page
    assert page.count("<em>Skipped: ") == 3 and "Skipped: the run has no model/ folder" in page  # not: pass data
    assert sorted(path.name for path in (tmp_path / "report").iterdir()) == ["index.html", "interactive.html"]
