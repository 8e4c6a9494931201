"""Bad files the toolkit itself once wrote, or that belong to something else: corrupt checkpoints, a model folder whose
labels do not match, a splits file of another dataset, a best config naming a backbone that is not here, a final run
folder of another job, a study storage that cannot be reached, an Azure spec without compute.

Each one: exit code 2 (1 for an unreachable server) with one line naming the folder, file or value at fault, no
traceback, and every file that existed before unchanged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from data.generate import generate_corpus, write_corpus
from data.loaders import load_dataset
from training.config import BestConfig, build_training_config
from training.core.callbacks import Callback, TrainerState
from training.core.cv_utils import create_kfold_splits
from training.core.trainer import train_model

pytestmark = pytest.mark.slow


class Interrupted(Exception):
    """Stops a training run after its first checkpoints, as a crash would."""


class InterruptAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state: TrainerState) -> None:
        if state.global_step == self.step:
            raise Interrupted(f"stopped at step {state.global_step}")


def one_line(completed: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert completed.returncode == code, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    (line,) = completed.stderr.strip().splitlines()
    return line


@pytest.fixture(scope="module")
def interrupted_run(single_thread: None, training_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of `training_config` stopped at step 11: its checkpoint holds step 10."""
    config = build_training_config(None, training_config)
    run = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.raises(Interrupted):
        train_model(
            config,
            load_dataset(config.data.path),
            run,
            callbacks=[InterruptAt(11)],
            cache_dir=tmp_path_factory.mktemp("features"),
        )
    assert (run / "checkpoint" / "optimizer.pt").is_file()
    return run


@pytest.fixture(scope="module")
def finished_final(
    best_config_for: Callable[..., BestConfig],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path]:
    """(best_config.json, the final run folder trained from it with `training final`)."""
    folder = tmp_path_factory.mktemp("final")
    best_file = best_config_for().save(folder / "best_config.json")
    completed = run_cli("final", best_file, "--output", folder / "run", "--quiet")
    assert completed.returncode == 0, completed.stderr
    return best_file, folder / "run"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "damage",
    [
        lambda checkpoint: truncate(checkpoint / "optimizer.pt"),
        lambda checkpoint: truncate(checkpoint / "trainer_state.json"),
        lambda checkpoint: truncate(checkpoint / "model.safetensors"),
        lambda checkpoint: (checkpoint / "optimizer.pt").unlink(),
        lambda checkpoint: (checkpoint / "optimizer.pt").write_bytes(b""),  # an internal EOFError, exit 1
    ],
    ids=["optimizer-truncated", "state-truncated", "weights-truncated", "optimizer-missing", "optimizer-empty"],
)
def test_a_corrupt_checkpoint_is_named_and_left_alone(
    damage: Callable[[Path], None],
    interrupted_run: Path,
    training_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    checksums: Callable[[Path], dict[str, str]],
    tmp_path: Path,
) -> None:
    """Resuming from a truncated or incomplete checkpoint: exit 2 naming the checkpoint folder, nothing changed."""
    run = shutil.copytree(interrupted_run, tmp_path / "run")
    damage(run / "checkpoint")
    before = checksums(run)
    line = one_line(run_cli("train", "--config-dir", training_config, "--output", run, "--quiet"))
    assert f"{run / 'checkpoint'}: corrupt or incomplete checkpoint" in line
    assert "delete the folder to restart the run from scratch" in line
    assert checksums(run) == before


def test_a_model_folder_with_other_labels_is_refused(
    finished_final: tuple[Path, Path],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    checksums: Callable[[Path], dict[str, str]],
    tmp_path: Path,
) -> None:
    """Evaluating on data with an entity type the model lacks, or a model whose label map does not fit its weights."""
    _, run = finished_final
    other = tmp_path / "other"
    record = {"text": "Rex is a dog.", "annotations": [[0, 3, "ANIMAL"]]}
    write_corpus(other, {"train": [record], "test": [record]})
    before = checksums(run)
    line = one_line(run_cli("evaluate", run, "--data-path", other))
    assert f"{other}: has entity types ['ANIMAL'] that the model does not tag (its types: ['COMPANY', " in line

    model = shutil.copytree(run / "model", tmp_path / "model")
    settings = json.loads((model / "config.json").read_text(encoding="utf-8"))
    settings["id2label"] = {"0": "O", "1": "B-ANIMAL", "2": "I-ANIMAL"}
    settings["label2id"] = {"O": 0, "B-ANIMAL": 1, "I-ANIMAL": 2}
    (model / "config.json").write_text(json.dumps(settings), encoding="utf-8")
    line = one_line(run_cli("predict", model, "Anna Smith works at Siemens."))
    assert line.startswith(f"training predict: error: {model}: the weights do not fit config.json: classifier.")
    assert checksums(run) == before


