"""The NER training engine: model and tokenizer, training, metrics, evaluation, prediction, k-fold splits.

Names resolve on first use, so importing this package does not import torch or transformers.
"""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.core._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "compute_metrics": "training.core.metrics",
        "create_kfold_splits": "training.core.cv_utils",
        "create_model_and_tokenizer": "training.core.model",
        "evaluate_model": "training.core.evaluator",
        "predict": "training.core.predict",
        "train_model": "training.core.trainer",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.core.cv_utils import create_kfold_splits
    from training.core.evaluator import evaluate_model
    from training.core.metrics import compute_metrics
    from training.core.model import create_model_and_tokenizer
    from training.core.predict import predict
    from training.core.trainer import train_model
