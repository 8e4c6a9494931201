"""Every class of config and data error, given to `training train` as a user would: exit code 2, one line on stderr
naming the file, key or value and what was expected, no traceback, and nothing already written changed (the config
folder and an earlier finished run folder, used as the output, keep their checksums)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from data.generate import generate_corpus

TRAIN = "backbone: tiny-bert\ndata: resumes\ntraining:\n  num_epochs: 1\n  batch_size: 8\n  seed: 0\n"
GOOD = json.dumps({"text": "Anna Smith works at Siemens.", "annotations": [[0, 10, "PERSON"], [20, 27, "COMPANY"]]})


def spans(*annotations: list) -> str:
    return json.dumps({"text": "Anna Smith works at Siemens.", "annotations": list(annotations)}) + "\n"


# (edits: config-relative path -> new text, or None to delete; extra arguments; part of the one-line message)
CASES = [
    # configuration files
    pytest.param(
        {"train.yaml": TRAIN.replace("batch_size", "batchsize")},
        [],
        "train.yaml: training.batchsize: unknown key; did you mean 'batch_size'?",
        id="unknown-key",
    ),
    pytest.param(
        {"train.yaml": TRAIN + "epochs: 3\n"},
        [],
        "train.yaml: epochs: unknown key; valid keys: backbone, data, training",
        id="unknown-top-key",
    ),
    pytest.param(
        {"model/tiny-bert.yaml": "backbone: tiny-bert\nmax_lenght: 64\n"},
        [],
        "tiny-bert.yaml: model.max_lenght: unknown key; did you mean 'max_length'?",
        id="unknown-model-key",
    ),
    pytest.param(
        {"train.yaml": TRAIN.replace("num_epochs: 1", "num_epochs: three")},
        [],
        "train.yaml: training.num_epochs: expected a valid integer",
        id="wrong-type",
    ),
    pytest.param(
        {"train.yaml": TRAIN.replace("num_epochs: 1", "num_epochs: 0")},
        [],
        "training.num_epochs: expected greater than or equal to 1, got 0",
        id="out-of-range",
    ),
    pytest.param(
        {"train.yaml": TRAIN + "  scheduler: cosin\n"},
        [],
        "training.scheduler: expected 'linear', 'cosine' or 'constant', got 'cosin'",
        id="not-a-choice",
    ),
    pytest.param(
        {"train.yaml": TRAIN.replace("batch_size: 8", "batch_size: [8")},
        [],
        "train.yaml:6: invalid YAML",
        id="invalid-yaml",
    ),
    pytest.param(
        {"model/tiny-bert.yaml": "- backbone\n- tiny-bert\n"},
        [],
        "tiny-bert.yaml: expected a mapping of keys to values at the top level, got list",
        id="not-a-mapping",
    ),
    pytest.param(
        {"model/tiny-bert.yaml": "max_length: 64\n"},
        [],
        "tiny-bert.yaml: model.backbone: required key is missing",
        id="missing-required",
    ),
    pytest.param(
        {},
        ["--backbone", "tiny-brt"],
        "tiny-brt.yaml: no such model config; did you mean 'tiny-bert'?",
        id="no-such-model-file",
    ),
    pytest.param({}, ["--data", "../resumes"], "data: expected the name of a file in", id="section-is-a-path"),
    pytest.param({"train.yaml": None}, [], "train.yaml: no such file", id="no-train-file"),
    pytest.param(
        {"model/tiny-bert.yaml": "backbone: tiny-bert\nmax_length: 64\nstride: 32\n"},
        [],
        "model.stride: must be below half of max_length (64), got 32",
        id="stride-too-large",
    ),
    pytest.param(
        {"data/resumes.yaml": "path: resumes\nlabels: [PERSON, PERSON]\n"},
        [],
        "labels must be unique, got ['PERSON', 'PERSON']",
        id="labels-not-unique",
    ),
    pytest.param(
        {"data/resumes.yaml": "path: ../elsewhere\n"},
        [],
        "data.path: '../elsewhere' resolves outside the config folder",
        id="data-path-escapes",
    ),
    pytest.param({}, ["--set", "training.seed"], "--set 'training.seed': expected key=value", id="set-without-equals"),
    pytest.param(
        {},
        ["--set", "training.lerning_rate=1"],
        "training.lerning_rate: unknown key; did you mean 'learning_rate'?",
        id="set-unknown-key",
    ),
    pytest.param(
        {},
        ["--set", "training.learning_rate=abc"],
        "--set training.learning_rate=abc: training.learning_rate: expected a valid number",
        id="set-wrong-type",
    ),
    pytest.param({}, ["--set", "training.seed.x=1"], "'seed' holds a value, not a section", id="set-into-a-value"),
    # data files
    pytest.param({}, ["--data-path", "/does/not/exist"], "/does/not/exist: no such file or folder", id="no-such-data"),
    pytest.param(
        {"resumes/train.jsonl": None}, [], "resumes: no train file; expected files named train", id="no-train-split"
    ),
    pytest.param(
        {"resumes/train.json": "[]"}, [], "both train.json and train.jsonl hold the 'train' split", id="two-train-files"
    ),
    pytest.param({"resumes/train.jsonl": ""}, [], "train.jsonl: the 'train' split has no documents", id="empty-split"),
    pytest.param(
        {"resumes/train.jsonl": GOOD + '\n{"text": "caf\udce9"}\n'}, [], "train.jsonl:2: not valid UTF-8", id="not-utf8"
    ),
    pytest.param({"resumes/train.jsonl": GOOD + "\n{oops}\n"}, [], "train.jsonl:2: invalid JSON", id="invalid-json"),
    pytest.param(
        {"resumes/train.jsonl": spans([0, 99, "PERSON"])},
        [],
        "train.jsonl:1: annotation [0, 99, 'PERSON'] is out of range",
        id="span-out-of-range",
    ),
    pytest.param(
        {"resumes/train.jsonl": spans([10, 0, "PERSON"])},
        [],
        "train.jsonl:1: annotation [10, 0, 'PERSON'] is inverted or empty",
        id="span-inverted",
    ),
    pytest.param(
        {"resumes/train.jsonl": spans([0, 10, "PERSON"], [5, 10, "PERSON"])},
        [],
        "overlap; fix the data or set data.overlap_policy: keep_longest",
        id="span-overlap",
    ),
    pytest.param(
        {"data/resumes.yaml": "path: resumes\nlabels: [PERSON, DATE]\n"},
        [],
        "label 'EMAIL' is not in the schema; expected one of ['PERSON', 'DATE']",
        id="label-not-in-schema",
    ),
    pytest.param(
        {"resumes/train.jsonl": '{"tokens": ["Anna", "Smith"], "tags": ["B-PERSON"]}\n'},
        [],
        "train.jsonl:1: 2 tokens but 1 tags; they must pair up",
        id="tokens-tags-mismatch",
    ),
    pytest.param(
        {"resumes/train.jsonl": '{"tokens": ["Anna"], "tags": ["X-PERSON"]}\n'},
        [],
        "train.jsonl:1: tag 'X-PERSON' is malformed; expected 'O' or '<prefix>-<type>'",
        id="tag-malformed",
    ),
    pytest.param(
        {"resumes/train.jsonl": '{"tokens": ["Anna"], "ner_tags": [1]}\n'},
        [],
        "'ner_tags' holds tag ids; set data.tag_names",
        id="integer-tags",
    ),
    pytest.param(
        {"resumes/train.jsonl": None, "resumes/train.dat": "Anna,B-PERSON\n"},
        [],
        "train.dat: unknown file type '.dat'",
        id="unknown-file-type",
    ),
    pytest.param(
        {"resumes/train.jsonl": None, "resumes/train.conll": "Anna B-PERSON\nSmith\n"},
        [],
        "train.conll:2: expected a token and a tag separated by whitespace",
        id="conll-without-tag",
    ),
    pytest.param(
        {"resumes/train.jsonl": '{"sentence": ["Anna"]}\n'},
        [],
        "train.jsonl:1: cannot tell the format",
        id="neither-format",
    ),
    # checks made by the trainer, after torch is imported
    pytest.param(
        {"resumes/validation.jsonl": None},
        [],
        "data.holdout_fraction: the dataset has no validation split",
        id="no-validation-split",
    ),
    pytest.param(
        {},
        ["--set", "training.seed=5"],
        "or start it over (resume=False; training train --restart, final --force)",
        id="output-of-another-run",
    ),
]


@pytest.fixture(scope="module")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("matrix") / "config"
    files = {
        "train.yaml": TRAIN,
        "model/tiny-bert.yaml": "backbone: tiny-bert\nmax_length: 64\nstride: 8\n",
        "data/resumes.yaml": "path: resumes\n",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    from data.generate import write_corpus

    write_corpus(folder / "resumes", generate_corpus(24, seed=11, max_sentences=3))
    return folder


@pytest.fixture(scope="module")
def finished_run(
    base_config: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A run folder of `base_config`, trained to the end: the output every bad command is pointed at."""
    run = tmp_path_factory.mktemp("matrix") / "run"
    completed = run_cli("train", "--config-dir", base_config, "--output", run, "--quiet")
    assert completed.returncode == 0, completed.stderr
    return run


@pytest.mark.parametrize(("edits", "arguments", "message"), CASES)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    edits: dict[str, str | None],
    arguments: list[str],
    message: str,
    base_config: Path,
    finished_run: Path,
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    checksums: Callable[[Path], dict[str, str]],
    tmp_path: Path,
) -> None:
    """Each bad config or data file: exit 2, one line naming the problem, no traceback, no file changed."""
    config = shutil.copytree(base_config, tmp_path / "config")
    for name, text in edits.items():
        if text is None:
            (config / name).unlink()
        else:
            (config / name).write_bytes(text.encode("utf-8", errors="surrogateescape"))
    before = checksums(config), checksums(finished_run)

    completed = run_cli("train", "--config-dir", config, "--output", finished_run, "--quiet", *arguments)

    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("training train: error: ") and message in line, line
    assert (checksums(config), checksums(finished_run)) == before
