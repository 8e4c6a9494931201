"""`write_report`: PNG plots, an index.html embedding them, the interactive page (plotly) and the trials table."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from training.hpo import trials_table, write_report

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")
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


def test_a_report_leaves_the_callers_matplotlib_backend_and_style_as_they_were(swept: tuple, tmp_path: Path) -> None:
    """A notebook calling `write_report` keeps its plots as they were: Optuna's plots set the ggplot style for the
    session, and the report switched the notebook's backend (inline) to Agg, which shows nothing."""
    import matplotlib
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    try:
        with matplotlib.rc_context():  # whatever the report leaves, the other tests do not see it
            plt.switch_backend("svg")  # a caller's backend other than Agg
            style = {key: value for key, value in matplotlib.rcParams.items() if key != "backend"}
            write_report(swept[0], tmp_path)

            assert (tmp_path / "history.png").read_bytes().startswith(PNG)
            assert matplotlib.get_backend() == "svg"
            assert {key: value for key, value in matplotlib.rcParams.items() if key != "backend"} == style
    finally:
        plt.switch_backend(previous)


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


class Scripts(HTMLParser):
    """The `src` of each `<script>` tag of a page (script bodies are not parsed as tags)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.sources: list[str | None] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.sources.append(dict(attrs).get("src"))


def figures_in(page: str) -> list[tuple[list[dict], dict]]:
    """(traces, layout) of each plotly figure of an HTML page, parsed back from its `Plotly.newPlot(...)` call."""
    decoder, figures, start = json.JSONDecoder(), [], 0
    while (start := page.find("Plotly.newPlot(", start)) >= 0:
        position = start + len("Plotly.newPlot(")
        values = []
        for _ in range(3):  # the div id, the traces, the layout
            while page[position] in " \n,":
                position += 1
            value, position = decoder.raw_decode(page, position)
            values.append(value)
        figures.append((values[1], values[2]))
        start = position
    return figures


def test_the_interactive_page_holds_every_plot_and_opens_offline(swept: tuple, tmp_path: Path) -> None:
    study, _ = swept
    write_report(study, tmp_path)
    page = (tmp_path / "interactive.html").read_text(encoding="utf-8")
    assert Scripts(page).sources and not any(Scripts(page).sources)  # no script is fetched: plotly.js is inlined
    assert page.count("Plotly.newPlot(") == 4 and len(page) > 1_000_000
    assert 'href="interactive.html"' in (tmp_path / "index.html").read_text(encoding="utf-8")
    history, importances, parallel, folds = figures_in(page)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    title = lambda layout, axis: layout[axis]["title"]["text"]  # noqa: E731

    traces, layout = history
    assert layout["title"]["text"] == "Optimisation history of entity_f1"
    assert (title(layout, "xaxis"), title(layout, "yaxis")) == ("trial (number)", "entity_f1 (score, 0 to 1)")
    assert traces[0]["x"] == [trial.number for trial in complete]
    assert traces[0]["y"] == pytest.approx([trial.value for trial in complete])
    assert traces[1]["y"][-1] == pytest.approx(study.best_value)

    traces, layout = importances
    assert layout["title"]["text"] == "Parameter importances for entity_f1 (fANOVA)"
    assert title(layout, "xaxis").startswith("importance (share of the variance")
    assert set(traces[0]["y"]) == {"training.learning_rate", "training.batch_size"}
    assert sum(traces[0]["x"]) == pytest.approx(1.0)

    traces, layout = parallel
    assert layout["title"]["text"] == "Parameters of the complete trials against entity_f1"
    dimensions = {dimension["label"]: dimension for dimension in traces[0]["dimensions"]}
    assert dimensions["entity_f1 (score, 0 to 1)"]["values"] == pytest.approx([trial.value for trial in complete])
    assert dimensions["training.batch_size"]["ticktext"] == ["4", "8"]  # a choice: its values, in order
    batch_sizes = [["4", "8"].index(str(trial.params["training.batch_size"])) for trial in complete]
    assert dimensions["training.batch_size"]["values"] == batch_sizes
    learning_rates = [math.log10(trial.params["training.learning_rate"]) for trial in complete]
    assert dimensions["log10 training.learning_rate"]["values"] == pytest.approx(learning_rates)

    traces, layout = folds
    assert layout["title"]["text"] == "Spread of entity_f1 over the folds"
    assert title(layout, "yaxis") == "fold entity_f1 (score, 0 to 1)"
    assert [trace["y"] for trace in traces] == [trial.user_attrs["fold_values"] for trial in complete]


def test_the_interactive_page_of_a_study_without_complete_trials_says_why(tmp_path: Path) -> None:
    empty = optuna.create_study(study_name="empty", storage=f"sqlite:///{tmp_path / 'empty.db'}")
    write_report(empty, tmp_path / "report")
    page = (tmp_path / "report" / "interactive.html").read_text(encoding="utf-8")
    assert page.count("Skipped: no complete trial yet") == 4 and "Plotly.newPlot(" not in page


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("values", [[0.5], [0.5, 0.7, 0.6], [0.5, 0.5, 0.5]])
def test_a_parameter_or_objective_the_same_in_every_trial_is_reported_without_warnings(values, tmp_path: Path) -> None:
    """One batch size in every trial gave matplotlib's "identical low and high ylims" warning; one objective value
    optuna's "importances will be equal"."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    study = optuna.create_study(direction="maximize")
    distributions = {"lr": FloatDistribution(1e-5, 1e-3, log=True), "batch_size": CategoricalDistribution([8, 16])}
    for number, value in enumerate(values):
        params = {"lr": 1e-5 * (number + 1), "batch_size": 8}
        folds = {"fold_values": [value, value]}
        study.add_trial(create_trial(value=value, params=params, distributions=distributions, user_attrs=folds))
    write_report(study, tmp_path)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert (tmp_path / "parallel.png").is_file() == (len(set(values)) > 1)  # params and objective must vary
    assert ("Skipped: needs complete trials with different objective values" in page) == (values == [0.5] * 3)


