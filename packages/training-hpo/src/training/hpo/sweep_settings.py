"""`SweepSettings`: what a study stores about its sweep, so any process (a resume, a worker on another host, the
best config) can rebuild the sweep from the study alone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.storages import BaseStorage
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from data.hf_datasets import HUB_PREFIX
from training.common.errors import InputError, first_line
from training.common.redact import redact_url, refuse_redacted
from training.config.hpo_schema import RECORDED, HPOConfig
from training.config.schema import TrainingConfig
from training.hpo._version import __version__
from training.hpo.recovery import machine_name
from training.hpo.study_folder import StudyFolder

RECORD = "sweep"
SETTINGS_FORMAT = 3  # 3: `mlflow_uri`, which a reader must honour (its resumed trials log there)
RECORD_WAIT_S = 10.0  # how long a sweep that finds its study made waits for the record of the sweep that made it


class NewerRecordError(InputError):
    """A study's record written by a newer release: refused, and never replaced as if the study had none."""


class SweepSettings(BaseModel):
    """The base config every trial starts from, the sweep settings, the data and where the study lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[3] = SETTINGS_FORMAT
    config: TrainingConfig
    config_fingerprint: str
    hpo_config: HPOConfig
    dataset_fingerprint: str
    data_path: str | None
    study_dir: str
    storage: str
    max_epochs: int
    machine: str | None = None  # where the sweep started (`recovery.machine_name`): file storages stay on it
    mlflow_uri: str | None = None  # the tracking URI the sweep was given (password redacted): its resumes log there

    @model_validator(mode="before")
    @classmethod
    def _read_older_formats(cls, data: Any) -> Any:
        """Format 1 held the config as YAML text (`config_yaml`) and the settings under `hpo`; format 2 lacked
        `mlflow_uri` until it was added without a new number."""
        if not isinstance(data, dict) or data.get("format") not in (1, 2):
            return data
        if data["format"] == 2:
            return data | {"format": SETTINGS_FORMAT}
        rest = {key: value for key, value in data.items() if key not in ("config_yaml", "hpo")}
        config = TrainingConfig.from_yaml(data["config_yaml"], f"study record of {data.get('study_dir')}")
        return rest | {"format": SETTINGS_FORMAT, "config": config, "hpo_config": data["hpo"]}

    def tracking_uri(self, given: str | None) -> str | None:
        """Where a resume (its trials, its refit) logs: `given` (--mlflow-uri), else the URI the sweep was run with,
        else its config's; a stored one whose password was redacted must be given again."""
        if given is None:
            refuse_redacted(self.mlflow_uri, "tracking URI", "the password is not stored with the study", "mlflow_uri")
        return given or self.mlflow_uri or self.config.tracking.mlflow

    def data_gone(self) -> bool:
        """Whether the data path the study recorded is gone from this machine (a hub dataset's id never is)."""
        path = self.data_path
        return path is not None and not path.startswith(HUB_PREFIX) and not Path(path).exists()

    def check_data(
        self, study_dir: Path, name: str, location: str | None, fingerprint: str | None, *, worker: bool = False
    ) -> None:
        """Refuse to continue the study `name` on the data at `location` (`fingerprint` None: not read, being the
        recorded path, gone) unless it is the study's, saying which happened: other data, its data gone (or on the
        sweep's machine) or edited. A `worker` joins the study as it is, so it is never told to begin another."""
        if fingerprint == self.dataset_fingerprint:
            return
        ran = f"{study_dir}: study {name!r} was run on {self.data_path or 'a dataset in memory'} "
        ran += f"({self.dataset_fingerprint[:12]})"
        given = f"{location or 'the dataset given'} ({(fingerprint or '')[:12]})"
        anew = "" if worker else ", or begin a new study folder"
        if self.data_path is None:
            advice = "pass that dataset (dataset=) or its data path (data_path, --data)"
            raise InputError(f"{ran}, not on {given}; {advice}")
        if self.data_gone() and location == self.data_path and self.machine not in (None, machine_name()):
            raise InputError(f"{ran} on {self.machine}, not on this one: pass its copy here as data_path (--data)")
        if self.data_gone():
            other = f"; {given} holds other data" if location != self.data_path else ""
            again = "pass that data again where it lies now (data_path, --data)"
            raise InputError(f"{ran}, which is gone{other}: {again}{anew}")
        if location == self.data_path:
            raise InputError(
                f"{ran}, which has been edited since ({(fingerprint or '')[:12]} now): put its data back as it was"
                f"{anew and anew + ' for the data as it is now'}"
            )
        if location is None:  # a dataset passed in memory: data_path alone reads the study's data
            advice = f"pass data_path={self.data_path!r} instead of dataset= to go on with its data"
            raise InputError(f"{ran}, not on {given}; {advice}{anew and anew + ' for this dataset'}")
        raise InputError(f"{ran}, not on {given}; leave out data_path (--data) to go on with its data")

    def check_study_dir(self, folder: StudyFolder, name: str, location: str) -> None:
        """Refuse to run or read the study `name` (in the storage at `location`) in another study folder than the one it
        was made for (the path `folder`'s manifest records, or `folder` itself where it is new): there it would clean
        that folder's trial models and write its best config."""
        manifest = folder.read_manifest() if folder.manifest.is_file() else None
        here = manifest.study_dir if manifest is not None else str(folder.root.resolve())
        if here is None or Path(self.study_dir) == Path(here):  # None: a manifest from before study_dir was recorded
            return
        fix = "give this folder another study name or storage"
        if manifest is not None:
            fix = f"give the storage its study.json names ({manifest.storage!r}), or none"
        raise InputError(
            f"{folder.root}: storage {redact_url(location)!r} holds the study {name!r} of the study folder "
            f"{self.study_dir}, not this folder's; continue it there (`training hpo resume --study-dir "
            f"{self.study_dir}`) or {fix}"
        )

    def save(self, study: optuna.Study) -> None:
        study.set_user_attr(RECORD, self.model_dump(mode="json"))

    def claim(self, name: str, storage: BaseStorage, direction: str) -> tuple[optuna.Study, SweepSettings | None]:
        """The study `name`, made in `storage` with this record saved (None), or made before, with the record of the
        sweep that made it. Making a study is atomic in every storage (names are unique): of sweeps started together
        on one storage, whatever their folders, one makes and records it, the others wait up to RECORD_WAIT_S for its
        record and never save their own; a study still without one (made by plain Optuna) is refused."""
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction=direction)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
            until = time.monotonic() + RECORD_WAIT_S
            while RECORD not in study.user_attrs and not study.get_trials(deepcopy=False) and time.monotonic() < until:
                time.sleep(0.1)  # its maker saves it next, before any trial
            return study, SweepSettings.load(study, self.storage)
        self.save(study)
        return study, None

    @classmethod
    def load(cls, study: optuna.Study, storage: str | None = None) -> SweepSettings:
        """The settings of a study made by `run_local_hpo_sweep` (in `storage`, named in errors); any other study is an
        `InputError`, one recorded by a newer release a `NewerRecordError`."""
        data = study.user_attrs[RECORD] if RECORD in study.user_attrs else None  # noqa: SIM401 (the record's own reader)
        number = data.get("format") if isinstance(data, dict) else None
        if type(number) is not int or number < 1:
            where = f" in storage {storage!r}" if storage else ""  # made there by plain Optuna, or a cut-short sweep
            raise InputError(
                f"study {study.study_name!r}{where} was not made by run_local_hpo_sweep (no {RECORD!r} user attribute "
                f"of format {SETTINGS_FORMAT}); choose another study name, or delete it (optuna delete-study)"
            )
        known = {*cls.model_fields, *(("config_yaml", "hpo") if number == 1 else ())}
        unknown = sorted(set(data) - known)
        if number > SETTINGS_FORMAT or unknown:  # a newer release's record: ignoring what it adds would be wrong
            held = f"format {number}" + (f" with fields {', '.join(unknown)}" if unknown else "")
            where = f" in {storage!r}" if storage is not None else ""
            raise NewerRecordError(
                f"study {study.study_name!r}{where} was recorded by a newer training-hpo ({RECORD!r} record of "
                f"{held}); training-hpo {__version__} here reads formats up to {SETTINGS_FORMAT}: upgrade training-hpo "
                "on this machine to the sweep's release"
            )
        try:
            return cls.model_validate(data, context=RECORDED)  # its sweep ran: what an earlier release allowed too
        except ValidationError as error:
            reason = first_line(error)
            raise InputError(f"study {study.study_name!r}: invalid {RECORD!r} user attribute ({reason})") from None
