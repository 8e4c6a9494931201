"""`create_search_space`: one backend-neutral search space that suggests on Optuna trials and compiles to Azure ML.

Keys are dotted config keys (`learning_rate` is completed). `condition: {other: value}` makes a parameter active only
when `other` took `value`; Azure samples every parameter and the trial drops the inactive ones (`resolve`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import TypeAdapter, ValidationError

from training.common.errors import ConfigError, first_line
from training.common.optional import require
from training.config.builder import load_hpo_config
from training.config.hpo_schema import (
    TUNABLE_SECTIONS,
    Choice,
    Fixed,
    HPOConfig,
    IntRange,
    LogUniform,
    Parameter,
    Uniform,
)
from training.config.schema import TrainingConfig
from training.config.validation import validate

logger = logging.getLogger("training.hpo")
AzureAlgorithm = Literal["random", "bayesian", "grid"]
# Distributions each Azure ML sampling algorithm accepts (Azure ML "hyperparameter tuning" documentation).
AZURE_SUPPORTED = {
    "random": ("choice", "uniform", "loguniform", "qloguniform"),
    "bayesian": ("choice", "uniform"),
    "grid": ("choice",),
}
CHOICE_TYPES = (str, int, float, bool, type(None))
MAX_CORNER_CHECKS = 4096  # combinations of corner values `SearchSpace.check` validates (about 0.1 s a thousand)


@dataclass(frozen=True)
class SearchSpace:
    """Parameters by dotted config key, ordered so that every condition's parameter comes before its dependents."""

    parameters: Mapping[str, Parameter]
    hpo_config: HPOConfig | None = None

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether `name`'s condition holds for the `values` chosen so far."""
        condition = self.parameters[name].condition or {}
        return all(other in values and values[other] == wanted for other, wanted in condition.items())

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Suggest the active parameters on an Optuna trial; fixed values are included without being suggested."""
        values: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            if self.is_active(name, values):
                values[name] = _suggest(trial, name, parameter)
        return values

    def resolve(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration a flattened sample (values or their text) stands for: typed, fixed ones added, inactive
        ones dropped."""
        unknown = sorted(set(sampled) - set(self.parameters))
        if unknown:
            raise ConfigError(f"sampled values {unknown} are not in the search space {list(self.parameters)}")
        values: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            if isinstance(parameter, Fixed):
                value = parameter.value
            elif name in sampled:
                value = _coerce(name, parameter, sampled[name])
            else:
                raise ConfigError(f"search_space.{name}: no value was sampled for it")
            if self.is_active(name, values):
                values[name] = value
        return values

    def check(self, base: TrainingConfig) -> None:
        """Refuse, before any trial runs, a corner value (a choice, a range's end, a value a condition asks for) that
        the config's own rules refuse in `base` in every combination with the other parameters' corners that can be
        drawn with it (another tuned parameter may make it fit). A space of more combinations than
        `MAX_CORNER_CHECKS` is combined on as many seeded random draws."""
        combinations = list(itertools.islice(self._corners(list(self.parameters), {}), MAX_CORNER_CHECKS + 1))
        if len(combinations) > MAX_CORNER_CHECKS:
            draw = random.Random(0)
            combinations = [self._drawn_corners(draw) for _ in range(MAX_CORNER_CHECKS)]
        fitted: set[tuple[str, str]] = set()
        refused: dict[tuple[str, str], ConfigError] = {}  # each corner's first refusal, in the order met
        failing = 0
        for values in combinations:
            corners = {(key, repr(value)) for key, value in values.items()}
            shown = ", ".join(f"{key}={value!r}" for key, value in values.items())
            try:
                base.with_values(values, f"search_space: {shown} does not fit the config")
                fitted |= corners
            except ConfigError as error:
                failing += 1
                refused |= {corner: error for corner in corners if corner not in refused}
        error = next((error for corner, error in refused.items() if corner not in fitted), None)
        if error is not None:
            raise error
        if failing:  # each value fits somewhere, but trials drawn in the refused part will fail
            logger.warning(
                "search_space: %d of %d combinations of corner values checked (%.0f%%) do not fit the config; "
                "trials drawn there will fail, e.g. %s",
                failing,
                len(combinations),
                100 * failing / len(combinations),
                first_line(next(iter(refused.values()))).removeprefix("search_space: "),
            )

    def _drawn_corners(self, draw: random.Random) -> dict[str, Any]:
        """One combination of corner values, each active parameter's drawn at random."""
        values: dict[str, Any] = {}
        for name, parameter in self.parameters.items():
            if self.is_active(name, values):
                values[name] = draw.choice(self._corner_values(name, parameter))
        return values

    def _corners(self, names: list[str], values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every combination of the corner values of `names` that can be drawn together with `values`."""
        if not names:
            yield values
            return
        name, rest = names[0], names[1:]
        if not self.is_active(name, values):
            yield from self._corners(rest, values)
            return
        for value in self._corner_values(name, self.parameters[name]):
            yield from self._corners(rest, values | {name: value})

    def _corner_values(self, name: str, parameter: Parameter) -> list[Any]:
        """Each choice or a range's two ends, and every value of `name` a condition asks for."""
        corners = _values(parameter) if isinstance(parameter, (Choice, Fixed)) else (parameter.low, parameter.high)
        wanted = [p.condition[name] for p in self.parameters.values() if name in (p.condition or {})]
        return list(dict.fromkeys([*corners, *wanted]))

    def upper_bound(self, name: str) -> Any:
        """The largest value `name` can take, or None when it is not in the space."""
        parameter = self.parameters.get(name)
        if parameter is None:
            return None
        return max(_values(parameter)) if not isinstance(parameter, (Uniform, LogUniform)) else parameter.high

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each sampled parameter, for Optuna's grid sampler; continuous ranges are an error."""
        grid = {}
        for name, parameter in self.parameters.items():
            if isinstance(parameter, (Uniform, LogUniform)):
                raise ConfigError(
                    f"search_space.{name}: grid sampling needs discrete parameters; {parameter.type} is continuous "
                    "(use type choice or int, or sampler tpe/random)"
                )
            if not isinstance(parameter, Fixed):
                grid[name] = list(_values(parameter))
        return grid

    def to_azure(self, algorithm: AzureAlgorithm = "random") -> dict[str, Any]:
        """`azure.ai.ml.sweep` distributions by Azure input name: ints as `Choice` (`QLogUniform` on a log scale),
        log-uniform floats over natural logarithms; one the algorithm does not support is an error."""
        sweep = require("azure.ai.ml.sweep", "training.hpo.SearchSpace.to_azure")
        compiled = {}
        for name, parameter in self.parameters.items():
            if isinstance(parameter, Fixed):
                continue
            if isinstance(parameter, Choice) or (isinstance(parameter, IntRange) and not parameter.log):
                kind, distribution = "choice", sweep.Choice(values=list(_values(parameter)))
            elif isinstance(parameter, IntRange):
                low, high = math.log(parameter.low), math.log(parameter.high)
                kind, distribution = "qloguniform", sweep.QLogUniform(min_value=low, max_value=high, q=1)
            elif isinstance(parameter, Uniform):
                kind, distribution = "uniform", sweep.Uniform(min_value=parameter.low, max_value=parameter.high)
            else:
                low, high = math.log(parameter.low), math.log(parameter.high)
                kind, distribution = "loguniform", sweep.LogUniform(min_value=low, max_value=high)
            if kind not in AZURE_SUPPORTED[algorithm]:
                raise ConfigError(
                    f"search_space.{name}: Azure ML {algorithm} sampling does not support {kind} distributions "
                    f"(it supports {', '.join(AZURE_SUPPORTED[algorithm])}); use sampler random or a choice"
                )
            compiled[azure_input_name(name)] = distribution
        return compiled


def azure_input_name(key: str) -> str:
    """The Azure ML input name of a dotted key: `training.learning_rate` -> `training__learning_rate`."""
    return key.replace(".", "__")


def create_search_space(
    hpo_config: HPOConfig | str | os.PathLike[str] | Mapping[str, Any] | SearchSpace,
    *,
    recorded: bool = False,
) -> SearchSpace:
    """The search space of an `HPOConfig`, an `hpo/<name>.yaml` file, or a mapping like its `search_space` section.

    Values must fit their config fields, int steps divide their range, conditions name a reachable value, no cycles.
    A `recorded` one (a started study's settings) had its values checked when it began: checks added since are not
    applied to it, so they never keep an old study from being resumed.
    """
    if isinstance(hpo_config, SearchSpace):
        return hpo_config
    if isinstance(hpo_config, HPOConfig):
        settings, source = hpo_config, f"hpo config {hpo_config.name!r}"
    elif isinstance(hpo_config, (str, os.PathLike)):
        settings, source = load_hpo_config(hpo_config), str(Path(hpo_config))
    elif isinstance(hpo_config, Mapping):
        source = "<search space>"
        space = validate(HPOConfig, {"name": "search_space", "search_space": dict(hpo_config)}, source)
        return SearchSpace(_checked(space.search_space, source))
    else:
        raise ConfigError(
            f"create_search_space: expected an HPOConfig, a path to an hpo YAML file or a mapping, "
            f"got {type(hpo_config).__name__}"
        )
    return SearchSpace(_checked(settings.search_space, source, recorded), settings)


def full_key(key: str) -> str:
    """The dotted config key of a tunable name: `learning_rate` -> `training.learning_rate`."""
    if "." in key:
        return key
    return next(f"{section}.{key}" for section, model in TUNABLE_SECTIONS.items() if key in model.model_fields)


def _checked(space: Mapping[str, Parameter], source: str, recorded: bool = False) -> dict[str, Parameter]:
    """The space keyed by full dotted keys in dependency order, after the checks the schema cannot make alone."""
    keys = {name: full_key(name) for name in space}
    parameters: dict[str, Parameter] = {}
    for name, parameter in space.items():
        key = keys[name]
        if key in parameters:
            raise ConfigError(f"{source}: search_space.{name}: {key} is already in the space under another name")
        condition = {keys[other]: value for other, value in (parameter.condition or {}).items()}
        parameters[key] = parameter.model_copy(update={"condition": condition or None})
    for key, parameter in parameters.items():
        if not recorded:
            _check_values(source, key, parameter)
        for other, wanted in (parameter.condition or {}).items():
            _check_condition(source, key, other, parameters[other], wanted)
    return _ordered(source, parameters)


def _check_values(source: str, key: str, parameter: Parameter) -> None:
    section, name = key.split(".", 1)
    field = TUNABLE_SECTIONS[section].model_fields[name]
    where = f"{source}: search_space.{key}"
    if isinstance(parameter, IntRange):
        span = parameter.high - parameter.low
        if parameter.log and parameter.step != 1:
            raise ConfigError(f"{where}: step {parameter.step} cannot be combined with log: true (use step 1)")
        if parameter.step > span:
            raise ConfigError(
                f"{where}: step {parameter.step} is larger than the range {parameter.low}..{parameter.high}"
            )
        if span % parameter.step:
            raise ConfigError(
                f"{where}: high {parameter.high} must be low {parameter.low} plus a multiple of step {parameter.step}"
            )
    if isinstance(parameter, (Uniform, LogUniform)) and _is_integer_field(field.annotation):
        raise ConfigError(f"{where}: {key} is an integer; use type int instead of {parameter.type}")
    if isinstance(parameter, Choice):
        for value in parameter.values:
            if not isinstance(value, CHOICE_TYPES):
                raise ConfigError(f"{where}: choice values must be strings, numbers, booleans or null, got {value!r}")
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    )
    for label, value in _checked_values(parameter):
        try:
            adapter.validate_python(value)  # the fields' own strict types: "3" is no batch size, nor 1 a boolean
        except ValidationError as error:
            problem = error.errors()[0]["msg"].replace("Input should be", "expected")
            raise ConfigError(f"{where}.{label}: {value!r} is not a valid {key}: {problem}") from None
    values = parameter.values if isinstance(parameter, Choice) else ()
    for index, value in enumerate(values):  # once valid (a boolean is no number): sampled twice as often, run twice
        if value in values[:index]:
            first = values.index(value)
            raise ConfigError(
                f"{where}.values[{index}]: {value!r} is listed already (values[{first}]); list each value once"
            )
    if len(values) == 1:  # Optuna would suggest it in every trial; a missing second value is the likelier intent
        fixed = f"type: fixed, value: {json.dumps(values[0])}"  # as YAML reads it back: null, not None
        raise ConfigError(f"{where}.values: one value is not searched; list more, or fix it with {fixed}")