def test_a_running_trial_whose_process_was_killed_is_shown_as_such_and_left_running(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from training.hpo.recovery import process_identity
    from training.hpo.trial_record import TrialRecord

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="killed", storage=url)
    worker = f"""
import time, optuna
from training.hpo.recovery import process_identity
from training.hpo.trial_record import TrialRecord
TrialRecord.write(optuna.load_study(study_name="killed", storage="{url}").ask(), owner=process_identity())
print("running", flush=True)
time.sleep(600)
"""
    process = subprocess.Popen([sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "running\n"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    TrialRecord.write(study.ask(), owner=process_identity())  # this process: alive
    states = [re.split(r"\s{2,}", line)[1] for line in trials_table(study).splitlines()[1:3]]
    assert states == ["running (worker gone)", "running"]
    assert "worker gone: the trial's process died; `training hpo resume`" in trials_table(study)
    assert [trial.state for trial in study.trials] == [TrialState.RUNNING, TrialState.RUNNING]  # a report only reads


def test_the_png_figures_name_the_metric_and_its_unit_as_the_interactive_page_does(swept: tuple) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from training.hpo.report import study_plots

    study, _ = swept
    drawn = {heading: draw() for heading, _, draw, note in study_plots(study, "entity_f1") if note is None}
    labels = {heading: (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) for heading, axes in drawn.items()}
    score = "entity_f1 (score, 0 to 1)"
    assert labels == {
        "Optimisation history": ("Optimisation history of entity_f1", "trial (number)", score),
        "Parameter importances": (
            "Parameter importances for entity_f1 (fANOVA)",
            "importance (share of the variance of the metric, 0 to 1)",
            "hyperparameter",
        ),
        "Parallel coordinates": ("Parameters of the complete trials against entity_f1", "", ""),
        "Fold values per trial": ("Spread of entity_f1 over the folds", "trial (number)", f"fold {score}"),
    }
    parallel = drawn["Parallel coordinates"]
    assert parallel.get_xticklabels()[0].get_text() == score  # the objective's axis
    texts = {text.get_text() for axes in drawn.values() for text in axes.figure.findobj(Text)}
    assert not {text for text in texts if "Objective" in text or "Hyperparameter" in text or "Plot" in text}
    plt.close("all")


def test_a_figure_that_cannot_be_drawn_is_named_and_leaves_the_earlier_report_as_it_was(tmp_path: Path) -> None:
    """A parameter drawn as a number in some trials and as a choice in others (a study whose search space was
    changed) breaks optuna's parallel coordinates: history.png and importances.png were already replaced then, and
    index.html and interactive.html were left from the earlier report."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    from training.common.errors import TrainingError

    number, choice = FloatDistribution(1e-5, 1e-3, log=True), CategoricalDistribution(["a", "b"])
    study = optuna.create_study(direction="maximize")
    for value, lr in [(0.5, 1e-4), (0.7, 2e-4)]:
        study.add_trial(create_trial(value=value, params={"lr": lr}, distributions={"lr": number}))
    write_report(study, tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    study.add_trial(create_trial(value=0.6, params={"lr": "a"}, distributions={"lr": choice}))
    cannot = r"^report figure 'Parallel coordinates' could not be drawn \(.+\); no file of the report was written$"
    with pytest.raises(TrainingError, match=cannot):
        write_report(study, tmp_path)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_a_trial_record_a_figure_cannot_read_is_named_as_it_is(tmp_path: Path) -> None:
    """A journal file edited by hand: the fold figure said it 'could not be drawn (1 validation error for
    TrialRecord)', exit 1."""
    from optuna.trial import create_trial

    from training.common.errors import ConfigError

    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.5, user_attrs={"fold_values": [0.4, 0.6], "trial_seconds": "x"}))
    with pytest.raises(ConfigError, match=r"^trial 0: user attributes: trial_seconds: expected a valid number"):
        write_report(study, tmp_path)


