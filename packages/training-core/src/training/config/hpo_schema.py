"""The sweep config (`hpo/<name>.yaml`): its search space of typed parameters, sampler, pruner, budget and storage;
a parameter names a field of the training config that a trial may set."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from training.common.store_urls import missing_colon
from training.config.schema import Bool, Float, Int, Metric, ModelConfig, OptimizationConfig, SamplerSeed, Section


class _Range(Section):
    """A parameter between `low` and `high` (above 0 on a log scale)."""

    @model_validator(mode="after")
    def _bounds(self) -> _Range:
        low, high = self.low, self.high
        if low >= high:
            raise ValueError(f"low {low} must be below high {high}")
        if (self.type == "loguniform" or getattr(self, "log", False)) and low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {low}")
        return self


class Choice(Section):
    type: Literal["choice"]
    values: tuple[Any, ...] = Field(min_length=1)
    condition: dict[str, Any] | None = None


class IntRange(_Range):
    type: Literal["int"]
    low: Int
    high: Int
    step: Int = Field(default=1, ge=1)
    log: Bool = False
    condition: dict[str, Any] | None = None


class Uniform(_Range):
    type: Literal["uniform"]
    low: Float
    high: Float
    condition: dict[str, Any] | None = None


class LogUniform(_Range):
    type: Literal["loguniform"]
    low: Float
    high: Float
    condition: dict[str, Any] | None = None


class Fixed(Section):
    type: Literal["fixed"]
    value: Any
    condition: dict[str, Any] | None = None


Parameter = Annotated[Choice | IntRange | Uniform | LogUniform | Fixed, Field(discriminator="type")]


class SamplerConfig(Section):
    type: Literal["tpe", "random", "grid"] = "tpe"
    seed: SamplerSeed = 42


class PrunerConfig(Section):
    type: Literal["median", "hyperband", "none"] = "median"
    warmup_steps: Int = Field(default=1, ge=0)
    startup_trials: Int = Field(default=3, ge=0, description="median: trials that finish before it compares")


class HPOConfig(Section):
    """`hpo/<name>.yaml`: a k-fold sweep's search space, objective, budget and storage."""

    name: str
    metric: Metric = "entity_f1"
    direction: Literal["maximize", "minimize"] = "maximize"
    k_folds: Int = Field(default=3, ge=2, le=20)
    validation: Literal["kfold", "split"] = Field(
        default="kfold", description="k-fold CV of train, or train on train and score on the fixed validation split"
    )
    n_trials: Int | None = Field(default=10, ge=1)
    timeout_s: Float | None = Field(default=None, gt=0)
    sampler: SamplerConfig = SamplerConfig()
    pruner: PrunerConfig = PrunerConfig()
    storage: str | None = Field(default=None, description="RDB URL or journal file; default SQLite in the study folder")
    isolation: Literal["subprocess", "inprocess"] = "subprocess"
    parallel_trials: Int = Field(default=1, ge=1, description="trials one sweep process runs at once, 4 a core at most")
    keep_checkpoints: Literal["best", "all", "none"] = "best"
    max_failed_trials: Int = Field(default=3, ge=1, description="failed trials in a row that stop the sweep")
    oom_retry: Bool = Field(default=False, description="retry a CUDA out-of-memory trial once at half batch size")
    heartbeat_interval: Int = Field(default=60, ge=1, description="RDB storages: seconds between trial heartbeats")
    grace_period: Int = Field(default=180, ge=1, description="RDB storages: seconds without heartbeat = dead trial")
    search_space: dict[str, Parameter] = Field(min_length=1)

    @field_validator("search_space")
    @classmethod
    def _known_parameters(cls, space: dict[str, Parameter], info: ValidationInfo) -> dict[str, Parameter]:
        for key, parameter in space.items():
            check_tunable(key, recorded=info.context == RECORDED)
            for other in parameter.condition or {}:
                if other not in space:
                    raise ValueError(f"{key}.condition refers to {other!r}, which is not in the space")
        return space

    @field_validator("storage")
    @classmethod
    def _storage_is_a_url_or_a_path(cls, storage: str | None) -> str | None:
        if storage is not None and (problem := missing_colon(storage)):
            raise ValueError(problem)
        return storage

    @model_validator(mode="after")
    def _budget_and_parallelism(self) -> HPOConfig:
        if self.n_trials is None and self.timeout_s is None:
            raise ValueError("set n_trials or timeout_s: a sweep needs a budget")
        if self.parallel_trials > 1 and self.isolation == "inprocess":
            raise ValueError("parallel_trials > 1 needs isolation subprocess: in-process trials run one at a time")
        return self

    @model_validator(mode="after")
    def _grid_is_discrete(self) -> HPOConfig:
        """Grid sampling of a continuous range, refused here: the sampler, made later, failed on a written study."""
        continuous = [key for key, value in self.search_space.items() if isinstance(value, (Uniform, LogUniform))]
        if self.sampler.type == "grid" and continuous:
            kind = self.search_space[continuous[0]].type
            raise ValueError(
                f"sampler grid needs discrete parameters; search_space.{continuous[0]} is {kind}, which is continuous "
                "(use type choice or int, or sampler tpe/random)"
            )
        return self


TUNABLE_SECTIONS: dict[str, type[Section]] = {"training": OptimizationConfig, "model": ModelConfig}
# A sweep tunes one backbone: it alone is checked before trials start, and best configs and lineage name it.
UNTUNABLE_FIELDS = ("name", "backbone")
# The validation context of a study's own settings: a sweep of an earlier release may have tuned the backbone.
RECORDED = {"recorded": True}


def check_tunable(key: str, *, recorded: bool = False) -> None:
    """Raise `ValueError` unless `key` (`learning_rate` or `training.learning_rate`) is a tunable config field (or,
    `recorded` for a sweep that ran, the backbone)."""
    import difflib

    section, dot, name = key.rpartition(".")
    sections = [section] if dot else list(TUNABLE_SECTIONS)  # `.learning_rate` names the section '', not none
    if name in UNTUNABLE_FIELDS and "model" in sections and not recorded:
        raise ValueError(f"{key!r} is not tunable: a sweep tunes one backbone; run one sweep per backbone (--backbone)")
    if any(name in TUNABLE_SECTIONS[s].model_fields for s in sections if s in TUNABLE_SECTIONS):
        return
    valid = [f"{s}.{f}" for s, m in TUNABLE_SECTIONS.items() for f in m.model_fields if f not in UNTUNABLE_FIELDS]
    close = difflib.get_close_matches(key, valid + [v.split(".")[1] for v in valid], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{key!r} is not a parameter of the training config{hint}")
