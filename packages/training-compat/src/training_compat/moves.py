"""Where every legacy import path went: the one table the shims, the warnings and `training migrate` read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Move:
    """A legacy module's new home: `new` holds everything it had; `prefer` re-exports its public names, which
    `training migrate` writes when it can (`from training.core import train_model`)."""

    new: str
    prefer: str | None = None


# Legacy module -> its new home. Each key has a tiny shim module in this distribution.
MODULES: dict[str, Move] = {
    "training.trainer": Move("training.core.trainer", prefer="training.core"),
    "training.model": Move("training.core.model", prefer="training.core"),
    "training.metrics": Move("training.core.metrics", prefer="training.core"),
    "training.evaluator": Move("training.core.evaluator", prefer="training.core"),
    "training.cv_utils": Move("training.core.cv_utils"),
    "training.data": Move("data.loaders"),
    "training.distributed": Move("training.execution"),
    "hpo": Move("training.hpo"),
    "hpo.search_space": Move("training.hpo.search_space", prefer="training.hpo"),
    "hpo.sweep": Move("training.hpo.sweep", prefer="training.hpo"),
    "hpo.best_config": Move("training.hpo.best_config", prefer="training.hpo"),
    "training_exec": Move("training.execution"),
}

# Legacy top-level name (`from training import NAME`) -> the module to import it from now.
NAMES: dict[str, str] = {
    "train_model": "training.core",
    "create_model_and_tokenizer": "training.core",
    "compute_metrics": "training.core",
    "evaluate_model": "training.core",
    "create_kfold_splits": "training.core.cv_utils",
    "run_local_hpo_sweep": "training.hpo",
    "extract_best_config_from_study": "training.hpo",
    "create_search_space": "training.hpo",
    "execute_final_training": "training.execution",
    "extract_lineage_from_best_model": "training.execution",
    "create_run_context": "training.execution",
    "load_dataset": "data.loaders",
    "build_training_config": "training.config",
}