def _checked_values(parameter: Parameter) -> list[tuple[str, Any]]:
    if isinstance(parameter, Fixed):
        return [("value", parameter.value)]
    if isinstance(parameter, Choice):
        return [(f"values[{i}]", value) for i, value in enumerate(parameter.values)]
    return [("low", parameter.low), ("high", parameter.high)]


def _is_integer_field(annotation: Any) -> bool:
    options = {getattr(option, "__origin__", option) for option in getattr(annotation, "__args__", (annotation,))}
    return int in options and float not in options  # Annotated[int, ...] | None is an integer too


def _check_condition(source: str, key: str, other: str, parameter: Parameter, wanted: Any) -> None:
    where = f"{source}: search_space.{key}.condition.{other}"
    if other == key:
        raise ConfigError(f"{where}: a parameter cannot be conditional on itself")
    if isinstance(parameter, (Uniform, LogUniform)):
        raise ConfigError(f"{where}: a condition needs a discrete parameter; {other} is {parameter.type}")
    possible = _values(parameter)
    if wanted not in possible:
        shown = list(possible) if len(possible) <= 10 else f"{possible[0]}..{possible[-1]}"
        raise ConfigError(f"{where}: {other} never takes {wanted!r} (it takes {shown}), so {key} would never be tuned")


