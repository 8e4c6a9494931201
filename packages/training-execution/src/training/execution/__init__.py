"""Where training runs: run contexts (single process or DDP), launch backends, final training, lineage.
Names resolve on first use, so importing this package does not import torch or azure."""

from typing import TYPE_CHECKING

from training.common.lazy import attach
from training.execution._version import __version__

__getattr__, __dir__, _names = attach(
    __name__,
    {
        "JobHandle": "training.execution.handle",
        "JobSpec": "training.execution.job_spec",
        "Lineage": "training.execution.lineage",
        "build_azure_job": "training.execution.azure_job",
        "create_run_context": "training.core.run_context",
        "execute_final_training": "training.execution.final",
        "extract_lineage_from_best_model": "training.execution.final",
        "get_backend": "training.execution.backends",
        "record_lineage": "training.execution.runner",
        "run_job": "training.execution.runner",
        "write_job_yaml": "training.execution.azure_job",
    },
)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from training.core.run_context import create_run_context
    from training.execution.azure_job import build_azure_job, write_job_yaml
    from training.execution.backends import get_backend
    from training.execution.final import execute_final_training, extract_lineage_from_best_model
    from training.execution.handle import JobHandle
    from training.execution.job_spec import JobSpec
    from training.execution.lineage import Lineage
    from training.execution.runner import record_lineage, run_job
