"""The study's sweep record (`SweepSettings`): older formats are read, a newer release's record is refused in one line
that names both formats and says to upgrade."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from pydantic import ValidationError

from training.common.errors import InputError
from training.config import HPOConfig, TrainingConfig
from training.hpo import __version__, sweep_settings
from training.hpo.storage import open_storage
from training.hpo.sweep_settings import RECORD, SETTINGS_FORMAT, NewerRecordError, SweepSettings


@pytest.fixture
def stored(tiny_config: TrainingConfig, quick_settings: Callable[..., HPOConfig]) -> tuple[optuna.Study, dict]:
    """An in-memory study holding a record with a tracking URI, and that record as stored."""
    record = SweepSettings(
        config=tiny_config,
        config_fingerprint=tiny_config.fingerprint,
        hpo_config=quick_settings("kept"),
        dataset_fingerprint="0" * 64,
        data_path=None,
        study_dir="/studies/kept",
        storage="sqlite:////studies/kept/study.db",
        max_epochs=1,
        mlflow_uri="sqlite:////studies/mlflow.db",
    )
    study = optuna.create_study(study_name="kept")
    record.save(study)
    return study, study.user_attrs[RECORD]


def test_a_record_of_format_2_without_a_tracking_uri_still_opens(stored: tuple[optuna.Study, dict]) -> None:
    study, data = stored
    older = {key: value for key, value in data.items() if key != "mlflow_uri"} | {"format": 2}
    study.set_user_attr(RECORD, older)
    assert SweepSettings.load(study).mlflow_uri is None
    study.set_user_attr(RECORD, data | {"format": 2})  # format 2 as written before its number changed
    assert SweepSettings.load(study).mlflow_uri == "sqlite:////studies/mlflow.db"


def test_a_study_that_tuned_the_backbone_still_opens(stored: tuple[optuna.Study, dict]) -> None:
    """Sweeps before this release could tune `model.backbone`; new ones are refused it, their records still read."""
    study, data = stored
    space = data["hpo_config"]["search_space"] | {"model.backbone": {"type": "choice", "values": ["tiny", "bert"]}}
    study.set_user_attr(RECORD, data | {"hpo_config": data["hpo_config"] | {"search_space": space}})
    assert "model.backbone" in SweepSettings.load(study).hpo_config.search_space
    with pytest.raises(ValidationError, match=r"'model\.backbone' is not tunable: a sweep tunes one backbone"):
        HPOConfig.model_validate(data["hpo_config"] | {"search_space": space})


@pytest.mark.parametrize(
    ("change", "held"),
    [
        ({"format": SETTINGS_FORMAT + 1}, f"format {SETTINGS_FORMAT + 1}"),
        ({"queue": "gpu-a"}, f"format {SETTINGS_FORMAT} with fields queue"),
    ],
    ids=["future format", "unknown field"],
)
def test_a_record_of_a_newer_release_is_refused_naming_both_formats(
    stored: tuple[optuna.Study, dict], change: dict, held: str
) -> None:
    # A reader that knew fewer fields said "invalid 'sweep' user attribute (Extra inputs are not permitted)", and a
    # future format number read as "not made by run_local_hpo_sweep".
    study, data = stored
    study.set_user_attr(RECORD, data | change)
    message = (
        f"study 'kept' was recorded by a newer training-hpo ('sweep' record of {held}); training-hpo {__version__} "
        f"here reads formats up to {SETTINGS_FORMAT}: upgrade training-hpo on this machine to the sweep's release"
    )
    with pytest.raises(NewerRecordError) as refused:
        SweepSettings.load(study)
    assert str(refused.value) == message


def test_a_dataset_passed_to_a_study_run_on_other_data_is_told_to_pass_the_study_data_path(
    stored: tuple[optuna.Study, dict], tmp_path: Path
) -> None:
    # It was told to 'leave out data_path (--data)', which it had not passed.
    study, data = stored
    study.set_user_attr(RECORD, data | {"data_path": str(tmp_path)})
    with pytest.raises(InputError) as refused:
        SweepSettings.load(study).check_data(Path("/studies/kept"), "kept", None, "1" * 64)
    assert str(refused.value) == (
        f"/studies/kept: study 'kept' was run on {tmp_path} (000000000000), not on the dataset given (111111111111); "
        f"pass data_path={str(tmp_path)!r} instead of dataset= to go on with its data, or begin a new study folder for "
        "this dataset"
    )


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_sweeps_of_other_folders_claiming_one_study_at_once_record_it_once(
    stored: tuple[optuna.Study, dict], tmp_path: Path, kind: str
) -> None:
    """Sweeps of four folders making one study on one storage at once: one makes and records it, the others get its
    record to be checked against (each found no record, saved its own, and swept another folder's study)."""
    location = str(tmp_path / "shared.journal") if kind == "journal" else f"sqlite:///{tmp_path / 'shared.db'}"
    open_storage(location)  # its tables made (SQLite), as a sweep's first look at the study does
    claims: dict[str, SweepSettings | None] = {}
    start = threading.Barrier(4)

    def claim(record: SweepSettings) -> None:
        storage = open_storage(location)  # one each, as processes have
        start.wait(timeout=30)
        claims[record.study_dir] = record.claim("kept", storage, "maximize")[1]

    records = [SweepSettings.model_validate(stored[1] | {"study_dir": f"/studies/{n}"}) for n in range(4)]
    threads = [threading.Thread(target=claim, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    (maker,) = [study_dir for study_dir, record in claims.items() if record is None]
    assert len(claims) == 4 and all(record.study_dir == maker for record in claims.values() if record is not None)
    assert SweepSettings.load(optuna.load_study(study_name="kept", storage=open_storage(location))).study_dir == maker


def test_a_study_of_plain_optuna_is_refused_once_no_record_comes(
    stored: tuple[optuna.Study, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study of the sweep's name made by plain Optuna, with no trial: the sweep waits for a record its maker would
    save, then refuses it, as one with trials, and leaves it as it was."""
    monkeypatch.setattr(sweep_settings, "RECORD_WAIT_S", 0.3)
    storage = open_storage(str(tmp_path / "plain.journal"))
    optuna.create_study(study_name="kept", storage=storage)
    with pytest.raises(InputError) as refused:
        SweepSettings.load(stored[0]).claim("kept", storage, "maximize")
    assert str(refused.value) == (
        f"study 'kept' in storage {stored[1]['storage']!r} was not made by run_local_hpo_sweep (no 'sweep' user "
        "attribute of format 3); choose another study name, or delete it (optuna delete-study)"
    )
    assert optuna.load_study(study_name="kept", storage=storage).user_attrs == {}