def _ordered(source: str, parameters: dict[str, Parameter]) -> dict[str, Parameter]:
    """Topological order (conditions first), keeping the written order otherwise; a cycle is an error."""
    ordered: dict[str, Parameter] = {}
    visiting: list[str] = []

    def visit(key: str) -> None:
        if key in ordered:
            return
        if key in visiting:
            cycle = " -> ".join([*visiting[visiting.index(key) :], key])
            raise ConfigError(f"{source}: search_space: conditions form a cycle: {cycle}")
        visiting.append(key)
        for other in parameters[key].condition or {}:
            visit(other)
        visiting.pop()
        ordered[key] = parameters[key]

    for key in parameters:
        visit(key)
    return ordered


def _values(parameter: Parameter) -> tuple[Any, ...] | range:
    """The values of a discrete parameter."""
    if isinstance(parameter, Choice):
        return parameter.values
    if isinstance(parameter, Fixed):
        return (parameter.value,)
    if isinstance(parameter, IntRange):
        return range(parameter.low, parameter.high + 1, parameter.step)
    raise TypeError(f"{parameter.type} parameters are continuous")


def _suggest(trial: Any, name: str, parameter: Parameter) -> Any:
    if isinstance(parameter, Choice):
        return trial.suggest_categorical(name, list(parameter.values))
    if isinstance(parameter, IntRange):
        return trial.suggest_int(name, parameter.low, parameter.high, step=parameter.step, log=parameter.log)
    if isinstance(parameter, Uniform):
        return trial.suggest_float(name, parameter.low, parameter.high)
    if isinstance(parameter, LogUniform):
        return trial.suggest_float(name, parameter.low, parameter.high, log=True)
    return parameter.value


def _coerce(name: str, parameter: Parameter, raw: Any) -> Any:
    """A sampled value (or its text) as the parameter's type; choices match by value or by their text."""
    try:
        if isinstance(parameter, IntRange):
            return round(float(raw))
        if isinstance(parameter, (Uniform, LogUniform)):
            return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"search_space.{name}: {raw!r} is not a number") from None
    choices = _values(parameter)
    for value in choices:
        if value == raw and type(value) is type(raw):
            return value
    text = str(raw)
    for value in choices:
        if str(value) == text or (isinstance(value, bool) and str(value).lower() == text.lower()):
            return value
    raise ConfigError(f"search_space.{name}: {raw!r} is not one of {list(choices)}")
