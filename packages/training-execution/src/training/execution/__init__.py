"""Where training runs: run contexts (single process or DDP), launch backends, final training, lineage.

Names resolve on first use, so importing this package does not import torch or azure.
"""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.execution._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "create_run_context": "training.execution.context",
        "execute_final_training": "training.execution.final",
        "extract_lineage_from_best_model": "training.execution.lineage",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.execution.context import create_run_context
    from training.execution.final import execute_final_training
    from training.execution.lineage import extract_lineage_from_best_model
