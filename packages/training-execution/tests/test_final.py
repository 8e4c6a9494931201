"""`execute_final_training`: the guide's example, the refit's data plan, reuse, force, dry runs and bad input."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from data.loaders import Dataset, load_dataset
from data.report import LoadReport
from training.common.errors import ConfigError, DataError, ExecutionError, InputError
from training.config import BestConfig, DataColumns, ExecutionConfig, TrainingConfig
from training.core.run_folder import RunFolder
from training.core.run_metrics import RunMetrics
from training.execution import JobSpec, Lineage, execute_final_training, extract_lineage_from_best_model
from training.execution.provenance import package_versions


def test_final_training_example_from_the_guide(
    best_config: BestConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    best_config.save(tmp_path / "best_config.json")

    with caplog.at_level("INFO", logger="training"):
        job = execute_final_training(tmp_path / "best_config.json", output_dir=tmp_path / "final")
    lineage = extract_lineage_from_best_model(job)

    assert job.status == "completed" and job.output_dir == tmp_path / "final"
    for name in ("config.yaml", "metrics.json", "model/model.safetensors", "lineage.json", "job.json", "train.log"):
        assert (job.output_dir / name).exists(), name
    assert lineage.study.trial_number == 7 and lineage.study.study_name == "ner-sweep"
    assert lineage.hyperparameters == {
        "training.learning_rate": 3e-4,
        "training.batch_size": 4,
        "training.num_epochs": 2,
    }
    assert lineage.model_path == str(job.model_dir)
    report = LoadReport.model_validate(json.loads((job.output_dir / "metrics.json").read_text())["load_report"])
    assert report.source.endswith("ner") and set(report.documents) == {"train", "validation", "test"}
    assert [message.endswith(report.lines()[0]) for message in caplog.messages].count(True) == 1  # it was logged twice


def test_a_finished_run_is_reused_and_force_trains_again(best_config: BestConfig, tmp_path: Path) -> None:
    first = execute_final_training(best_config, output_dir=tmp_path / "run")
    metrics = first.output_dir / "metrics.json"
    stamp, lineage = metrics.stat().st_mtime_ns, (first.output_dir / "lineage.json").read_text()

    again = execute_final_training(best_config, output_dir=tmp_path / "run")
    assert again.id == first.id and metrics.stat().st_mtime_ns == stamp
    assert (first.output_dir / "lineage.json").read_text() == lineage
    # as an older release wrote it: a forced refit (after an upgrade, say) must not keep that record
    older = Lineage.model_validate_json(lineage).model_copy(update={"packages": {"training-core": "0.0.1"}})
    older.save(first.output_dir)

    forced = execute_final_training(best_config, output_dir=tmp_path / "run", force=True)
    assert forced.id == first.id and metrics.stat().st_mtime_ns > stamp
    assert extract_lineage_from_best_model(forced).packages == package_versions()
    assert json.loads((tmp_path / "run" / "job.json").read_text())["resume"] is False


def test_a_launch_that_reuses_a_finished_run_keeps_the_record_of_the_job_that_trained_it(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # The reusing launch rewrote job.json as its own (its backend, its code revision) beside the lineage of the
    # launch that trained the run; both in the launcher and in the child's runner.
    first = execute_final_training(best_config, output_dir=tmp_path / "run", code_dir=tmp_path)  # no git revision
    kept = {path: path.read_bytes() for path in first.output_dir.rglob("*") if path.is_file()}
    execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess", dry_run=True)
    again = execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess")
    assert again.id == first.id and {path: path.read_bytes() for path in kept} == kept
    spec = JobSpec.load(tmp_path / "run" / "job.json")
    assert spec.resources.backend == "local" and spec.code_revision is None  # a forced launch's is its own: see above


def test_a_finished_run_moved_to_another_folder_is_reused_there(best_config: BestConfig, tmp_path: Path) -> None:
    # Its job.json, kept, named the folder it was trained in: the runner trained the job anew there.
    execute_final_training(best_config, output_dir=tmp_path / "trained")
    (tmp_path / "trained").rename(tmp_path / "run")
    again = execute_final_training(best_config, output_dir=tmp_path / "run", backend="subprocess")
    assert RunFolder(again.output_dir).read_metrics() is not None and not (tmp_path / "trained").exists()
    assert JobSpec.load(tmp_path / "run" / "job.json").output_dir == str(tmp_path / "run")


def test_a_run_of_another_process_count_is_not_reused_as_this_one(best_config: BestConfig, tmp_path: Path) -> None:
    # A one-process run was returned as the two-process job asked for, and job.json rewritten to say two processes.
    first = execute_final_training(best_config, output_dir=tmp_path / "run")
    kept = {path: path.read_bytes() for path in first.output_dir.rglob("*") if path.is_file()}
    refused = rf"^{tmp_path / 'run'}: holds the run of job {first.id} on 1 process\(es\), not 2; "
    with pytest.raises(InputError, match=refused):
        execute_final_training(best_config, output_dir=tmp_path / "run", backend="torchrun", nproc_per_node=2)
    assert {path: path.read_bytes() for path in first.output_dir.rglob("*") if path.is_file()} == kept
    again = execute_final_training(best_config, output_dir=tmp_path / "run", backend="torchrun", nproc_per_node=1)
    assert again.id == first.id and JobSpec.load(tmp_path / "run" / "job.json").resources.backend == "local"
    (first.output_dir / "metrics.json").unlink()  # as a run cut short leaves it: a checkpoint, no metrics
    (first.output_dir / "checkpoint").mkdir()
    with pytest.raises(InputError, match=refused):
        execute_final_training(best_config, output_dir=tmp_path / "run", backend="torchrun", nproc_per_node=2)


def test_a_launch_that_never_began_training_leaves_its_folder_free(best_config: BestConfig, tmp_path: Path) -> None:
    # A typo in the data path left only the failed job's job.json, which refused the corrected launch as another job.
    data = Path(best_config.config.data.path or "")
    with pytest.raises(InputError, match="no such file or folder"):
        execute_final_training(best_config, output_dir=tmp_path / "run", data_path=f"{data}-typo")
    assert not (tmp_path / "run").exists()  # the data is read before anything is written
    job = execute_final_training(best_config, output_dir=tmp_path / "run", data_path=data)
    assert job.status == "completed" and JobSpec.load(tmp_path / "run" / "job.json").data_path == str(data)


def test_keep_holdout_trains_on_train_and_evaluates_on_validation(best_config: BestConfig, tmp_path: Path) -> None:
    job = execute_final_training(best_config, output_dir=tmp_path / "run", keep_holdout=True)
    lineage = extract_lineage_from_best_model(job)
    assert (lineage.trained_on, lineage.evaluated_on) == (("train",), "validation")
    record = json.loads((job.output_dir / "metrics.json").read_text())
    validation = load_dataset(best_config.config.data.path)["validation"]
    assert record["best"]["support"] == sum(len(doc.spans) for doc in validation)


def test_without_a_test_split_the_refit_holds_out_or_stops_with_advice(
    best_config: BestConfig, config_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text((config_dir / "data" / "ner" / f"{split}.jsonl").read_text())
    with pytest.raises(ConfigError, match=r"the data has no 'test' split to evaluate on \(splits: train, validation\)"):
        execute_final_training(best_config, output_dir=tmp_path / "run", data_path=data, other_data=True)

    config = best_config.config.with_values({"data.holdout_fraction": 0.2})
    with_fraction = best_config.model_copy(update={"config": config})
    lineage = extract_lineage_from_best_model(
        execute_final_training(with_fraction, output_dir=tmp_path / "held", data_path=data, other_data=True)
    )
    assert lineage.evaluated_on == "holdout 0.2 of train" and lineage.trained_on == ("train", "validation")


def test_an_in_memory_dataset_trains_in_process_only(
    best_config: BestConfig, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    dataset = load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)
    job = execute_final_training(best_config, output_dir=tmp_path / "run", dataset=dataset)
    lineage = extract_lineage_from_best_model(job)
    # The lineage named the sweep's data path, even for a dataset in memory read from elsewhere.
    assert lineage.dataset_fingerprint == dataset.fingerprint and lineage.data_path is None
    with pytest.raises(ConfigError, match=r"^backend 'subprocess' reads the data from a path; pass data_path="):
        execute_final_training(best_config, output_dir=tmp_path / "sub", dataset=dataset, backend="subprocess")


def test_a_dry_run_writes_the_job_and_starts_nothing(best_config: BestConfig, tmp_path: Path) -> None:
    execution = ExecutionConfig(backend="torchrun", nproc_per_node=2)
    job = execute_final_training(best_config, output_dir=tmp_path / "run", execution_config=execution, dry_run=True)
    spec = JobSpec.load(tmp_path / "run" / "job.json")
    assert (job.status, job.backend, spec.resources.nproc_per_node) == ("queued", "torchrun", 2)
    assert "-m torch.distributed.run --standalone --nproc_per_node 2 -m training.execution.runner" in job.command_line
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [".writer.lock", "job.json"]
    assert spec.config.training.num_epochs == 2 and spec.config.training.learning_rate == 3e-4
    assert spec.config.training.early_stopping_patience is None and spec.study.storage.count("***") == 2
    with pytest.raises(ExecutionError, match=r"prepared as a dry run and never started"):
        extract_lineage_from_best_model(job)


def test_a_backend_argument_runs_with_its_own_process_count_not_the_execution_file_s(
    best_config: BestConfig, tmp_path: Path
) -> None:
    torchrun = ExecutionConfig(backend="torchrun", nproc_per_node=2)
    job = execute_final_training(
        best_config, output_dir=tmp_path, execution_config=torchrun, backend="local", dry_run=True
    )
    assert JobSpec.load(tmp_path / "job.json").resources.model_dump(include={"backend", "nproc_per_node"}) == {
        "backend": "local",
        "nproc_per_node": 1,
    }
    assert job.backend == "local"


def test_bad_requests_are_config_errors(best_config: BestConfig, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^nproc_per_node=2: backend 'local' runs one process; use backend 'torchrun'"
    ):
        execute_final_training(best_config, output_dir=tmp_path, nproc_per_node=2)
    with pytest.raises(ConfigError, match=r"^tracking_uri \(--mlflow-uri\): tracking logs a finished run; it needs"):
        execute_final_training(best_config, output_dir=tmp_path, tracking_uri="sqlite:///x.db", wait=False)
    with pytest.raises(ConfigError, match=r"no-such.json: no such best-config file"):
        execute_final_training(tmp_path / "no-such.json", output_dir=tmp_path)
    record = json.loads(best_config.model_dump_json())
    bad_values = (
        ("num_epochs", True, "num_epochs: expected a valid integer, got True"),
        ("trial_number", -5, "study.trial_number: expected greater than or equal to 0, got -5"),
    )
    for key, value, problem in bad_values:
        edited = tmp_path / f"{key}.json"  # a hand-edited file: `true` trained 1 epoch, trial -5 went into the lineage
        (record["study"] if key == "trial_number" else record)[key] = value
        edited.write_text(json.dumps(record), encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"^{edited}: .*{problem}"):
            execute_final_training(edited, output_dir=tmp_path / "out")
        record = json.loads(best_config.model_dump_json())
    for given, got in ((None, "NoneType None"), ({"config": {}}, "dict {'config': {}}")):  # a TypeError named nothing
        with pytest.raises(ConfigError, match=rf"^best_config: expected a BestConfig or the path of a .*, got {got}$"):
            execute_final_training(given, output_dir=tmp_path)
    with pytest.raises(InputError, match=r"^dataset: expected a Dataset .*, got str 'data/ner'$"):  # an AttributeError
        execute_final_training(best_config, output_dir=tmp_path / "out", dataset="data/ner")
    assert not (tmp_path / "out").exists()
    no_path = best_config.model_copy(
        update={
            "config": best_config.config.model_copy(
                update={"data": best_config.config.data.model_copy(update={"path": None})}
            )
        }
    )
    no_data = r"^data.path: no data to train on; pass data_path \(--data-path\) or set it in the data config$"
    with pytest.raises(ConfigError, match=no_data):
        execute_final_training(no_path, output_dir=tmp_path)
    moved = best_config.model_copy(update={"data_path": str(tmp_path / "moved")})  # a sweep's data, moved since
    where = rf"^{tmp_path / 'moved'}: no such file or folder \(the best config's data path\); pass data_path "
    with pytest.raises(DataError, match=where):
        execute_final_training(moved, output_dir=tmp_path / "refit")
    assert not (tmp_path / "refit").exists()


def test_a_best_config_file_with_a_bad_hyperparameter_is_named_in_the_error(
    best_config: BestConfig, tmp_path: Path
) -> None:
    file = best_config.model_copy(update={"hyperparameters": {"training.learning_rte": 1e-4}}).save(tmp_path / "b.json")
    unknown = "training.learning_rte: unknown key; did you mean 'learning_rate'"
    expected = rf"^{re.escape(f'{file}: hyperparameters: {unknown}')}"
    with pytest.raises(ConfigError, match=expected):
        execute_final_training(file, output_dir=tmp_path / "run", dry_run=True)
    assert not (tmp_path / "run").exists()


def test_an_output_path_inside_a_file_is_refused_before_the_job_is_written(
    best_config: BestConfig, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(InputError, match=r"taken/run: lies inside the file .*taken; expected a run folder"):
        execute_final_training(best_config, output_dir=tmp_path / "taken" / "run", dry_run=True)


def test_arguments_of_the_wrong_kind_are_refused_naming_them(best_config: BestConfig, tmp_path: Path) -> None:
    """None for the folder and a string count failed as TypeErrors; a Dataset as data_path was recorded as its repr."""
    with pytest.raises(InputError, match=r"^output_dir: expected the path of a run folder, got NoneType None$"):
        execute_final_training(best_config, output_dir=None, dry_run=True)  # type: ignore[arg-type]
    dataset = Dataset({"train": []})
    with pytest.raises(DataError, match=r"^data_path: expected the path of the data \(a Dataset in memory: dataset="):
        execute_final_training(best_config, output_dir=tmp_path / "run", data_path=dataset, dry_run=True)  # type: ignore
    with pytest.raises(
        ConfigError, match=r"^nproc_per_node: expected a whole number of processes, at least 1, got '2'$"
    ):
        execute_final_training(  # type: ignore[arg-type]
            best_config, output_dir=tmp_path / "run", backend="torchrun", nproc_per_node="2", dry_run=True
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_interrupted_final_run_resumes_from_its_checkpoint(best_config: BestConfig, tmp_path: Path) -> None:
    long_run = best_config.model_copy(update={"num_epochs": 8})
    job = execute_final_training(long_run, output_dir=tmp_path / "run", backend="subprocess", wait=False)
    while not (job.output_dir / "checkpoint").is_dir() and job.status == "running":
        time.sleep(0.02)
    job.process.kill()  # a crash in the middle of training
    assert job.process.wait(timeout=30) != 0
    assert json.loads((job.output_dir / "metrics.json").read_text())["status"] == "running"

    resumed = execute_final_training(long_run, output_dir=tmp_path / "run")
    assert resumed.id == job.id and "resuming at epoch" in (job.output_dir / "train.log").read_text()
    record = json.loads((job.output_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and [entry["epoch"] for entry in record["history"]] == list(range(1, 9))


def test_a_refit_on_other_data_than_the_sweep_s_is_refused_unless_intended(
    best_config: BestConfig, config_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for split in ("train", "validation", "test"):
        lines = (config_dir / "data" / "ner" / f"{split}.jsonl").read_text().splitlines(keepends=True)
        (other / f"{split}.jsonl").write_text("".join(lines[1:] if split == "train" else lines))
    data = best_config.config.data
    theirs = load_dataset(other, format=data.format, labels=data.labels, overlap_policy=data.overlap_policy).fingerprint
    ours = best_config.study.dataset_fingerprint
    refused = rf"^{other}: the data has fingerprint {theirs[:12]}, .* on data {ours[:12]}; .*--other-data"
    for backend in ("local", "subprocess"):  # refused before job.json was written: the folder was left holding it
        with pytest.raises(InputError, match=refused):
            execute_final_training(best_config, output_dir=tmp_path / "refused", data_path=other, backend=backend)
        assert not (tmp_path / "refused").exists()

    job = execute_final_training(best_config, output_dir=tmp_path / "run", data_path=other, other_data=True)
    lineage = extract_lineage_from_best_model(job)
    assert lineage.other_data and lineage.study is not None
    assert (lineage.dataset_fingerprint, lineage.study.dataset_fingerprint) == (theirs, ours)
    train = other / "train.jsonl"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[1:]))  # changed since: not reused
    advice = r"holds a run of another .*\(resume=False; training train --restart, final --force\)$"
    with pytest.raises(InputError, match=advice):
        execute_final_training(best_config, output_dir=tmp_path / "run", data_path=other, other_data=True)


def test_a_refit_into_a_run_of_another_config_is_refused_before_its_job_json_is_written(
    best_config: BestConfig, tmp_path: Path
) -> None:
    # The runner refused it, but only after job.json had been left in the folder: a later refit there was then told the
    # folder held the run of that job, which never ran.
    run = RunFolder(tmp_path / "run")
    run.root.mkdir()
    other = RunMetrics(status="completed", config_fingerprint="f" * 64, dataset_fingerprint="d" * 64)
    run.write_metrics(other)
    refused = rf"^{run.root}: holds a run of another config \(ffffffffffff\); choose another output folder, or train"
    for backend in ("local", "subprocess"):
        with pytest.raises(InputError, match=refused):
            execute_final_training(best_config, output_dir=run.root, backend=backend)
    assert not (run.root / "job.json").exists() and run.read_metrics() == other


@pytest.mark.parametrize("format", ["auto", "conll"])
def test_a_refit_on_other_data_ignores_the_sweep_s_format_and_column_positions(
    best_config: BestConfig, tmp_path: Path, format: str
) -> None:
    # A sweep on a CoNLL corpus read by positions, refit on JSON lines: the positions were the sweep's, not the refit's;
    # without --other-data that data was refused for those positions, not as other data than the sweep's. A sweep's
    # `format: conll` read the refit's JSON lines as CoNLL (a malformed tag).
    corpus = tmp_path / "conll"
    corpus.mkdir()
    (corpus / "train.conll").write_text("Anna\tNNP\tB-NP\tB-PER\nworks\tVBZ\tB-VP\tO\n", encoding="utf-8")
    columns = DataColumns(tokens=0, tags=3)
    data = best_config.config.data.model_copy(update={"path": str(corpus), "format": format, "columns": columns})
    study = best_config.study.model_copy(update={"dataset_fingerprint": data.load().fingerprint})
    best = best_config.model_copy(
        update={"config": best_config.config.model_copy(update={"data": data}), "study": study}
    )
    other = best_config.config.data.path
    refused = r"the data has fingerprint \w+, but study 'ner-sweep'" if format == "auto" else "not the sweep's data"
    with pytest.raises(InputError, match=rf"{refused}.*--other-data"):
        execute_final_training(best, output_dir=tmp_path / "refused", data_path=other)

    job = execute_final_training(best, output_dir=tmp_path / "run", data_path=other, other_data=True)
    assert job.status == "completed"
    # The run's config.yaml named the JSON data with the sweep's positions, which refused that data when read alone
    # (training export --quantize without --data-path); it keeps the columns that data takes: none.
    recorded = RunFolder(job.output_dir).read_config()
    assert recorded is not None and recorded.data.columns == DataColumns() and recorded.data.path == other
    assert recorded.data.format == ("auto" if format == "auto" else "spans")  # conll: as its content shows
    assert recorded.data.load().fingerprint == best_config.study.dataset_fingerprint  # the JSON data's


def test_the_refit_uses_the_data_the_sweep_used_by_default(best_config: BestConfig, tmp_path: Path) -> None:
    sweep_data = best_config.config.data.path
    elsewhere = best_config.config.model_copy(
        update={"data": best_config.config.data.model_copy(update={"path": str(tmp_path / "moved")})}
    )
    best = best_config.model_copy(update={"config": elsewhere, "data_path": sweep_data})
    execute_final_training(best, output_dir=tmp_path / "run", dry_run=True)
    assert JobSpec.load(tmp_path / "run" / "job.json").data_path == str(Path(sweep_data).resolve())


def test_a_refit_on_the_sweep_s_own_data_keeps_its_format(best_config: BestConfig, tmp_path: Path) -> None:
    # A sweep with data.format: spans on JSON lines saved as .txt (a CoNLL suffix): the refit switched to auto and
    # read them as CoNLL (`tag '"LOC"]]}' is malformed`).
    own = tmp_path / "txt"
    own.mkdir()
    for name in ("train", "validation", "test"):
        (own / f"{name}.txt").write_text((Path(best_config.config.data.path) / f"{name}.jsonl").read_text())
    data = best_config.config.data.model_copy(update={"path": str(own), "format": "spans"})
    study = best_config.study.model_copy(update={"dataset_fingerprint": data.load().fingerprint})
    config = best_config.config.model_copy(update={"data": data})
    job = execute_final_training(
        best_config.model_copy(update={"config": config, "study": study}), output_dir=tmp_path / "run"
    )
    assert job.status == "completed"
    assert (recorded := RunFolder(job.output_dir).read_config()) is not None and recorded.data.format == "spans"
