"""TensorBoard event files of a run (`tracking.tensorboard: true`), read back with TensorBoard's own event reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from data.loaders import load_dataset
from training.config import TrainingConfig
from training.core import train_model

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason='needs pip install "training-core[tensorboard]"'
)


@pytest.mark.slow
def test_a_run_writes_loss_learning_rate_and_validation_metrics_per_step(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    config = tiny_config.with_values({"tracking.tensorboard": True, "training.warmup_ratio": 0.5})
    dataset = load_dataset(config.data.path, labels=config.data.labels)

    result = train_model(config, dataset, tmp_path / "run")

    events = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "validation/entity_f1", "validation/loss"} <= tags
    steps_per_epoch = result.metrics.history[0].step
    loss = events.Scalars("train/loss")
    assert [event.step for event in loss] == list(range(1, 2 * steps_per_epoch + 1))
    assert all(event.value > 0 for event in loss)
    rates = [event.value for event in events.Scalars("train/learning_rate")]
    assert max(rates) <= config.training.learning_rate and rates[-1] < max(rates)  # warm-up, then linear decay
    f1 = events.Scalars("validation/entity_f1")
    assert [(event.step, pytest.approx(event.value)) for event in f1] == [
        (epoch.step, epoch.entity_f1) for epoch in result.metrics.history
    ]


def test_no_event_files_unless_asked_for(tiny_config: TrainingConfig, tmp_path: Path) -> None:
    dataset = load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)
    train_model(tiny_config.with_values({"training.num_epochs": 1}), dataset, tmp_path / "run")
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_tracking_does_not_change_the_config_fingerprint(tiny_config: TrainingConfig) -> None:
    tracked = tiny_config.with_values({"tracking.tensorboard": True, "tracking.mlflow": "sqlite:///m.db"})
    assert tracked.fingerprint == tiny_config.fingerprint
    assert TrainingConfig.from_yaml(tracked.to_yaml()).tracking == tracked.tracking


@pytest.mark.slow
def test_without_tensorboard_installed_the_run_says_which_install_fixes_it(
    tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    config = tiny_config.with_values({"tracking.tensorboard": True})
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorboard"] = None  # looks uninstalled
        from training.config import TrainingConfig
        from training.core import train_model
        from data.loaders import load_dataset
        config = TrainingConfig.from_yaml({config.to_yaml()!r})
        train_model(config, load_dataset(config.data.path, labels=config.data.labels), {str(tmp_path / "run")!r})
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0
    assert (
        "tracking.tensorboard needs 'tensorboard', which is not installed: "
        'pip install "training-core[tensorboard]"' in completed.stderr
    )
    assert not (tmp_path / "run" / "model").exists()
