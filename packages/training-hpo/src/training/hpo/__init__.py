"""k-fold hyperparameter sweeps with Optuna: search spaces, local and distributed studies, the best config.

Names resolve on first use, so importing this package does not import optuna or torch.
"""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.hpo._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "create_search_space": "training.hpo.search_space",
        "extract_best_config_from_study": "training.hpo.best_config",
        "run_local_hpo_sweep": "training.hpo.sweep",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.hpo.best_config import extract_best_config_from_study
    from training.hpo.search_space import create_search_space
    from training.hpo.sweep import run_local_hpo_sweep