def test_the_importances_on_both_pages_are_the_fanova_ones_their_titles_name(swept: tuple, tmp_path: Path) -> None:
    """optuna's default evaluator is PED-ANOVA (not a share of the variance): the figures said fANOVA and drew it."""
    import matplotlib.pyplot as plt

    from training.hpo.report import study_plots

    study, _ = swept
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    fanova = optuna.importance.get_param_importances(study, evaluator=evaluator)
    write_report(study, tmp_path)
    traces, _ = figures_in((tmp_path / "interactive.html").read_text(encoding="utf-8"))[1]
    assert dict(zip(traces[0]["y"], traces[0]["x"], strict=True)) == pytest.approx(fanova)
    draw = next(draw for heading, _, draw, _ in study_plots(study, "entity_f1") if heading == "Parameter importances")
    bars = sorted(patch.get_width() for patch in draw().patches)
    assert bars == pytest.approx(sorted(fanova.values()))
    plt.close("all")


def test_the_fold_spread_of_hundreds_of_trials_stays_a_page_wide() -> None:
    """The figure grew 0.6 inch a trial: 300 trials drew a PNG 18,000 pixels wide, which a page shrinks to a line."""
    import matplotlib.pyplot as plt
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from training.hpo.report import study_plots

    study = optuna.create_study(direction="maximize")
    lr, folds = {"lr": FloatDistribution(1e-5, 1e-3, log=True)}, {"fold_values": [0.4, 0.6]}
    study.add_trials(
        create_trial(value=0.5, params={"lr": 1e-5 * (1 + n % 50)}, distributions=lr, user_attrs=folds)
        for n in range(300)
    )
    (_, _, draw, note), *_ = [plot for plot in study_plots(study, "entity_f1") if plot[1] == "folds.png"]
    axes = draw()
    width, _ = axes.figure.get_size_inches() * axes.figure.dpi
    assert note is None and width <= 1400
    assert 0 < len(axes.get_xticks()) <= 20 and axes.get_xlabel() == "trial (number)"
    plt.close("all")


