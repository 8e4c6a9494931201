"""Lineage: the record linking a trained model to its trial, data, config, backbone, code and packages.

`lineage.json` sits beside `model/` in the run folder, without credentials; reading it back needs only pydantic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pydantic import BaseModel, ConfigDict

from training.common.atomic import atomic_write_text
from training.common.errors import InputError
from training.common.json_files import read_json_file
from training.config.best import StudyRef, nest_study
from training.config.validation import validate

LINEAGE_FORMAT = 2
LINEAGE_FILE = "lineage.json"
_TAG_PREFIXES = {"hyperparameters": "hp", "final_metrics": "metric", "packages": "package", "study": "study"}


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
    study: StudyRef | None = None
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
        """Flat string tags (Azure ML jobs, MLflow runs); mappings under `hp.`, `metric.`, `package.`, `study.`; a value
        not known (None) is no tag, not the text 'null'."""
        tags: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value in (None, {}, [], ()):
                continue
            if name in _TAG_PREFIXES:
                prefix = _TAG_PREFIXES[name]
                tags.update({f"{prefix}.{key}": _tag_text(item) for key, item in value.items() if item is not None})
            else:
                tags["lineage_format" if name == "format" else name] = _tag_text(value)
        return tags

    def summary(self) -> dict[str, Any]:
        """The headline of the lineage (for a table or a service's metadata): run, study trial, data, backbone, code."""
        study = {key: getattr(self.study, key, None) for key in ("study_name", "trial_number", "objective", "cv_std")}
        headline = ("config_fingerprint", "dataset_fingerprint", "backbone", "code_revision")
        return {"run_id": self.run_id, **study, **{key: getattr(self, key) for key in headline}}

    def save(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write `lineage.json` into the run folder atomically."""
        return atomic_write_text(Path(run_dir) / LINEAGE_FILE, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, run_or_model_dir: str | os.PathLike[str]) -> Lineage:
        """Read `lineage.json` from a run folder, the `model/` folder inside it, or the file itself; the run folder's
        own paths are given where it lies now (it may have been moved or copied since), the file is left as written."""
        from training.core.exported import is_exported
        from training.core.run_folder import RunFolder

        path = Path(run_or_model_dir)
        # An exported folder carries its own lineage: the folder around it may be another model's run.
        exported = path.suffix != ".json" and is_exported(path)
        # The folder itself (a run), or the run holding it as its model folder (`.` said inside it too).
        runs = [RunFolder(path), RunFolder.of_model(path)]
        candidates = [path] if path.suffix == ".json" else [run.lineage for run in runs]
        file = next((candidate for candidate in candidates[: 1 if exported else 2] if candidate.is_file()), None)
        if file is None and exported:
            raise InputError(
                f"{path}: an exported folder without {LINEAGE_FILE}: it was exported from a run without one"
            )
        unfinished = next((run for run in runs if run.config.is_file()), None)  # config is written first, lineage last
        if file is None and unfinished is not None:
            raise InputError(
                f"{unfinished.root}: a run folder without {LINEAGE_FILE}, which training train (or record_lineage) "
                "writes once training ends: this run was interrupted, is still training, or was trained by "
                "train_model alone"
            )
        if file is None:
            raise InputError(
                f"{path}: no {LINEAGE_FILE} here or in the parent folder; expected a run folder (or its model folder) "
                "of training train or final, trained by this version or later"
            )
        data = read_json_file(file, "lineage record")
        if isinstance(data, dict):
            # Another JSON file: `model/config.json` has no format; metrics.json, job.json and best_config.json have a
            # lineage's (1 or 2) but no run_id, which every lineage has (read as one, each drew an error per key).
            known = data.get("format") in (1, LINEAGE_FORMAT)
            absent = "format" if "format" not in data else "run_id" if known and "run_id" not in data else None
            if absent:
                raise InputError(
                    f"{file}: not a lineage record (no {absent}); expected a run folder, its model folder or its "
                    f"{LINEAGE_FILE}"
                )
            if data["format"] == 1:  # study fields flat, the sweep's data renamed
                data = nest_study(data, "study_dataset_fingerprint") | {"format": LINEAGE_FORMAT}
            if data["format"] != LINEAGE_FORMAT:
                raise InputError(f"{file}: format: expected lineage format {LINEAGE_FORMAT}, got {data['format']!r}")
        return validate(cls, data, str(file))._found_in(file.parent)

    def _found_in(self, run_dir: Path) -> Lineage:
        """This record with `run_dir` and its model where `run_dir` is, when the model is found there (a moved or
        copied run folder); otherwise (a lineage.json copied on its own) as recorded. Paths outside the run folder
        (data, study) stay as recorded."""
        if self.run_dir is None or self.model_path is None or Path(self.run_dir).resolve() == run_dir.resolve():
            return self
        written = PureWindowsPath if "\\" in self.run_dir else PurePosixPath  # as recorded, on any system
        if not written(self.model_path).is_relative_to(self.run_dir):
            return self
        model_path = run_dir.absolute().joinpath(*written(self.model_path).relative_to(self.run_dir).parts)
        if not model_path.exists():
            return self
        return self.model_copy(update={"run_dir": str(run_dir.absolute()), "model_path": str(model_path)})


def _tag_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
