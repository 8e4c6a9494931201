"""Typed, validated configuration read from a config folder of YAML files."""

from typing import TYPE_CHECKING

from training.common.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "AzureConfig": "training.config.execution",
        "BestConfig": "training.config.best",
        "DataColumns": "training.config.schema",
        "DataConfig": "training.config.schema",
        "ExecutionConfig": "training.config.execution",
        "HPOConfig": "training.config.hpo_schema",
        "ModelConfig": "training.config.schema",
        "OptimizationConfig": "training.config.schema",
        "StudyRef": "training.config.best",
        "TrainingConfig": "training.config.schema",
        "build_training_config": "training.config.builder",
        "load_execution_config": "training.config.builder",
        "load_hpo_config": "training.config.builder",
    },
)

if TYPE_CHECKING:
    from training.config.best import BestConfig, StudyRef
    from training.config.builder import build_training_config, load_execution_config, load_hpo_config
    from training.config.execution import AzureConfig, ExecutionConfig
    from training.config.hpo_schema import HPOConfig
    from training.config.schema import DataColumns, DataConfig, ModelConfig, OptimizationConfig, TrainingConfig