def test_a_conditional_number_is_inactive_below_its_axis_not_a_value_it_may_take() -> None:
    """plotly.js draws a NaN of parallel coordinates at 0: a trial without momentum showed momentum 0."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    from training.hpo.interactive_report import study_figures

    distributions = {
        "opt": CategoricalDistribution(["adam", "sgd"]),
        "momentum": FloatDistribution(0.0, 0.99),
        "decay": FloatDistribution(1e-5, 1e-1, log=True),
    }
    study = optuna.create_study(direction="maximize")
    for value, params in [
        (0.5, {"opt": "adam"}),
        (0.6, {"opt": "sgd", "momentum": 0.5, "decay": 1e-3}),
        (0.7, {"opt": "sgd", "momentum": 0.9, "decay": 1e-2}),
    ]:
        study.add_trial(create_trial(value=value, params=params, distributions={k: distributions[k] for k in params}))
    _, _, (_, parallel, _), _ = study_figures(study, "entity_f1")  # history, importances, parallel, folds
    dimensions = {dimension.label: dimension for dimension in parallel.data[0].dimensions}
    for label, drawn in [("momentum", [0.5, 0.9]), ("log10 decay", [-3.0, -2.0])]:
        inactive, *values = dimensions[label]["values"]
        assert values == pytest.approx(drawn) and inactive < min(drawn)
        assert dimensions[label]["ticktext"][0] == "inactive" and dimensions[label]["tickvals"][0] == inactive
    assert list(dimensions["opt"]["ticktext"]) == ["adam", "sgd"]  # a choice every trial drew: no "inactive"


def test_a_report_fits_fanova_once_for_both_of_its_pages(
    swept: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each page fitted its own forest: twice the time on a study of hundreds of trials, for the same figure."""
    fits = []
    evaluate = optuna.importance.FanovaImportanceEvaluator.evaluate

    def counted_evaluate(self, *args, **kwargs):  # the real fit, counted
        fits.append(args)
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(optuna.importance.FanovaImportanceEvaluator, "evaluate", counted_evaluate)
    write_report(swept[0], tmp_path)
    assert len(fits) == 1 and (tmp_path / "importances.png").is_file()


def test_a_table_of_the_latest_trials_counts_those_left_out() -> None:
    """`hpo report`, `run` and `resume` printed every row: a study of 3,000 trials scrolled 3,000 lines by."""
    from optuna.trial import create_trial

    study = optuna.create_study(direction="maximize")
    study.add_trials(create_trial(value=0.5, user_attrs={"fold_values": [0.4, 0.6]}) for _ in range(25))
    lines = trials_table(study, latest=20).splitlines()
    assert [line.split()[0] for line in lines[1:21]] == [str(number) for number in range(5, 25)]
    left_out = "5 earlier trials left out; the report's trials.txt (`training hpo report`) lists every trial"
    assert lines[21:] == [left_out]
    assert len(trials_table(study).splitlines()) == 1 + 25


def test_the_fold_values_of_every_trial_are_drawn_as_one_set_of_points() -> None:
    """A scatter call per trial rescaled the axes over all the earlier ones: 1,800 trials took 15 s to draw."""
    import matplotlib.pyplot as plt
    from optuna.trial import create_trial

    from training.hpo.report import study_plots

    study = optuna.create_study(direction="maximize")
    folds = [[0.3 + n / 100, 0.6] for n in range(30)]
    study.add_trials(create_trial(value=sum(f) / 2, user_attrs={"fold_values": f}) for f in folds)
    draw = next(draw for _, name, draw, _ in study_plots(study, "entity_f1") if name == "folds.png")
    (points,) = draw().collections
    assert points.get_offsets().tolist() == [[n, value] for n, values in enumerate(folds) for value in values]
    plt.close("all")


def test_the_importances_of_many_trials_come_from_trees_of_fanova_depth() -> None:
    """optuna's trees grow 64 levels deep: its fANOVA of 1,800 trials took 50 s, about the square of the trials."""
    import random

    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from training.hpo.interactive_report import FANOVA_DEPTH, importance_evaluator

    rng, space = random.Random(0), {"lr": FloatDistribution(0.0, 1.0), "decay": FloatDistribution(0.0, 1.0)}
    study = optuna.create_study(direction="maximize")
    for _ in range(300):
        params = {"lr": rng.random(), "decay": rng.random()}
        value = params["lr"] ** 2 + 0.3 * params["decay"] + rng.gauss(0, 0.1)
        study.add_trial(create_trial(value=value, params=params, distributions=space))
    cut = optuna.importance.FanovaImportanceEvaluator(seed=0, max_depth=FANOVA_DEPTH)
    expected = optuna.importance.get_param_importances(study, evaluator=cut)
    assert optuna.importance.get_param_importances(study, evaluator=importance_evaluator()) == pytest.approx(expected)
