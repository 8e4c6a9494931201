"""The NER training engine: model and tokenizer, training, metrics, evaluation, prediction, k-fold splits.

Names resolve on first use, so importing this package does not import torch or transformers.
"""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.core._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "Callback": "training.core.callbacks",
        "Entity": "training.core.predictor",
        "Evaluation": "training.core.run_metrics",
        "EvaluationResult": "training.core.evaluator",
        "HistoryEntry": "training.core.run_metrics",
        "Predictor": "training.core.predictor",
        "RunContext": "training.core.run_context",
        "RunMetrics": "training.core.run_metrics",
        "TrainResult": "training.core.result",
        "TrainerState": "training.core.callbacks",
        "compute_metrics": "training.core.metrics",
        "create_kfold_splits": "training.core.cv_utils",
        "create_model_and_tokenizer": "training.core.model",
        "evaluate_model": "training.core.evaluator",
        "load_model": "training.core.model",
        "predict": "training.core.predictor",
        "save_model": "training.core.model",
        "train_model": "training.core.trainer",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.core.callbacks import Callback, TrainerState
    from training.core.cv_utils import create_kfold_splits
    from training.core.evaluator import EvaluationResult, evaluate_model
    from training.core.metrics import compute_metrics
    from training.core.model import create_model_and_tokenizer, load_model, save_model
    from training.core.predictor import Entity, Predictor, predict
    from training.core.result import TrainResult
    from training.core.run_context import RunContext
    from training.core.run_metrics import Evaluation, HistoryEntry, RunMetrics
    from training.core.trainer import train_model
