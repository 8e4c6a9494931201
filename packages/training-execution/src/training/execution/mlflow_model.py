"""The final model as an MLflow pyfunc model: `mlflow.pyfunc.load_model(uri).predict([texts])` returns the entities
our `Predictor` finds, so teams serve and score it with MLflow's own tools (`mlflow models serve`, batch scoring)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from training.common.errors import InputError
from training.core.run_folder import RunFolder
from training.core.run_metrics import Precision
from training.execution._version import __version__

PYFUNC_PATH = "pyfunc"


class PredictorModel(mlflow.pyfunc.PythonModel):
    """Our `Predictor` behind MLflow's pyfunc interface: texts in, one list of entity dicts per text out. It holds
    what the run folder beside the model told `Predictor.from_folder`, which the logged model lacks: the window
    settings, and the precision the run evaluated in (computed in where the loading machine has it natively)."""

    trained: Precision | None = None  # models logged before it was kept: fp32, as they predicted then

    def __init__(self, max_length: int, stride: int, trained: Precision | None = None) -> None:
        self.max_length, self.stride, self.trained = max_length, stride, trained
        self.predictor: Any = None

    def load_context(self, context: Any) -> None:
        from training.core.precision import inference_precision, resolve_device
        from training.core.predictor import Predictor

        precision = inference_precision(None, resolve_device(None), self.trained)
        self.predictor = Predictor.from_folder(
            context.artifacts["model"], max_length=self.max_length, stride=self.stride, precision=precision
        )

    def predict(
        self, context: Any, model_input: list[str], params: dict[str, Any] | None = None
    ) -> list[list[dict[str, Any]]]:
        """One list of entities (start, end, label, text, score) per text; MLflow checks the input is texts."""
        return [[asdict(entity) for entity in found] for found in self.predictor(list(model_input))]


def log_pyfunc_model(client: Any, run_id: str, run: RunFolder) -> str:
    """Save the run's model as a pyfunc model and log it to `run_id` under `pyfunc/`; returns its `runs:/` URI."""
    config = run.read_config()
    if config is None:
        raise InputError(f"{run.root}: no config.yaml; the pyfunc model needs the run's window settings")
    settings = config.model
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / PYFUNC_PATH
        mlflow.pyfunc.save_model(
            str(path),
            python_model=PredictorModel(settings.max_length, settings.stride, run.recorded_precision()),
            artifacts={"model": str(run.model)},
            pip_requirements=[f"training-execution[mlflow]=={__version__}"],
        )
        client.log_artifacts(run_id, str(path), PYFUNC_PATH)
    return f"runs:/{run_id}/{PYFUNC_PATH}"
