"""`create_search_space`: one space from a config, a file or a mapping; Optuna suggestions; Azure distributions."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from training.common.errors import ConfigError
from training.config import TrainingConfig, load_hpo_config
from training.hpo import SearchSpace, create_search_space

SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
    "scheduler": {"type": "choice", "values": ["linear", "cosine"]},
    "training.warmup_ratio": {"type": "uniform", "low": 0.0, "high": 0.3, "condition": {"scheduler": "cosine"}},
    "batch_size": {"type": "int", "low": 4, "high": 16, "step": 4},
    "num_epochs": {"type": "int", "low": 1, "high": 8, "log": True},
    "seed": {"type": "fixed", "value": 7},
}


def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'space.db'}", sampler=optuna.samplers.RandomSampler(seed=0)
    )


def test_a_space_from_a_config_a_file_or_a_mapping_is_the_same(config_dir: Path) -> None:
    path = config_dir / "hpo" / "tiny.yaml"
    from_file = create_search_space(path)
    from_config = create_search_space(load_hpo_config(path))
    from_mapping = create_search_space(load_hpo_config(path).model_dump()["search_space"])
    assert from_file.parameters == from_config.parameters == from_mapping.parameters
    assert list(from_file.parameters) == ["training.learning_rate", "training.batch_size"]
    assert from_file.hpo_config is not None and from_file.hpo_config.name == "tiny"
    assert from_mapping.hpo_config is None
    assert create_search_space(from_file) is from_file


def test_suggestions_respect_types_steps_and_conditions(tmp_path: Path) -> None:
    space = create_search_space(SPACE)
    assert list(space.parameters)[:3] == ["training.learning_rate", "training.scheduler", "training.warmup_ratio"]
    optuna_study = study(tmp_path)
    seen_schedulers = set()
    for _ in range(24):
        trial = optuna_study.ask()
        values = space.suggest(trial)
        optuna_study.tell(trial, 0.0)
        seen_schedulers.add(values["training.scheduler"])
        assert 1e-5 <= values["training.learning_rate"] <= 1e-3
        assert values["training.batch_size"] in (4, 8, 12, 16)
        assert isinstance(values["training.num_epochs"], int) and 1 <= values["training.num_epochs"] <= 8
        assert ("training.warmup_ratio" in values) == (values["training.scheduler"] == "cosine")
        assert values["training.seed"] == 7 and "training.seed" not in trial.params
    assert seen_schedulers == {"linear", "cosine"}


def test_enqueued_values_are_suggested_as_given(tmp_path: Path) -> None:
    space = create_search_space(SPACE)
    optuna_study = study(tmp_path)
    wanted = {"training.learning_rate": 3e-4, "training.scheduler": "cosine", "training.warmup_ratio": 0.05}
    optuna_study.enqueue_trial({**wanted, "training.batch_size": 8, "training.num_epochs": 2})
    values = space.suggest(optuna_study.ask())
    assert values == {**wanted, "training.batch_size": 8, "training.num_epochs": 2, "training.seed": 7}


def test_a_flattened_sample_resolves_to_the_configuration_it_stands_for() -> None:
    space = create_search_space(SPACE)
    sampled = {
        "training.learning_rate": "1e-4",
        "training.scheduler": "linear",
        "training.warmup_ratio": "0.2",
        "training.batch_size": "8.0",
        "training.num_epochs": "3",
    }
    assert space.resolve(sampled) == {
        "training.learning_rate": 1e-4,
        "training.scheduler": "linear",
        "training.batch_size": 8,
        "training.num_epochs": 3,
        "training.seed": 7,
    }
    with pytest.raises(ConfigError, match=r"'adam' is not one of \['linear', 'cosine'\]"):
        space.resolve({**sampled, "training.scheduler": "adam"})
    with pytest.raises(ConfigError, match=r"sampled values \['training.dropout'\] are not in the search space"):
        space.resolve({**sampled, "training.dropout": "0.1"})


def test_upper_bounds_and_grid() -> None:
    space = create_search_space(
        {"num_epochs": {"type": "choice", "values": [2, 5, 3]}, "seed": {"type": "fixed", "value": 1}}
    )
    assert space.upper_bound("training.num_epochs") == 5
    assert space.upper_bound("training.learning_rate") is None
    assert space.grid() == {"training.num_epochs": [2, 5, 3]}
    with pytest.raises(ConfigError, match="grid sampling needs discrete parameters; loguniform is continuous"):
        create_search_space(SPACE).grid()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_rate": {"type": "fixed", "value": "fast"}}, "learning_rate.value: 'fast' is not a valid"),
        ({"learning_rate": {"type": "uniform", "low": 0.0, "high": 0.1}}, "low: 0.0 is not a valid .* greater than 0"),
        ({"batch_size": {"type": "int", "low": 1, "high": 3, "step": 5}}, "step 5 is larger than the range 1..3"),
        (
            {"batch_size": {"type": "int", "low": 1, "high": 4, "step": 2}},
            "high 4 must be low 1 plus a multiple of step 2",
        ),
        ({"batch_size": {"type": "int", "low": 2, "high": 64, "step": 2, "log": True}}, "cannot be combined with log"),
        ({"num_epochs": {"type": "uniform", "low": 1, "high": 3}}, "num_epochs is an integer; use type int"),
        ({"batch_size": {"type": "choice", "values": ["8"]}}, r"values\[0\]: '8' is not a valid training.batch_size"),
        ({"scheduler": {"type": "choice", "values": ["linear", "warm"]}}, r"values\[1\]: 'warm' is not a valid"),
        (
            {"batch_size": {"type": "choice", "values": [True, 8]}},
            r"values\[0\]: True is not a valid training.batch_size: expected a valid integer$",
        ),
        ({"learning_rate": {"type": "loguniform", "low": 0.1, "high": 0.01}}, "low 0.1 must be below high 0.01"),
        (  # a value listed twice is sampled twice as often, and a grid runs it twice
            {"batch_size": {"type": "choice", "values": [8, 16, 8]}},
            r"batch_size.values\[2\]: 8 is listed already \(values\[0\]\); list each value once$",
        ),
        ({"batch_size": {"type": "choice", "values": [1, True]}}, r"values\[1\]: True is not a valid .* integer$"),
        (  # Optuna suggests a one-value choice in every trial: the space is smaller than it reads
            {"batch_size": {"type": "choice", "values": [16]}},
            r"batch_size.values: one value is not searched; list more, or fix it with type: fixed, value: 16$",
        ),
        (  # the value as YAML reads it back
            {"scheduler": {"type": "choice", "values": ["linear"]}},
            r'scheduler.values: one value is not searched; list more, or fix it with type: fixed, value: "linear"$',
        ),
        ({"learnin_rate": {"type": "fixed", "value": 1}}, "did you mean 'learning_rate'"),
        ({"dropout": {"type": "fixed", "value": 0.1, "condition": {"seed": 1}}}, "refers to 'seed', which is not in"),
        (
            {
                "scheduler": {"type": "choice", "values": ["linear", "constant"]},
                "warmup_ratio": {"type": "fixed", "value": 0.1, "condition": {"scheduler": "cosine"}},
            },
            "training.scheduler never takes 'cosine'",
        ),
        (
            {
                "learning_rate": {"type": "uniform", "low": 0.1, "high": 0.2},
                "seed": {"type": "fixed", "value": 1, "condition": {"learning_rate": 0.1}},
            },
            "a condition needs a discrete parameter",
        ),
        (
            {
                "seed": {"type": "choice", "values": [1, 2], "condition": {"batch_size": 2}},
                "batch_size": {"type": "choice", "values": [1, 2], "condition": {"seed": 1}},
            },
            "conditions form a cycle: training.seed -> training.batch_size -> training.seed",
        ),
        (
            {
                "learning_rate": {"type": "fixed", "value": 1e-4},
                "training.learning_rate": {"type": "fixed", "value": 1e-4},
            },
            "already in the space",
        ),
        ({"learning_rate": {"type": "gaussian", "mean": 1}}, "search_space.learning_rate"),
    ],
)
def test_invalid_spaces_fail_with_a_clear_error(space: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_search_space(space)


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("search_space:\n  batch_size: {type: int, low: 8, high: 4}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: search_space.batch_size: low 8 must be below high 4"):
        create_search_space(path)
    with pytest.raises(ConfigError, match="expected an HPOConfig, a path to an hpo YAML file or a mapping, got int"):
        create_search_space(3)  # type: ignore[arg-type]


STRIDE = {"type": "int", "low": 4, "high": 16, "step": 4}


@pytest.mark.parametrize(
    ("space", "refused"),
    [
        ({"model.max_length": {"type": "choice", "values": [64, 16]}}, "model.max_length=16"),
        ({"model.stride": {"type": "int", "low": 0, "high": 40}}, "model.stride=40"),  # the base max_length is 64
        (  # 32 fits no stride the space can draw: stride stays below half of max_length
            {"model.max_length": {"type": "choice", "values": [32, 64]}, "stride": {**STRIDE, "low": 16, "high": 20}},
            "length=32, model.stride=16",
        ),
        (  # more combinations than are checked one by one: seeded draws find it wherever it is in the space
            {
                "model.max_length": {"type": "choice", "values": [64, 16]},
                "learning_rate": {"type": "choice", "values": [n / 1e5 for n in range(1, 71)]},
                "weight_decay": {"type": "choice", "values": [n / 100 for n in range(70)]},
            },
            r"model.max_length=16, training.learning_rate=[0-9.e-]+, training.weight_decay=[0-9.]+",
        ),
        (  # a condition draws a value inside a range, which is combined too
            {
                "model.max_length": {"type": "int", "low": 32, "high": 128, "step": 16},
                "stride": {"type": "fixed", "value": 24, "condition": {"model.max_length": 48}},
            },
            "model.max_length=48, model.stride=24",
        ),
    ],
)
def test_corner_values_the_config_refuses_fail_before_any_trial(
    tiny_config: TrainingConfig, space: dict, refused: str
) -> None:
    # Each was refused trial after trial, by the config's rule that a stride stays below half of max_length.
    with pytest.raises(ConfigError, match=rf"^search_space: .*{refused} does not fit the config: model.stride: must"):
        create_search_space(space).check(tiny_config)


def test_only_values_that_can_be_drawn_together_are_combined(tiny_config: TrainingConfig) -> None:
    conditional = {**STRIDE, "condition": {"model.max_length": 64}}  # 16 with 64 only: never 16 with 32
    create_search_space({"model.max_length": {"type": "choice", "values": [32, 64]}, "stride": conditional}).check(
        tiny_config
    )


def test_a_value_that_fits_with_some_other_tuned_values_is_not_refused_but_warned_of(
    tiny_config: TrainingConfig, caplog: pytest.LogCaptureFixture
) -> None:
    # 32 with stride 16 does not fit, 32 with 4 does: the space runs (a trial drawing 32 and 16 fails alone), and
    # the user is told, in one line, which share of the combinations will fail and why.
    space = {"model.max_length": {"type": "choice", "values": [32, 64]}, "stride": STRIDE}
    with caplog.at_level("WARNING", logger="training.hpo"):
        create_search_space(space).check(tiny_config)
    [record] = caplog.records
    assert record.getMessage().startswith(
        "search_space: 1 of 4 combinations of corner values checked (25%) do not fit the config; trials drawn there "
        "will fail, e.g. model.max_length=32, model.stride=16 does not fit the config: model.stride: must"
    )
    assert "\n" not in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.hpo"):  # a space that fits everywhere says nothing
        create_search_space({"model.max_length": {"type": "choice", "values": [64, 128]}, "stride": STRIDE}).check(
            tiny_config
        )
    assert caplog.records == []


def test_the_space_compiles_to_azure_sweep_distributions() -> None:
    from azure.ai.ml.sweep import Choice, LogUniform, QLogUniform, Uniform

    compiled = create_search_space(SPACE).to_azure("random")
    assert set(compiled) == {
        "training__learning_rate",
        "training__scheduler",
        "training__warmup_ratio",
        "training__batch_size",
        "training__num_epochs",
    }
    learning_rate = compiled["training__learning_rate"]
    assert isinstance(learning_rate, LogUniform)
    assert (learning_rate.min_value, learning_rate.max_value) == (math.log(1e-5), math.log(1e-3))
    assert isinstance(compiled["training__warmup_ratio"], Uniform)
    assert isinstance(compiled["training__batch_size"], Choice) and compiled["training__batch_size"].values == [
        4,
        8,
        12,
        16,
    ]
    assert isinstance(compiled["training__num_epochs"], QLogUniform)
    with pytest.raises(ConfigError, match="bayesian sampling does not support loguniform distributions"):
        create_search_space(SPACE).to_azure("bayesian")
    discrete = SearchSpace(
        create_search_space({"batch_size": {"type": "int", "low": 4, "high": 8, "step": 4}}).parameters
    )
    assert discrete.to_azure("grid")["training__batch_size"].values == [4, 8]