def test_a_splits_file_of_another_dataset_is_refused(
    sweep_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    checksums: Callable[[Path], dict[str, str]],
    tmp_path: Path,
) -> None:
    """A study folder whose splits.json was made for other data: exit 2 naming the file; it is kept as it was."""
    study_dir = tmp_path / "study"
    other = load_dataset(write_corpus(tmp_path / "other", {"train": generate_corpus(30, seed=99)["train"]}))
    create_kfold_splits(other, 2).save(study_dir / "splits.json")
    before = checksums(study_dir)
    completed = run_cli("hpo", "run", "--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir)
    line = one_line(completed)
    assert f"{study_dir / 'splits.json'} was made for dataset {other.fingerprint[:12]}, this dataset is" in line
    after = {name: digest for name, digest in checksums(study_dir).items() if name != ".study.lock"}  # empty lock
    assert after == before, "the study storage was created before the splits were checked"


def test_a_best_config_for_a_backbone_that_is_not_here_is_refused(
    finished_final: tuple[Path, Path],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """`training final` of a best config whose backbone is neither bundled, local nor cached: exit 2 naming it."""
    best_file, _ = finished_final
    best = BestConfig.load(best_file)
    other = best.model_copy(update={"config": best.config.with_values({"model.backbone": "acme/ner-large-v9"})})
    line = one_line(run_cli("final", other.save(tmp_path / "best_config.json"), "--output", tmp_path / "run"))
    assert "model.backbone 'acme/ner-large-v9': neither a local folder, a bundled alias" in line


def test_a_final_run_folder_of_another_job_is_left_alone(
    finished_final: tuple[Path, Path],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    checksums: Callable[[Path], dict[str, str]],
    tmp_path: Path,
) -> None:
    """`training final` of another best config into a finished final run folder: exit 2, the folder unchanged."""
    best_file, run = finished_final
    best = BestConfig.load(best_file)
    other = best.model_copy(update={"hyperparameters": {"training.learning_rate": 2e-3}})
    before = checksums(run)
    line = one_line(run_cli("final", other.save(tmp_path / "best_config.json"), "--output", run))
    assert f"{run}: holds the run of job" in line
    assert checksums(run) == before


@pytest.mark.parametrize("action", ["run", "resume"])
def test_a_study_storage_that_cannot_be_reached(
    action: str,
    sweep_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """A PostgreSQL URL nobody listens on: one line naming the storage without its password, exit 1 (or 2 without
    the driver), and nothing written into the study folder."""
    url = "postgresql://optuna:Hunter2-secret@127.0.0.1:1/studies"
    study_dir = tmp_path / "study"
    if action == "run":
        arguments = ["--config-dir", sweep_config, "--hpo", "quick", "--study-dir", study_dir]
    else:
        study_dir.mkdir()
        (study_dir / "study.json").write_text(
            json.dumps({"format": "training.hpo-study", "study_name": "quick", "storage": url}), encoding="utf-8"
        )
        arguments = ["--study-dir", study_dir]
    completed = run_cli("hpo", action, *arguments, "--storage", url)
    assert completed.returncode in (1, 2)
    line = one_line(completed, completed.returncode)
    assert "storage 'postgresql://optuna:***@127.0.0.1:1/studies'" in line
    assert "Hunter2-secret" not in completed.stderr + completed.stdout
    written = sorted(path.name for path in study_dir.glob("[!.]*")) if study_dir.exists() else []  # not the lock
    assert written == (["study.json"] if action == "resume" else [])


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ("backend: azure\nazure: {instance_count: 2}\n", "azure.compute: required key is missing"),
        ("backend: azure\n", "backend 'azure' needs an 'azure:' section with at least 'compute'"),
        ("backend: azure\nazure: {compute: ''}\n", "azure.compute: expected the name of a compute target (letters, "),
    ],
    ids=["compute-missing", "azure-section-missing", "compute-empty"],
)
def test_an_azure_spec_without_compute_is_refused(
    execution: str,
    message: str,
    finished_final: tuple[Path, Path],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    """`training final --backend azure --dry-run` with an execution file lacking compute: exit 2 naming the key."""
    pytest.importorskip("azure.ai.ml", reason='the Azure backend needs pip install "training-execution[azure]"')
    best_file, _ = finished_final
    spec = tmp_path / "execution" / "cloud.yaml"
    spec.parent.mkdir()
    spec.write_text(execution, encoding="utf-8")
    arguments = ["--backend", "azure", "--execution", spec, "--dry-run", "--output", tmp_path / "run"]
    line = one_line(run_cli("final", best_file, *arguments))
    assert message in line
