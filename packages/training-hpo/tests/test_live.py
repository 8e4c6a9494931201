"""Watching a sweep: JSON lines events and plain lines from real small sweeps through `training hpo run`, and the
live view rendered on a recording terminal from those events."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from training.config import HPOConfig
from training.hpo import load_study, run_local_hpo_sweep
from training.hpo.events import (
    EpochDone,
    SweepStarted,
    TrialFinished,
    TrialProgress,
    TrialStarted,
    parse_event,
    sweep_finished,
)
from training.hpo.failures import SweepStopped
from training.hpo.live import LiveView
from training.hpo.watch import PlainView, SweepState, describe

OPTUNA_TRIAL_LINE = "finished with value"


def training(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "training.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def json_sweep(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, dict, str]:
    """(events, outcome, stderr) of `training hpo run --json`, trials in their own processes."""
    study_dir = tmp_path_factory.mktemp("json") / "study"
    run = training(
        "hpo", "run", "--config-dir", config_dir, "--hpo", "quick", "--study-dir", study_dir, "--n-trials", "2",
        "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    *lines, last = run.stdout.splitlines()
    return [parse_event(line) for line in lines], json.loads(last), run.stderr


@pytest.mark.slow
def test_json_lines_tell_every_step_of_a_real_sweep(json_sweep: tuple[list, dict, str]) -> None:
    events, outcome, stderr = json_sweep
    kinds = [event.kind for event in events]
    assert kinds[0] == "sweep_started" and kinds[-1] == "sweep_finished"
    start = events[0]
    assert (start.study, start.metric, start.n_trials, start.finished) == ("quick", "entity_f1", 2, 0)
    assert [event.trial for event in events if isinstance(event, TrialStarted)] == [0, 1]
    # step progress crossed the pipe from the trial processes: both folds of both trials, up to the last step
    progress = [event for event in events if isinstance(event, TrialProgress)]
    assert {(event.trial, event.fold) for event in progress} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert all(event.folds == 2 and event.epochs == 1 for event in progress)
    assert any(event.step == event.steps > 0 for event in progress)
    epochs = [event for event in events if isinstance(event, EpochDone)]
    assert [(event.trial, event.fold, event.epoch) for event in epochs] == [(0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1)]
    finished = [event for event in events if isinstance(event, TrialFinished)]
    assert [(event.trial, event.state) for event in finished] == [(0, "complete"), (1, "complete")]
    values = {trial["number"]: trial["value"] for trial in outcome["trials"]}
    assert [event.value for event in finished] == [values[0], values[1]]
    best = max(values, key=lambda number: values[number])
    assert (finished[-1].best_trial, finished[-1].best_value) == (best, values[best])
    assert events[-1].complete == 2 and events[-1].best_trial == best
    assert OPTUNA_TRIAL_LINE not in stderr  # Optuna's own per-trial lines are replaced by the events


@pytest.mark.slow
def test_plain_lines_of_a_real_sweep_in_a_log(config_dir: Path, tmp_path: Path) -> None:
    run = training(
        "hpo", "run", "--config-dir", config_dir, "--hpo", "quick", "--study-dir", tmp_path / "study", "--n-trials",
        "2", "--inprocess",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "study quick: maximize entity_f1; budget 2 trials; 0 trials finished before; 1 at a time" in lines[0]
    text = run.stdout
    for expected in (
        "] trial 0 started: learning_rate=",
        "] trial 0 fold 0 epoch 1: entity_f1 ",
        "] trial 0 fold 1 done: mean entity_f1 of its folds so far ",
        "] trial 1 complete: entity_f1 ",
        "; best so far: trial ",
        "] sweep stopped: 2 complete, 0 pruned, 0 failed; best trial ",
    ):
        assert expected in text, text
    assert "\x1b[" not in text  # no terminal codes in a log
    assert OPTUNA_TRIAL_LINE not in run.stderr


@pytest.mark.slow
def test_the_live_view_shows_running_and_finished_trials(json_sweep: tuple[list, dict, str]) -> None:
    events = json_sweep[0]
    # replay up to trial 1's first validated epoch: trial 0 is finished, trial 1 is running
    cut = next(i for i, event in enumerate(events) if isinstance(event, EpochDone) and event.trial == 1)
    view = LiveView()
    for event in events[: cut + 1]:
        view.emit(event)
    console = Console(record=True, force_terminal=True, width=200)
    console.print(view.render(now=events[cut].time))
    screen = console.export_text()
    first = next(event for event in events if isinstance(event, TrialFinished))
    assert "study quick" in screen and "maximize entity_f1" in screen and "1/2 trials" in screen
    running = screen[screen.index("running") : screen.index("finished")]
    assert "1/2" in running and f"{events[cut].value:.4f}" in running and "learning_rate=" in running
    finished = screen[screen.index("finished") :]
    assert re.search(rf"│\s+0 │ complete\s+│\s+{first.value:.4f} │", finished), finished
    assert f"best so far: trial 0, entity_f1 {first.value:.4f}" in screen
    assert "left ~" in screen and "left ~?" not in screen  # trial 0's time estimates what is left

    recording = Console(record=True, force_terminal=True, width=200)
    with LiveView.on(console=recording) as live:
        for event in events:
            live.emit(event)
    final = recording.export_text()
    assert "running" not in final.split("finished")[-1] and "2/2 trials" in final


def test_the_live_view_prints_reasons_and_values_as_written_not_as_markup() -> None:
    view = LiveView()
    view.emit(SweepStarted(study="s", metric="m", direction="maximize", n_trials=3, timeout_s=None, parallel=1,
                           finished=0, time=0))  # fmt: skip
    view.emit(TrialStarted(trial=1, params={"model.pooling": "[/first]"}, time=0))
    reason = "ValueError: [/bold] is no [red]style[/red]"
    view.emit(TrialFinished(trial=0, state="fail", value=None, cv_std=None, params={"x": "[b]"}, reason=reason))
    console = Console(record=True, force_terminal=True, width=200)
    console.print(view.render(now=1))  # rich raised MarkupError on the stray closing tag
    screen = console.export_text()
    assert reason in screen and "pooling=[/first]" in screen and "x=[b]" in screen


def test_plain_lines_of_pruned_and_failed_trials_say_why() -> None:
    view_lines: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            view_lines.append(text)

        def flush(self) -> None:
            pass

    view = PlainView(Lines())  # type: ignore[arg-type]
    start = SweepStarted(
        study="s", metric="loss", direction="minimize", n_trials=None, timeout_s=90, parallel=2, finished=3, time=0
    )
    view.emit(start)
    view.emit(TrialFinished(trial=4, state="pruned", value=None, cv_std=None, params={}, reason="pruned after fold 0"))
    view.emit(TrialFinished(trial=5, state="fail", value=None, cv_std=None, params={}, reason="CUDA out of memory"))
    expected = "study s: minimize loss; budget 1:30 of training; 3 trials finished before; 2 at a time\n"
    assert view_lines[0].endswith(expected)
    assert view_lines[1].endswith("trial 4 pruned: pruned after fold 0; best so far: none yet\n")
    assert view_lines[2].endswith("trial 5 failed: CUDA out of memory; best so far: none yet\n")
    assert describe(TrialProgress(trial=0, fold=0, folds=1, epoch=1, epochs=1, step=1, steps=2, loss=None), "x") is None


def test_a_sweep_that_stops_beside_a_running_trial_says_so() -> None:
    # A trial whose worker died before recording its owner fills the budget for a minute: a resume then ran nothing
    # and said only "sweep stopped: 1 complete".
    import optuna

    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.5)
    study.ask()  # running, in no process of this one
    event = sweep_finished(study)
    assert (event.complete, event.running) == (1, 1)
    line = "sweep stopped: 1 complete, 0 pruned, 0 failed, 1 running elsewhere or cut short; best trial 0: x 0.5000"
    assert describe(event, "x") == line
    assert parse_event(event.model_dump_json()) == event


def test_time_left_comes_from_the_trials_and_the_time_budget() -> None:
    state = SweepState()
    state.apply(SweepStarted(study="s", metric="m", direction="maximize", n_trials=4, timeout_s=None, parallel=1,
                             finished=0, time=0))  # fmt: skip
    assert state.time_left(now=5) is None  # nothing tells yet
    state.apply(TrialStarted(trial=0, params={}, time=0))
    state.apply(TrialProgress(trial=0, fold=0, folds=2, epoch=1, epochs=1, step=5, steps=10, loss=0.5, time=10))
    assert state.time_left(now=10) == pytest.approx(30 + 3 * 40)  # a quarter done in 10 s: 40 s a trial
    state.apply(TrialFinished(trial=0, state="complete", value=0.5, cv_std=0.1, params={}, seconds=20, time=20))
    assert state.time_left(now=20) == pytest.approx(3 * 20)
    timed = SweepState()
    timed.apply(SweepStarted(study="s", metric="m", direction="maximize", n_trials=None, timeout_s=100, parallel=1,
                             finished=0, time=0))  # fmt: skip
    assert timed.time_left(now=30) == pytest.approx(70)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"kind": "trial_exploded", "trial": 1}', "trial_exploded"),
        ('{"kind": "epoch_done", "trial": 1, "fold": 0, "epoch": 1}', "value"),
        ('{"kind": "trial_started", "trial": 1, "params": {}, "colour": "red"}', "colour"),
    ],
)
def test_a_bad_event_line_is_refused_naming_what_is_wrong(line: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        parse_event(line)


@pytest.mark.slow
def test_failed_trials_of_a_real_sweep_say_why_in_the_log(
    quick_settings: Callable[..., HPOConfig], config_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "cache").write_text("not a folder: every trial process fails writing its features\n")
    log = io.StringIO()
    hpo = quick_settings("broken", n_trials=3, max_failed_trials=2)
    with pytest.raises(SweepStopped):
        run_local_hpo_sweep("tiny-bert", hpo, config_dir=config_dir, study_dir=tmp_path, events=PlainView(log))
    lines = [line.split("] ", 1)[1] for line in log.getvalue().splitlines()]
    reason = load_study(tmp_path).trials[0].user_attrs["fail_reason"]
    assert lines[0].startswith("study broken: maximize entity_f1; budget 3 trials;")
    assert lines[1].startswith("trial 0 started: learning_rate=")
    assert lines[2] == f"trial 0 failed: {reason}; best so far: none yet"
    assert lines[-1] == "sweep stopped: 0 complete, 0 pruned, 2 failed; no complete trial"
