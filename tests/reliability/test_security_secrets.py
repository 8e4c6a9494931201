"""Secrets never reach a file or an output: with credentials planted in environment variables and in storage URLs,
a final training (local process, subprocess, Azure dry run), its lineage, report and MLflow record, and a sweep on a
password-protected PostgreSQL storage write none of them, anywhere, while the storage itself is still named."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from training.config import BestConfig
from training.execution.lineage import Lineage

pytestmark = pytest.mark.slow
URL_PASSWORD = "url-5ecret-Pa55"
URL_TOKEN = "tok-5ecret-query"
STORAGE = f"postgresql://optuna:{URL_PASSWORD}@db.example.org:5432/studies?sslmode=require&token={URL_TOKEN}"
PLANTED = {
    "AZURE_CLIENT_SECRET": "azure-5ecret-client",
    "AZURE_STORAGE_KEY": "azure-5ecret-account-key",
    "HF_TOKEN": "hf_5ecretTokenValue",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-5ecret-pass",
    "OPTUNA_STORAGE": "postgresql://optuna:env-5ecret-pw@db.example.org/studies",
}
SECRETS = (URL_PASSWORD, URL_TOKEN, "azure-5ecret-client", "azure-5ecret-account-key", "hf_5ecretTokenValue")
SECRETS += ("mlflow-5ecret-pass", "env-5ecret-pw")


@pytest.fixture
def run_with_secrets(
    env: dict[str, str], training_command: Callable[..., list[str]]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`training ARGS` with the secrets planted in its environment; must succeed; its output is kept for the grep."""

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            training_command(*args), capture_output=True, text=True, env={**env, **PLANTED}, timeout=300
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed

    return run


def assert_no_secret(folders: list[Path], outputs: list[subprocess.CompletedProcess[str]], secrets: tuple) -> int:
    """No secret in any file under `folders` nor in any output; returns how many files were searched."""
    files = [path for folder in folders for path in folder.rglob("*") if path.is_file()]
    texts = {str(path): path.read_bytes().decode("utf-8", errors="replace") for path in files}
    texts |= {f"output of {' '.join(map(str, run.args[3:6]))}": run.stdout + run.stderr for run in outputs}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} written to {where}"
    return len(files)


def test_a_final_training_writes_no_secret(
    run_with_secrets: Callable[..., subprocess.CompletedProcess[str]],
    best_config_for: Callable[..., BestConfig],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """Final training, lineage, report, Azure dry run and MLflow record: no planted secret in any file or output."""
    best = best_config_for(objective=0.4, trial_number=2, study_name="secret-study", storage=STORAGE)
    best_file = best.save(tmp_path / "input" / "best_config.json")
    out = tmp_path / "out"
    outputs = [
        run_with_secrets("final", best_file, "--output", out / "run", "--backend", "subprocess", "--json"),
        run_with_secrets("lineage", out / "run", "--json"),
        run_with_secrets("report", out / "run", "--json"),
    ]
    lineage = Lineage.load(out / "run")
    assert (
        lineage.study is not None
        and lineage.study.storage == "postgresql://optuna:***@db.example.org:5432/studies?sslmode=require&token=***"
    )
    if importlib.util.find_spec("azure.ai.ml") is not None:
        execution = tmp_path / "input" / "azure.yaml"
        execution.write_text("backend: azure\nazure: {compute: gpu-cluster, workspace: ws}\n", encoding="utf-8")
        arguments = ["--backend", "azure", "--execution", execution, "--dry-run", "--json"]
        outputs.append(run_with_secrets("final", best_file, "--output", out / "azure", *arguments))
        assert (out / "azure" / "azure" / "job.yaml").is_file()
    if importlib.util.find_spec("mlflow") is not None:
        from training.execution.tracking import log_final_run

        log_final_run(out / "run", lineage, f"sqlite:///{out / 'mlflow.db'}")
    record_figure("files searched", assert_no_secret([out], outputs, SECRETS))


def test_a_sweep_on_a_password_protected_storage_writes_no_password(
    postgres_url: str,
    run_with_secrets: Callable[..., subprocess.CompletedProcess[str]],
    sweep_config: Path,
    training_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """A sweep on PostgreSQL with a password, its best config, report and final run: the password is in no file."""
    from sqlalchemy.engine import make_url

    password = make_url(postgres_url).password
    assert password
    study_dir = tmp_path / "study"
    given = ["--study-dir", study_dir, "--storage", postgres_url]
    outputs = [
        run_with_secrets("hpo", "run", "--config-dir", sweep_config, "--hpo", "quick", *given, "--n-trials", "2",
                         "--inprocess", "--json"),
        run_with_secrets("hpo", "best", *given, "--json"),
        run_with_secrets("hpo", "report", *given),
        # the sweep's corpus has no test split: the refit is on another corpus, on purpose (--other-data)
        run_with_secrets("final", study_dir / "best_config.json", "--data-path", training_config / "resumes",
                         "--other-data", "--output", study_dir / "final", "--json"),
    ]  # fmt: skip
    assert "postgres:***@" in BestConfig.load(study_dir / "best_config.json").study.storage
    record_figure("files searched", assert_no_secret([study_dir], outputs, (password, *SECRETS)))
