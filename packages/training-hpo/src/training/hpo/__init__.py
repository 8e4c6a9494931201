"""k-fold hyperparameter sweeps with Optuna: search spaces, local and distributed studies, the best config.

Names resolve on first use, so importing this package does not import optuna or torch.
"""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.hpo._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "EventSink": "training.hpo.events",
        "SearchSpace": "training.hpo.search_space",
        "build_azure_sweep_job": "training.hpo.azure_sweep",
        "create_search_space": "training.hpo.search_space",
        "extract_best_config_from_study": "training.hpo.best_config",
        "load_study": "training.hpo.storage",
        "parse_event": "training.hpo.events",
        "refit": "training.hpo.refit_job",
        "resume_hpo_sweep": "training.hpo.sweep",
        "run_local_hpo_sweep": "training.hpo.sweep",
        "submit_azure_sweep_job": "training.hpo.azure_sweep",
        "trials_table": "training.hpo.report",
        "write_azure_sweep_job": "training.hpo.azure_sweep",
        "write_report": "training.hpo.report",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.hpo.azure_sweep import build_azure_sweep_job, submit_azure_sweep_job, write_azure_sweep_job
    from training.hpo.best_config import extract_best_config_from_study
    from training.hpo.events import EventSink, parse_event
    from training.hpo.refit_job import refit
    from training.hpo.report import trials_table, write_report
    from training.hpo.search_space import SearchSpace, create_search_space
    from training.hpo.storage import load_study
    from training.hpo.sweep import resume_hpo_sweep, run_local_hpo_sweep
