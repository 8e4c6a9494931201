"""Provenance of a run: its lineage record, from installed versions, the code's git revision and the backbone's
hash (URLs lose their credentials)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from training.common.redact import redact_url
from training.config.schema import ModelConfig
from training.core.backbones import local_backbone
from training.core.run_folder import RunFolder
from training.execution.job_spec import JobSpec
from training.execution.lineage import Lineage

TOOLKIT = ("training-core", "training-execution", "training-hpo", "training-cli", "training-compat")
# Distributions whose versions shape a trained model, recorded when installed.
DISTRIBUTIONS = (*TOOLKIT, "torch", "transformers", "tokenizers", "safetensors")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# What a backbone is hashed by: its weights (or their shards' index), else its config.
HASHED_FILES = (*WEIGHT_FILES, *(f"{name}.index.json" for name in WEIGHT_FILES), "config.json")


def build_lineage(
    spec: JobSpec,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    dataset_fingerprint: str | None = None,
    trained_on: tuple[str, ...] = (),
    evaluated_on: str | None = None,
    backbone_folder: str | os.PathLike[str] | None = None,
) -> Lineage:
    """The lineage of `spec`'s job; with `run_dir`, also what its finished run folder says. The backbone is recorded
    as its config names it, hashed in `backbone_folder` when its files lie there (a remote job's mounted copy)."""
    metrics = RunFolder(Path(run_dir)).read_metrics() if run_dir is not None else None
    study = spec.study
    sha256, hashed_file, resolved_revision = backbone_digest(spec.config.model, backbone_folder)
    return Lineage(
        run_id=spec.job_id,
        run_dir=str(run_dir) if run_dir is not None else None,
        model_path=str(Path(run_dir) / "model") if run_dir is not None else None,
        status=metrics.status if metrics else None,
        final_metrics={key: float(value) for key, value in metrics.best.scalars().items()}
        if metrics and metrics.best
        else {},
        best_epoch=metrics.best_epoch if metrics else None,
        data_path=redact_url(spec.data_path) if spec.data_path else None,
        dataset_fingerprint=dataset_fingerprint,
        trained_on=trained_on,
        evaluated_on=evaluated_on,
        config_fingerprint=spec.config.fingerprint,
        hyperparameters=spec.hyperparameters,
        study=study.model_copy(update={"storage": redact_url(study.storage)}) if study else None,
        other_data=spec.other_data,
        backbone=spec.config.model.backbone,
        backbone_revision=spec.config.model.revision or resolved_revision,
        backbone_sha256=sha256,
        backbone_hashed_file=hashed_file,
        packages=package_versions(),
        python=platform.python_version(),
        code_revision=spec.code_revision,
        created_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    )


def package_versions() -> dict[str, str]:
    """Installed versions of the toolkit's distributions and the libraries that shape a model."""
    versions = {}
    for name in DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def code_revision(directory: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit checked out in `directory` (default: the working directory), `-dirty` when tracked files
    differ from it, or None outside a repository."""
    revision = _git(directory, "rev-parse", "HEAD")
    if revision is None or not re.fullmatch(r"[0-9a-f]{40,64}", revision):
        return None
    changes = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return f"{revision}-dirty" if changes else revision


def _git(directory: str | os.PathLike[str] | None, *arguments: str) -> str | None:
    """The output of a git command, None when git is missing or fails."""
    try:
        completed = subprocess.run(
            ["git", *arguments], cwd=directory, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def backbone_digest(
    settings: ModelConfig, backbone_folder: str | os.PathLike[str] | None = None
) -> tuple[str | None, str | None, str | None]:
    """(sha256, file hashed, resolved revision) of a local backbone (in `backbone_folder` when given), or of a hub id
    in the local Hugging Face cache (nothing is downloaded; its snapshot folder names the commit)."""
    from huggingface_hub import try_to_load_from_cache

    folder = Path(backbone_folder) if backbone_folder is not None else local_backbone(settings.backbone)
    for name in HASHED_FILES:
        if folder is not None:
            cached = str(folder / name) if (folder / name).is_file() else None
        else:
            cached = try_to_load_from_cache(settings.backbone, name, revision=settings.revision)
        if isinstance(cached, str):
            snapshot = Path(cached).parent
            commit = snapshot.name if folder is None and snapshot.parent.name == "snapshots" else None
            return _sha256(Path(cached)), name, commit
    return None, None, None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
