"""The `training` command driven as a user would: subprocesses, real arguments, real files."""

from __future__ import annotations

import io
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.generate import generate_corpus, write_saved_dataset
from data.loaders import load_dataset
from training.core.run_folder import RunFolder


def test_help_lists_every_command(cli) -> None:
    completed = cli("--help")
    assert completed.returncode == 0
    for command in ("train", "evaluate", "predict", "splits", "final", "lineage", "report", "demo"):
        assert command in completed.stdout


def test_train_prints_json_metrics_and_writes_the_run_folder(cli, config_dir: Path, tmp_path: Path) -> None:
    completed = cli("train", "--config-dir", str(config_dir), "--output", str(tmp_path / "run"), "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert 0.0 <= result["metrics"]["entity_f1"] <= 1.0 and result["best_epoch"] == 1
    assert (tmp_path / "run/model/model.safetensors").is_file()


@pytest.mark.slow
def test_train_under_torchrun_prints_one_json_document(config_dir: Path, tmp_path: Path) -> None:
    """Every rank printed its own result: two JSON documents on stdout made `--json` output unparseable."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    train = ["training.cli", "train", "--config-dir", str(config_dir), "--output", str(tmp_path / "run"), "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([*command, *train], capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["output_dir"] == str(tmp_path / "run")


@pytest.mark.slow
def test_train_under_torchrun_refuses_the_folder_of_a_one_process_run(
    config_dir: Path, trained_run: Path, tmp_path: Path
) -> None:
    """The laptop's finished run, trained again with 2 processes into its folder, was returned as the 2-process run
    in no time: batches and schedule depend on the process count, as a checkpoint's resume already says."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    before = (run / "metrics.json").read_bytes()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    train = ["training.cli", "train", "--config-dir", str(config_dir), "--output", str(run), "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run([*command, *train], capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode != 0 and not completed.stdout
    assert f"training train: error: {run}: holds a finished run on 1 process(es), not 2; " in completed.stderr
    assert (run / "metrics.json").read_bytes() == before


def test_a_trained_run_has_its_lineage(cli, trained_run: Path, config_dir: Path) -> None:
    # `training train` wrote no lineage.json: `training lineage RUN` exited 2 on every run that no sweep refitted.
    shown = cli("lineage", str(trained_run), "--json")
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)
    assert lineage["run_id"].startswith("train-") and lineage["status"] == "completed"
    assert lineage["data_path"] == str(config_dir / "resumes") and lineage["evaluated_on"] == "validation"
    assert lineage["dataset_fingerprint"] == load_dataset(config_dir / "resumes", format="spans").fingerprint
    assert lineage["model_path"] == str(trained_run / "model") and lineage["study"] is None


def test_evaluate_predict_report_on_a_trained_run(cli, trained_run: Path, config_dir: Path) -> None:
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(config_dir / "resumes"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    record = json.loads(evaluated.stdout)
    assert record["split"] == "test" and record["num_documents"] > 0 and "per_entity" in record["metrics"]

    text = "Anna Kowalczyk works at Siemens in Warsaw."
    predicted = cli("predict", str(trained_run), text, "--json")
    assert predicted.returncode == 0, predicted.stderr
    line = json.loads(predicted.stdout.splitlines()[0])
    assert line["text"] == text
    for entity in line["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]

    from_stdin = cli("predict", str(trained_run / "model"), "--json", input=f"{text}\nSecond line here.\n")
    assert from_stdin.returncode == 0 and len(from_stdin.stdout.splitlines()) == 2

    reported = cli("report", str(trained_run), "--json")
    assert reported.returncode == 0, reported.stderr
    page = Path(json.loads(reported.stdout)["report"])
    assert page.is_file() and "learning_curves.png" in page.read_text()
    for name in ("learning_curves.png", "entity_f1.png", "entity_confusion.png"):
        image = page.parent / name
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 5000


def test_evaluate_and_predict_take_a_precision_and_name_one_this_machine_lacks(
    cli, trained_run: Path, config_dir: Path
) -> None:
    data = ("--data-path", str(config_dir / "resumes"))
    fp32 = cli("evaluate", str(trained_run), *data, "--json", "--precision", "fp32")
    assert fp32.returncode == 0 and json.loads(fp32.stdout)["num_documents"] > 0, fp32.stderr
    assert json.loads(fp32.stdout)["precision"] == "fp32"
    bf16 = cli("predict", str(trained_run), "Anna Kowalczyk works at Siemens.", "--precision", "bf16", "--json")
    assert bf16.returncode == 0 and len(bf16.stdout.splitlines()) == 1, bf16.stderr
    import torch

    if not torch.cuda.is_available():
        for command in (("evaluate", str(trained_run), *data), ("predict", str(trained_run), "some text")):
            refused = cli(*command, "--precision", "fp16")
            assert (refused.returncode, refused.stderr) == (
                2,
                f"training {command[0]}: error: precision: fp16 needs a CUDA GPU; use bf16 or fp32 on cpu\n",
            )
    wrong = cli("predict", str(trained_run), "text", "--precision", "fp8")
    assert wrong.returncode == 2 and "argument --precision: invalid choice: 'fp8'" in wrong.stderr


def test_evaluate_scores_a_single_data_file_whole(cli, trained_run: Path, config_dir: Path, tmp_path: Path) -> None:
    data = config_dir / "resumes" / "validation.jsonl"
    completed = cli("evaluate", str(trained_run), "--data-path", str(data), "--json")
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert record["num_documents"] == len(data.read_text(encoding="utf-8").splitlines())
    completed = cli("evaluate", str(trained_run), "--data-path", str(config_dir / "resumes"), "--split", "gold")
    assert completed.returncode == 2
    assert completed.stderr.endswith("resumes has no such split; it has train, validation, test\n")
    (tmp_path / "train.jsonl").write_bytes(data.read_bytes())  # a folder without a test split: the default named
    completed = cli("evaluate", str(trained_run), "--data-path", str(tmp_path))
    refused = f"split test (--split): {tmp_path} has no such split; it has train"
    assert completed.returncode == 2 and refused in completed.stderr


def test_evaluate_logs_what_loading_skipped_and_widened(cli, trained_run: Path, tmp_path: Path) -> None:
    """It scored 1 of 3 documents, a span widened from 'Jo' to 'John', without a word of either."""
    data = tmp_path / "gold.jsonl"
    texts = {"John works at Siemens": [[0, 2, "PERSON"]], "": [], " \t": []}
    records = [{"text": text, "annotations": spans} for text, spans in texts.items()]
    data.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(data))
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stderr.splitlines() == [
        f"{data}: 1 document",  # not 'train': the file is evaluated whole
        "2 empty documents skipped",
        "1 span did not start and end on word edges (expanded to words)",
        f"  {data}:1: [0, 2, 'PERSON'] 'Jo' widened to 'John'",
    ]
    assert f"{data.name}: 1 document" in evaluated.stdout and "train" not in evaluated.stdout
    assert cli("evaluate", str(trained_run), "--data-path", str(data), "--json").stderr == ""


def test_evaluate_and_report_name_the_data_whose_entity_types_the_model_does_not_tag(
    cli, trained_run: Path, tmp_path: Path
) -> None:
    # It named a document id the loader made up ('train-1'), not the file
    data = tmp_path / "other.jsonl"
    data.write_text('{"text": "Anna works at ACME", "annotations": [[14, 18, "ZZZ"]]}\n', encoding="utf-8")
    for command in ("evaluate", "report"):
        completed = cli(command, str(trained_run), "--data-path", str(data))
        assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1, completed.stderr
        assert completed.stderr.startswith(f"training {command}: error: {data}: has entity types ['ZZZ'] that the")


def test_evaluate_and_report_name_a_damaged_or_missing_model_config(cli, trained_run: Path, tmp_path: Path) -> None:
    # They read the model's entity types with transformers unguarded: exit 1, an internal error of transformers' words
    data = tmp_path / "other.jsonl"
    data.write_text('{"text": "Anna works at ACME", "annotations": [[0, 4, "PER"]]}\n', encoding="utf-8")
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = run / "model" / "config.json"
    config.write_bytes(config.read_bytes()[:200])
    for damage in ("truncated", "missing"):
        for command in ("evaluate", "report"):
            completed = cli(command, str(run), "--data-path", str(data))
            assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1, (damage, completed.stderr)
            named = f"{run / 'model'}: unreadable model config" if damage == "truncated" else f"{run}"
            assert completed.stderr.startswith(f"training {command}: error: {named}"), completed.stderr
        config.unlink(missing_ok=True)


def test_a_model_of_an_unfinished_run_is_used_with_a_note(
    cli, trained_run: Path, config_dir: Path, tmp_path: Path
) -> None:
    # predict, evaluate, export and serve used the model of a run killed mid-way as if it had finished, silently
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    record = RunFolder(run).read_metrics()
    assert record is not None
    RunFolder(run).write_metrics(record.model_copy(update={"status": "running"}))
    unfinished = f"note: {run} is an unfinished run (metrics.json: running); its model is the best so far\n"
    predicted = cli("predict", str(run), "Anna works at Siemens")
    assert predicted.returncode == 0 and predicted.stderr == unfinished, predicted.stderr
    data = config_dir / "resumes" / "validation.jsonl"
    evaluated = cli("evaluate", str(run), "--data-path", str(data))
    assert evaluated.returncode == 0 and evaluated.stderr.startswith(unfinished), evaluated.stderr
    finished = cli("predict", str(trained_run), "Anna works at Siemens")
    assert finished.returncode == 0 and "unfinished" not in finished.stderr


def test_a_run_still_before_its_first_evaluation_is_named_unfinished(cli, trained_run: Path, tmp_path: Path) -> None:
    # A run training now, before its first evaluation saved model/, was "not a model folder or a run folder with model/"
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    record = RunFolder(run).read_metrics()
    assert record is not None
    RunFolder(run).write_metrics(record.model_copy(update={"status": "running"}))
    shutil.rmtree(run / "model")
    expected = f"{run}: an unfinished run (metrics.json: running) with no model yet; its training saves one at its"
    for command, *arguments in (("predict", "Anna works at Siemens"), ("export", "--output", str(tmp_path / "onnx"))):
        completed = cli(command, str(run), *arguments)
        assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1, completed.stderr
        assert completed.stderr.startswith(f"training {command}: error: {expected}"), completed.stderr


def test_evaluate_split_takes_the_names_the_loader_reads(cli, trained_run: Path, config_dir: Path) -> None:
    """A `dev` file is read as the validation split, so `--split dev` (or `Val`) names that split too."""
    data = config_dir / "resumes"
    for name in ("dev", "Val"):
        completed = cli("evaluate", str(trained_run), "--data-path", str(data), "--split", name, "--json")
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["split"] == "validation"


def test_report_names_a_damaged_metrics_file_without_advice_to_start_over(cli, tmp_path: Path) -> None:
    """Only training writes metrics.json; a reader that cannot use it just says so."""
    metrics = tmp_path / "run" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text("{not json")
    completed = cli("report", str(metrics.parent))
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"training report: error: {metrics}: not a readable run metrics file (")
    assert len(completed.stderr.splitlines()) == 1 and "start over" not in completed.stderr


def test_files_nested_too_deeply_are_one_line_errors(cli, tmp_path: Path) -> None:
    """JSON or YAML nested deeper than the parsers' recursion reads was "internal error: RecursionError", exit 1."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "configs").mkdir()
    train = tmp_path / "configs" / "train.yaml"
    train.write_text("training: " + "[" * 5_000 + "]" * 5_000)
    out = str(tmp_path / "out")
    for arguments, expected in [
        (("final", str(deep), "--output", out, "--dry-run"), f"{deep}: not a readable best-config file"),
        (("train", "--config-dir", str(train.parent), "--output", out), f"{train}: invalid YAML: nested"),
        (("evaluate", out, "--data-path", out, "--output", str(deep)), f"{deep}: not an evaluation record, and"),
    ]:
        completed = cli(*arguments)
        assert completed.returncode == 2 and len(completed.stderr.splitlines()) == 1, completed.stderr
        assert expected in completed.stderr


def test_evaluate_reads_other_data_in_the_encoding_named(cli, trained_run: Path, tmp_path: Path) -> None:
    """A Latin-1 file evaluated by a UTF-8 run: refused naming --encoding (no advice on formats, which read no other
    encoding), read with `--encoding latin-1`; an unknown encoding is a usage error."""
    data = tmp_path / "held-out.conll"
    data.write_bytes("Ana B-PERSON\nMuñoz I-PERSON\nworks O\n".encode("latin-1"))
    refused = cli("evaluate", str(trained_run), "--data-path", str(data))
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.rstrip().endswith("(--encoding of evaluate and report): latin-1 for CoNLL-2002's files")
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(data), "--encoding", "latin-1", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["num_documents"] == 1
    unknown = cli("evaluate", str(trained_run), "--data-path", str(data), "--encoding", "latin-9x")
    assert unknown.returncode == 2 and "argument --encoding: unknown encoding 'latin-9x'" in unknown.stderr


def test_evaluate_and_report_read_other_data_in_the_format_named(cli, trained_run: Path, tmp_path: Path) -> None:
    """The run read JSON lines (data.format: spans): other data is read so by default unless its content shows
    another format (CoNLL token lines, as a refit on other data reads them; a suffix alone never does), and in the
    format --format names (auto: detected)."""
    data = tmp_path / "held-out.conll"
    data.write_text("Anna B-PERSON\nKowalczyk I-PERSON\nworks O\nat O\nSiemens B-COMPANY\n\nWarsaw B-LOCATION\n")
    for format in ("auto", "conll", None):
        chosen = ("--format", format) if format else ()
        evaluated = cli("evaluate", str(trained_run), "--data-path", str(data), "--json", *chosen)
        assert evaluated.returncode == 0, evaluated.stderr
        assert json.loads(evaluated.stdout)["num_documents"] == 2
    untold = tmp_path / "untold.conll"  # a first record cut short: nothing shows its format, the run's reads it
    untold.write_text('{"text": "Anna works"\n')
    default = cli("evaluate", str(trained_run), "--data-path", str(untold))
    assert default.returncode == 2 and f"{untold}:1: invalid JSON" in default.stderr
    assert default.stderr.rstrip().endswith("(read as spans, the run's data.format; --format auto detects it)")
    spans = tmp_path / "held-out.data"  # a suffix that tells no format
    spans.write_text('{"text": "Anna works at Siemens", "annotations": [[0, 4, "PERSON"]]}\n', encoding="utf-8")
    assert cli("evaluate", str(trained_run), "--data-path", str(spans)).returncode == 0
    given = cli("evaluate", str(trained_run), "--data-path", str(spans), "--format", "tokens")  # kept, not sniffed
    assert given.returncode == 2, given.stderr
    assert given.stderr.startswith(f"training evaluate: error: {spans}:1: a token record needs one of ['tokens', ")
    report = ("report", str(trained_run), "--data-path", str(data), "--output", str(tmp_path / "report"))
    reported = cli(*report, "--format", "auto")
    assert reported.returncode == 0, reported.stderr


def test_evaluate_reads_json_data_with_a_conll_run_s_column_positions(cli, trained_run: Path, tmp_path: Path) -> None:
    """A run trained on a CoNLL file with data.columns positions (GermEval's tokens: 1, tags: 2) evaluates a JSON
    file, read by its keys: the run's positions are ignored there, where a user's own are refused."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    folder = RunFolder(run)
    config = folder.read_config()
    assert config is not None
    folder.write_config(config.with_values({"data": {"format": "auto", "columns": {"tokens": 1, "tags": 2}}}).to_yaml())
    data = tmp_path / "held-out.jsonl"
    data.write_text('{"tokens": ["Anna", "works"], "tags": ["B-PERSON", "O"]}\n', encoding="utf-8")
    evaluated = cli("evaluate", str(run), "--data-path", str(data), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["num_documents"] == 1


def test_evaluate_and_report_take_the_data_s_columns_over_the_run_s(cli, trained_run: Path, tmp_path: Path) -> None:
    """A GermEval-layout run (tokens: 1, tags: 2) could not evaluate a plain two-column file, nor any run a file of
    another layout: the run's positions (or the defaults) were the only ones; `--columns` names the data's."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = RunFolder(run).read_config()
    assert config is not None
    RunFolder(run).write_config(
        config.with_values({"data": {"format": "conll", "columns": {"tokens": 1, "tags": 2}}}).to_yaml()
    )
    plain = tmp_path / "plain.tsv"
    plain.write_text("Anna\tB-PERSON\nworks\tO\n\nWarsaw\tB-LOCATION\n", encoding="utf-8")
    refused = cli("evaluate", str(run), "--data-path", str(plain))
    assert refused.returncode == 2 and "too few for data.columns (tokens at 1, tags at 2)" in refused.stderr
    evaluated = cli("evaluate", str(run), "--data-path", str(plain), "--columns", "0,-1", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["num_documents"] == 2
    indexed = tmp_path / "indexed.tsv"  # tags first, tokens last (the MIT Movie layout), read by the run of JSON lines
    indexed.write_text("B-PERSON\tAnna\nO\tworks\n", encoding="utf-8")
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(indexed), "--columns", "1,0", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["metrics"]["support"] == 1
    named = tmp_path / "held.txt"  # header names only --columns knows: they tell the table from CoNLL too
    named.write_text("Wort,Etikett\nAnna,B-PERSON\nworks,O\n", encoding="utf-8")
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(named), "--columns", "Wort,Etikett", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["metrics"]["support"] == 1
    report = cli("report", str(run), "--data-path", str(plain), "--columns", "0,-1", "--output", str(tmp_path / "r"))
    assert report.returncode == 0, report.stderr
    wrong = cli("evaluate", str(run), "--data-path", str(plain), "--columns", "1")
    assert wrong.returncode == 2 and "argument --columns: expected TOKENS,TAGS" in wrong.stderr
    table = tmp_path / "table.csv"  # a name its header lacks: not read as CoNLL "naming no columns"
    table.write_text("Word,Tag\nAnna,B-PERSON\n", encoding="utf-8")
    typo = cli("evaluate", str(trained_run), "--data-path", str(table), "--columns", "Wrd,Tag")
    assert typo.stderr.splitlines() == [
        f"training evaluate: error: {table}:1: the header ['Word', 'Tag'] has no column 'Wrd' (data.columns.tokens)"
    ]


def test_evaluate_reads_a_csv_table_with_a_json_run(cli, trained_run: Path, tmp_path: Path) -> None:
    """The run read JSON lines (data.format: spans); a Kaggle-shaped CSV table is told by its header and read so."""
    data = tmp_path / "held-out.csv"
    data.write_text("Sentence #,Word,Tag\nSentence: 1,Anna,B-PERSON\n,works,O\nSentence: 2,Warsaw,B-LOCATION\n")
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(data), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["num_documents"] == 2


def test_evaluate_reads_a_save_to_disk_folder_with_a_json_run(cli, trained_run: Path, tmp_path: Path) -> None:
    """A `datasets` folder is read by its columns, whatever the run's data.format: an error in it said "read as spans,
    the run's data.format; --format auto detects it", which no format changes."""
    datasets = pytest.importorskip("datasets")
    saved = write_saved_dataset(tmp_path / "saved", generate_corpus(6, seed=1))
    evaluated = cli("evaluate", str(trained_run), "--data-path", str(saved), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["num_documents"] == 1
    ids = datasets.Dataset.from_dict({"tokens": [["Anna", "works"]], "ner_tags": [[1, 0]]})  # no ClassLabel
    ids.save_to_disk(str(tmp_path / "ids"))
    refused = cli("evaluate", str(trained_run), "--data-path", str(tmp_path / "ids"), "--split", "train")
    assert refused.returncode == 2
    assert refused.stderr == (  # it said "set data.tag_names", which evaluate does not read
        f"training evaluate: error: {tmp_path / 'ids'}[train]: column 'ner_tags' holds integer tags without a "
        "ClassLabel feature; pass --tag-names with the tag names in id order\n"
    )
    named = [*refused.args[3:], "--tag-names", "O,B-PERSON", "--json"]
    assert json.loads(cli(*named).stdout)["metrics"]["per_entity"]["PERSON"]["support"] == 1


def test_evaluate_says_how_to_name_the_tag_ids_of_a_json_lines_file(cli, trained_run: Path, tmp_path: Path) -> None:
    data = tmp_path / "ids.jsonl"
    data.write_text('{"tokens": ["Anna", "works"], "ner_tags": [1, 0]}\n', encoding="utf-8")
    refused = cli("evaluate", str(trained_run), "--data-path", str(data))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"training evaluate: error: {data}:1: 'ner_tags' holds tag ids; pass --tag-names with the tag names in id "
        "order (or write the names)\n"
    )
    named = cli("evaluate", str(trained_run), "--data-path", str(data), "--tag-names", "O,B-PERSON", "--json")
    assert json.loads(named.stdout)["metrics"]["per_entity"]["PERSON"]["support"] == 1


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ("O", "expected the tag names in id order, as O,B-PER,I-PER"),
        ("O,,B-PER", "expected the tag names in id order, as O,B-PER,I-PER"),
        ("", "expected the tag names in id order, as O,B-PER,I-PER"),
        ("O,B-PER,B-PER", "names 'B-PER' twice; expected one name per tag id"),  # said data.tag_names, not read here
    ],
)
def test_tag_names_of_fewer_than_two_names_an_empty_one_or_one_twice_are_refused(
    names: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "run", "--data-path", "data", "--tag-names", names])
    assert exit_.value.code == 2
    assert f"argument --tag-names: {problem}, got {names!r}\n" in capsys.readouterr().err


def test_splits_writes_folds(cli, config_dir: Path, tmp_path: Path) -> None:
    completed = cli(
        "splits", "--config-dir", str(config_dir), "-k", "3", "--output", str(tmp_path / "s.json"), "--json"
    )
    assert completed.returncode == 0, completed.stderr
    folds = json.loads(completed.stdout)["folds"]
    assert len(folds) == 3 and sum(fold["validation"] for fold in folds) == 28


def test_splits_take_the_seed_and_stratification_of_the_config(cli, config_dir: Path, tmp_path: Path) -> None:
    """`--set training.seed=3` and `--set data.stratify=false` were dropped: the folds had seed 0, stratified."""
    written = []
    for name, options in (
        ("set", ("--set", "training.seed=3", "--set", "data.stratify=false")),
        ("options", ("--seed", "3", "--no-stratify")),
    ):
        output = tmp_path / f"{name}.json"
        completed = cli("splits", "--config-dir", str(config_dir), "-k", "3", "--output", str(output), *options)
        assert completed.returncode == 0, completed.stderr
        written.append(json.loads(output.read_text()))
    assert written[0] == written[1] and (written[0]["seed"], written[0]["stratify"]) == (3, False)


def test_an_output_file_that_is_no_earlier_output_is_left_alone(
    cli, config_dir: Path, trained_run: Path, tmp_path: Path
) -> None:
    """`evaluate RUN --output RUN/metrics.json` replaced the run's metrics with the evaluation, `splits --output
    configs/train.yaml` the config; each refuses a file it did not write, and replaces one it wrote or an empty one."""
    run, configs = tmp_path / "run", tmp_path / "configs"
    shutil.copytree(trained_run, run), shutil.copytree(config_dir, configs)
    data = configs / "resumes"
    inputs = {"evaluate": [run / "metrics.json", data / "test.jsonl"], "splits": [configs / "train.yaml"]}
    before = {path: path.read_bytes() for paths in inputs.values() for path in paths}
    for path in inputs["evaluate"]:
        completed = cli("evaluate", str(run), "--data-path", str(data), "--output", str(path))
        assert completed.returncode == 2 and completed.stderr.splitlines() == [
            f"training evaluate: error: {path}: not an evaluation record, and --output would replace it; write to a "
            "new file (or an earlier one)"
        ]
    completed = cli("splits", "--config-dir", str(configs), "--output", str(inputs["splits"][0]))
    assert completed.returncode == 2 and "train.yaml: not a splits file, and --output would" in completed.stderr
    # A folder was refused only once the whole evaluation had run: named before the data is read (here: missing).
    completed = cli("evaluate", str(run), "--data-path", str(tmp_path / "missing"), "--output", str(data))
    assert completed.stderr.splitlines() == [
        f"training evaluate: error: {data}: is a folder; expected the path of a file to write"
    ]
    assert {path: path.read_bytes() for path in before} == before
    for command in (("evaluate", str(run), "--data-path", str(data)), ("splits", "--config-dir", str(configs))):
        (run / f"{command[0]}.json").touch()  # an empty file (`--output "$(mktemp)"`) was refused
        for _ in range(2):  # the second time over its own output
            completed = cli(*command, "--output", str(run / f"{command[0]}.json"), "--quiet")
            assert completed.returncode == 0, completed.stderr


def test_a_study_folder_takes_no_run_and_keeps_its_folds(cli, config_dir: Path, tmp_path: Path) -> None:
    """`train --output STUDY` wrote a run among the study's files, and `splits --output STUDY/splits.json` replaced the
    folds its trials were trained on (its resume then refused the study); both are refused before any work."""
    study, splits = tmp_path / "study", tmp_path / "study" / "splits.json"
    completed = cli("splits", "--config-dir", str(config_dir), "-k", "2", "--output", str(splits), "--quiet")
    assert completed.returncode == 0, completed.stderr
    (study / "study.json").write_text('{"format": "training.hpo-study", "study_name": "s", "storage": "sqlite://"}\n')
    before = {path: path.read_bytes() for path in study.iterdir()}
    trained = cli("train", "--config-dir", str(config_dir), "--output", str(study))
    assert (trained.returncode, trained.stderr.splitlines()) == (
        2,
        [
            f"training train: error: {study}: a study folder (it holds study.json), where a run's files would mix "
            "with its own; choose another output folder"
        ],
    )
    split = cli("splits", "--config-dir", str(config_dir), "-k", "3", "--output", str(splits))
    assert (split.returncode, split.stderr.splitlines()) == (
        2,
        [
            f"training splits: error: --output {splits}: lies in the study folder {study}, whose folds (splits.json) "
            "its trials were trained on; write the splits outside it"
        ],
    )
    assert {path: path.read_bytes() for path in study.iterdir()} == before


def test_a_report_goes_into_a_new_folder_or_an_earlier_report(
    cli, config_dir: Path, trained_run: Path, tmp_path: Path
) -> None:
    """`report RUN --output configs` wrote index.html, interactive.html and PNG plots among the config files."""
    configs = tmp_path / "configs"
    shutil.copytree(config_dir, configs)
    before = sorted(configs.rglob("*"))
    completed = cli("report", str(trained_run), "--output", str(configs))
    assert (completed.returncode, completed.stderr.splitlines()) == (
        2,
        [
            f"training report: error: {configs}: not a report folder, and the report would write its pages and plots "
            "among its files; write to a new folder (or an earlier one)"
        ],
    )
    assert sorted(configs.rglob("*")) == before
    for _ in range(2):  # the second time over its own report
        completed = cli("report", str(trained_run), "--output", str(tmp_path / "report"))
        assert completed.returncode == 0, completed.stderr
    # One cut short before its index.html (written last), or opened in a file browser, was refused for good
    (tmp_path / "report" / "index.html").unlink()
    (tmp_path / "report" / ".DS_Store").write_bytes(b"\0")
    completed = cli("report", str(trained_run), "--output", str(tmp_path / "report"))
    assert completed.returncode == 0 and (tmp_path / "report" / "index.html").is_file(), completed.stderr


def test_path_options_written_with_a_tilde_after_equals_are_under_home(
    config_dir: Path, trained_run: Path, tmp_path: Path
) -> None:
    """No shell expands `--output=~/s.json`: it wrote a folder named `~` in the working directory."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1"}
    arguments = ["splits", f"--config-dir={config_dir}", "-k", "3", "--output=~/s.json"]
    command = [sys.executable, "-m", "training.cli", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert (home / "s.json").is_file() and not list(work.iterdir())
    command = [sys.executable, "-m", "training.cli", "lineage", "~/run"]  # quoted: the shell left it too
    completed = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert completed.returncode == 2 and completed.stderr.startswith(f"training lineage: error: {home / 'run'}: ")
    command = [sys.executable, "-m", "training.cli", "evaluate", str(trained_run), "--data-path=~/corpus"]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert completed.returncode == 2 and f"{home / 'corpus'}: no such file or folder" in completed.stderr


def test_a_tilde_of_no_user_is_refused_in_one_line(cli, config_dir: Path) -> None:
    """pathlib's RuntimeError ('Could not determine home directory') was a traceback for a path option, and an internal
    error for a data path."""
    refused = "~no-such-user-m2 names no user of this machine; expected ~/... or ~<user>/..."
    completed = cli("lineage", "~no-such-user-m2/run")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[-1].startswith(
        f"training lineage: error: argument folder: ~no-such-user-m2/run: {refused}"
    )
    completed = cli("splits", "--config-dir", str(config_dir), "--data-path", "~no-such-user-m2/data")
    assert completed.returncode == 2 and completed.stderr.startswith(
        f"training splits: error: ~no-such-user-m2/data: {refused}"
    )
    assert len(completed.stderr.splitlines()) == 1


def test_splits_keep_conll_documents_in_one_fold(cli, config_dir: Path, tmp_path: Path) -> None:
    """Three -DOCSTART- articles of 2, 3 and 4 sentences make three folds of one article each, unless switched off."""
    articles = ["-DOCSTART- O\n\n" + "Ann B-PER\nleft O\n\n" * size for size in (2, 3, 4)]
    data = tmp_path / "articles.conll"
    data.write_text("".join(articles), encoding="utf-8")
    common = ("splits", "--config-dir", str(config_dir), "--data-path", str(data), "--set", "data.format=conll")
    for extra, sizes in (((), [2, 3, 4]), (("--group-by", "none"), [3, 3, 3])):
        output = tmp_path / f"splits{len(extra)}.json"
        completed = cli(*common, "-k", "3", "--output", str(output), "--json", *extra)
        assert completed.returncode == 0, completed.stderr
        assert sorted(fold["validation"] for fold in json.loads(completed.stdout)["folds"]) == sizes


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train", "--output", "X", "--set", "training.lerning_rate=1"], "did you mean 'learning_rate'"),
        (["train", "--output", "X", "--set", "training.learning_rate=abc"], "training.learning_rate: expected"),
        (["train", "--output", "X", "--backbone", "nope"], "no such model config"),
        (["train", "--output", "X", "--set", "oops"], "expected key=value"),
        (["train", "--output", "X", "--data-path", "/does/not/exist"], "/does/not/exist: no such file or folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, config_dir: Path, arguments: list[str], message: str) -> None:
    completed = cli(*arguments[:1], "--config-dir", str(config_dir), *arguments[1:])
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_one_fold_is_a_usage_error_naming_the_option(cli, config_dir: Path) -> None:
    """It said 'k must be an integer of at least 2 folds', naming no option."""
    completed = cli("splits", "--config-dir", str(config_dir), "-k", "1")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.endswith("error: argument -k/--folds: expected a whole number of at least 2, got '1'\n")


def test_bad_data_file_exits_2(cli, config_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "broken"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "Anna", "annotations": [[0, 9, "PERSON"]]}\n')
    completed = cli("train", "--config-dir", str(config_dir), "--data-path", str(data), "--output", str(tmp_path / "r"))
    assert completed.returncode == 2
    assert "train.jsonl:1: annotation [0, 9, 'PERSON'] is out of range" in completed.stderr


def test_debug_shows_the_traceback_of_bad_input_and_still_exits_2(cli, config_dir: Path, tmp_path: Path) -> None:
    """`--debug` re-raised the error, so bad input exited 1, the status of a failed run."""
    arguments = ["--set", "training.lerning_rate=1", "--output", str(tmp_path / "run")]
    completed = cli("--debug", "train", "--config-dir", str(config_dir), *arguments)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" in completed.stderr and "did you mean 'learning_rate'" in completed.stderr


@pytest.mark.parametrize(("rank", "local_rank", "lines"), [("0", "0", 1), ("1", "1", 0), ("2", "0", 1)])
def test_bad_input_is_reported_by_local_rank_0_only(
    config_dir: Path, tmp_path: Path, rank: str, local_rank: str, lines: int
) -> None:
    """Under torchrun every rank printed the same line; each still exits 2. Each host's first rank reports (an error
    may be one host's own, as no GPU there)."""
    command = [sys.executable, "-m", "training.cli", "train", "--config-dir", str(config_dir)]
    arguments = ["--data-path", str(tmp_path / "missing"), "--output", str(tmp_path / "run")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RANK": rank, "LOCAL_RANK": local_rank, "WORLD_SIZE": "4"}
    completed = subprocess.run([*command, *arguments], capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == lines and completed.stderr.count("no such file or folder") == lines


@pytest.mark.parametrize("rank", ["0", "1"])
@pytest.mark.parametrize(("arguments", "message"), [(["--output", "X", "--bogus"], "unrecognized"), ([], "required")])
def test_a_usage_error_is_reported_by_rank_0_only(rank: str, arguments: list[str], message: str) -> None:
    """argparse printed the usage and the error once per rank under torchrun; each rank still exits 2."""
    command = [sys.executable, "-m", "training.cli", "train", *arguments]
    env = {**os.environ, "RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": "2"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert completed.returncode == 2
    assert completed.stderr.count(message) == (rank == "0") and ("usage:" in completed.stderr) == (rank == "0")


def test_an_unknown_option_is_refused_by_its_command(cli) -> None:
    """It was refused as `training: error:` under the usage of `training`, which lists none of the command's options."""
    completed = cli("lineage", "run", "--bogus")
    assert completed.returncode == 2 and completed.stderr.startswith("usage: training lineage ")
    assert completed.stderr.splitlines()[-1] == "training lineage: error: unrecognized arguments: --bogus"


def test_an_option_of_training_after_the_command_is_refused_saying_where_it_goes(cli) -> None:
    completed = cli("lineage", "run", "--debug", "--bogus")
    assert completed.returncode == 2 and completed.stderr.splitlines()[-1] == (
        "training lineage: error: unrecognized arguments: --debug --bogus; --debug: an option of training, which goes "
        "before the command"
    )


@pytest.mark.parametrize(
    "command", [("lineage", "run"), ("predict", "run", "a text", "--json", "another"), ("train",), ("lineage",)]
)
def test_an_unknown_global_option_is_refused_by_training(cli, command: tuple[str, ...]) -> None:
    """An unknown option before the command was blamed on the command, whose usage does not list it either; or the
    command's missing `--output` (or `folder`) was reported instead, though later in the line."""
    completed = cli("--bogus", *command, "--unknown")
    assert completed.returncode == 2 and completed.stderr.startswith("usage: training [-h]")
    assert completed.stderr.splitlines()[-1] == "training: error: unrecognized arguments: --bogus"


def test_an_unknown_option_is_refused_before_a_missing_required_one(cli) -> None:
    """A mistyped `--ouput` was reported as `--output` missing, which hid the typo; nothing else missing is reported."""
    completed = cli("train", "--ouput", "run")
    assert completed.returncode == 2 and completed.stderr.startswith("usage: training train ")
    assert completed.stderr.splitlines()[-1] == "training train: error: unrecognized arguments: --ouput run"
    assert "--output OUTPUT [--restart]" in completed.stderr  # the usage still shows --output as required
    completed = cli("train")
    assert completed.stderr.splitlines()[-1] == "training train: error: the following arguments are required: --output"


EMPTY_PATHS = [
    ("train", "--config-dir", "{configs}", "--output", ""),
    ("train", "--config-dir", "{configs}", "--data-path", ""),
    ("lineage", ""),
    ("predict", "", "x"),
    *(("hpo", command, "--data", "") for command in ("run", "resume", "worker")),
]


@pytest.mark.parametrize("command", EMPTY_PATHS)
def test_an_empty_path_is_a_usage_error(cli, config_dir: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    """`--output ""` (an unset shell variable) trained into the working directory."""
    completed = cli(*(part.format(configs=config_dir) for part in command), cwd=tmp_path)
    assert completed.returncode == 2 and not list(tmp_path.iterdir())
    assert completed.stderr.splitlines()[-1].endswith(": expected a path, got an empty string")


EMPTY_VALUES = [
    ("serve", "run", "--host", ""),
    ("evaluate", "run", "--data-path", "data", "--split", ""),
    ("final", "best_config.json", "--output", "out", "--execution", ""),
    ("train", "--output", "out", "--backbone", ""),
    *(("hpo", command, "--study-dir", "study", "--storage", "") for command in ("resume", "best", "report")),
]


@pytest.mark.parametrize("command", EMPTY_VALUES)
def test_an_empty_option_value_is_a_usage_error(cli, tmp_path: Path, command: tuple[str, ...]) -> None:
    """An unset shell variable in `--host "$HOST"` listened on every interface; `--split ""` evaluated the test split,
    `--execution ""` and `--storage ""` took their defaults, each without a word."""
    completed = cli(*command, cwd=tmp_path)
    assert completed.returncode == 2 and not list(tmp_path.iterdir())
    assert completed.stderr.splitlines()[-1].endswith(f"{command[-2]}: expected a value, got an empty string")


def test_an_output_file_given_as_a_folder_is_a_usage_error(cli, config_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    completed = cli("splits", "--config-dir", str(config_dir), "--output", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"training splits: error: {tmp_path / 'out'}: is a folder; expected the path of a file to write"
    ]


def test_a_run_folder_name_too_long_for_the_file_system_exits_2_naming_it(
    cli, config_dir: Path, tmp_path: Path
) -> None:
    # The OSError "File name too long" ended `training train` with exit 1 instead.
    output = tmp_path / ("r" * 300)
    completed = cli("train", "--config-dir", str(config_dir), "--output", str(output), "--quiet")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"training train: error: {output}: File name too long; expected a run folder (an existing one or a new path)"
    ]


@pytest.fixture
def read_only(tmp_path: Path):
    """A folder no file or folder can be made in (root writes in one all the same: skipped there)."""
    if os.geteuid() == 0:
        pytest.skip("root writes in a read-only folder")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    yield folder
    folder.chmod(0o755)  # so that tmp_path can be removed


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
@pytest.mark.parametrize("where", ["/proc", "/dev/null", "read-only"])
def test_a_run_folder_that_cannot_be_created_exits_2_naming_it(cli, config_dir: Path, request, where: str) -> None:
    # /proc/x ended `training train` with exit 1 once the data had loaded: "[Errno 2] No such file or directory"
    output = (request.getfixturevalue("read_only") if where == "read-only" else Path(where)) / "x"
    problem = {"/proc": "cannot be created (No such file or directory)", "/dev/null": "lies inside the file /dev/null"}

    completed = cli("train", "--config-dir", str(config_dir), "--output", str(output), "--quiet")

    assert completed.returncode == 2
    expected = "expected a run folder (an existing one or a new path)"
    reason = problem.get(where, "cannot be created (Permission denied)")
    assert completed.stderr.splitlines() == [f"training train: error: {output}: {reason}; {expected}"]


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
@pytest.mark.parametrize("where", ["/proc/x/e.json", "/proc/e.json", "read-only"])
def test_an_evaluation_output_that_cannot_be_written_exits_2_before_the_evaluation(
    cli, trained_run: Path, config_dir: Path, request, where: str
) -> None:
    # Each was an OSError (exit 1) once the whole evaluation had run
    output = request.getfixturevalue("read_only") / "e.json" if where == "read-only" else Path(where)
    reason = {
        "/proc/x/e.json": "--output /proc/x: cannot be created (No such file or directory); expected a folder to "
        "write the file in",
        "/proc/e.json": "/proc/e.json: cannot be written (No such file or directory); choose another --output",
    }.get(where, f"{output}: cannot be written (Permission denied); choose another --output")

    data = config_dir / "resumes" / "missing"  # named after --output: the evaluation never starts
    completed = cli("evaluate", str(trained_run), "--data-path", str(data), "--output", str(output))

    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [f"training evaluate: error: {reason}"]


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
@pytest.mark.parametrize("command", ["export", "report"])
def test_an_export_or_report_folder_that_cannot_be_written_exits_2_naming_it(
    cli, trained_run: Path, command: str
) -> None:
    # Each was an OSError, exit 1, "[Errno 2] No such file or directory: '/proc/.x.....tmp'", once the work was done
    completed = cli(command, str(trained_run), "--output", "/proc/x")
    assert completed.returncode == 2
    what = "an exported folder" if command == "export" else "a report folder"
    assert completed.stderr.splitlines() == [
        f"training {command}: error: /proc/x: cannot be created (No such file or directory); expected {what}"
    ]


def test_a_refused_evaluation_leaves_no_folder_of_its_output_behind(cli, trained_run: Path, tmp_path: Path) -> None:
    # Its folders were made to check that the file can be written there, and stayed when the data was then missing
    output = tmp_path / "new" / "deep" / "e.json"
    completed = cli("evaluate", str(trained_run), "--data-path", str(tmp_path / "missing"), "--output", str(output))
    assert completed.returncode == 2 and "missing" in completed.stderr
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "command", [("splits", "--output", "{long}/s.json"), ("lineage", "{long}"), ("predict", "{long}", "x")]
)
def test_any_path_too_long_for_the_file_system_exits_2_naming_it(
    cli, config_dir: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    long = tmp_path / ("r" * 300)
    arguments = [part.format(long=long) for part in command]
    if command[0] == "splits":
        arguments += ["--config-dir", str(config_dir)]
    completed = cli(*arguments)
    assert completed.returncode == 2, completed.stderr
    assert len(completed.stderr.splitlines()) == 1 and "File name too long" in completed.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly(config_dir: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "training.cli", "splits", "--config-dir", str(config_dir), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    process.stdout.close()  # as `| head` does once it has read enough
    stderr = process.communicate(timeout=600)[1]
    assert process.returncode == 141 and "Broken pipe" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    ("command", "unbuffered"), [(("predict", "--json"), False), (("evaluate", "--json"), False), (("predict",), True)]
)
def test_standard_output_on_a_full_disk_is_named(
    trained_run: Path, config_dir: Path, tmp_path: Path, command, unbuffered: bool
) -> None:
    """`> file` on a full disk (files may not grow past 256 bytes here) said only "[Errno 27] File too large"; with
    PYTHONUNBUFFERED, the table of `predict` (one write) ended truncated, exit 0: Python dropped the rest unseen."""
    texts = tmp_path / "texts.txt"
    texts.write_text("Anna Kowalczyk works at Siemens in Warsaw.\n" * 100, encoding="utf-8")
    data = ["--file", str(texts)] if command[0] == "predict" else ["--data-path", str(config_dir / "resumes")]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"} | {"HF_HUB_OFFLINE": "1"}
    env |= {"PYTHONUNBUFFERED": "1"} if unbuffered else {}
    with (tmp_path / "out").open("w") as out:
        completed = subprocess.run(
            [sys.executable, "-m", "training.cli", command[0], str(trained_run), *command[1:], *data],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=600,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256)),  # Python ignores SIGXFSZ
        )
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [f"training {command[0]}: error: standard output: File too large"]


def test_a_broken_pipe_other_than_standard_output_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.cli.commands import lineage
    from training.cli.main import main

    def run(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # as a send to a trial process that has died raises

    monkeypatch.setattr(lineage, "run", run)
    assert main(["lineage", "run"]) == 1
    assert capsys.readouterr().err == "training lineage: error: [Errno 32] Broken pipe\n"


def test_predict_and_evaluate_refuse_a_folder_without_a_model(cli, tmp_path: Path) -> None:
    completed = cli("predict", str(tmp_path), "some text")
    assert completed.returncode == 2 and "not a model folder" in completed.stderr
    # export and evaluate said of a missing folder, or of a file, that no config.json was found in it
    (tmp_path / "metrics.json").write_text("{}", encoding="utf-8")
    for command in (["export", "--output", str(tmp_path / "onnx")], ["evaluate", "--data-path", str(tmp_path)]):
        missing = cli(*command, str(tmp_path / "nope"))
        expected = f"{tmp_path / 'nope'}: no such model folder"
        assert missing.stderr.splitlines() == [f"training {command[0]}: error: {expected}"]
        file = cli(*command, str(tmp_path / "metrics.json"))
        expected = f"{tmp_path / 'metrics.json'}: a file; expected a model folder or a run folder with model/"
        assert file.stderr.splitlines() == [f"training {command[0]}: error: {expected}"], file.stderr


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["predict", "RUN", "some text"], "--batch-size"),
        (["evaluate", "RUN", "--data-path", "DATA"], "--batch-size"),
        (["serve", "RUN"], "--batch-size"),
        (["serve", "RUN"], "--max-texts"),
    ],
)
def test_sizes_below_one_are_usage_errors_not_crashes(cli, trained_run: Path, config_dir: Path, arguments, option):
    paths = {"RUN": str(trained_run), "DATA": str(config_dir / "resumes")}
    completed = cli(*(paths.get(argument, argument) for argument in arguments), option, "0")
    assert completed.returncode == 2
    assert f"error: argument {option}: expected a whole number of at least 1, got '0'" in completed.stderr


def test_predict_reads_a_file_with_a_bom_and_crlf_as_its_texts(cli, trained_run: Path, tmp_path: Path) -> None:
    texts = ["Anna Kowalczyk works at Siemens in Warsaw.", "Second line here."]
    file = tmp_path / "notepad [saved].txt"
    file.write_bytes(("\ufeff" + "\r\n".join(texts) + "\r\n").encode("utf-8"))
    completed = cli("predict", str(trained_run), "--file", str(file), "--json")
    assert completed.returncode == 0, completed.stderr
    assert [json.loads(line)["text"] for line in completed.stdout.splitlines()] == texts


def test_predict_gives_a_blank_line_of_a_file_a_result_of_its_own(cli, trained_run: Path, tmp_path: Path) -> None:
    lines = ["Anna Kowalczyk works at Siemens in Warsaw.", "", "   ", "Second line here."]
    file = tmp_path / "texts.txt"
    file.write_text("\n".join(lines) + "\n\n", encoding="utf-8")  # a blank last line, then the file's final break
    completed = cli("predict", str(trained_run), "--file", str(file), "--json")
    assert completed.returncode == 0, completed.stderr
    results = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [result["text"] for result in results] == [*lines, ""]  # blank lines were dropped: line 4 came out 2nd
    assert results[1]["entities"] == results[2]["entities"] == results[4]["entities"] == []
    file.write_text(" \n\n", encoding="utf-8")  # blank lines only were refused, though every line promises a result
    completed = cli("predict", str(trained_run), "--file", str(file), "--json")
    assert [json.loads(line) for line in completed.stdout.splitlines()] == [
        {"text": " ", "entities": []},
        {"text": "", "entities": []},
    ]
    file.write_text("", encoding="utf-8")  # no line at all
    completed = cli("predict", str(trained_run), "--file", str(file))
    assert completed.returncode == 2
    assert completed.stderr == f"training predict: error: --file {file}: empty; expected one text to tag per line\n"


def test_predict_reads_a_standard_input_swapped_for_a_text_stream(
    trained_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A notebook or a test harness puts a StringIO (no .buffer) in sys.stdin: predict crashed with AttributeError.
    from training.cli.main import main

    texts = ["Anna Kowalczyk works at Siemens in Warsaw.", "Second line here."]
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeff" + "\r\n".join(texts) + "\r\n"))
    assert main(["predict", str(trained_run), "--json"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == texts
    monkeypatch.setattr(sys, "stdin", io.StringIO("Tokyo \ud800\n"))
    assert main(["predict", str(trained_run)]) == 2
    assert capsys.readouterr().err == (
        "training predict: error: standard input:1: not valid UTF-8 (byte 0xed at offset 6); "
        "re-encode the text as UTF-8\n"
    )


def test_predict_tags_one_text_per_line_whatever_unicode_breaks_a_text_holds(cli, trained_run: Path) -> None:
    texts = ["Anna Kowalczyk\u2028Siemens, Warsaw", "Page one\x0cpage two\x85end", "old Mac line"]
    completed = cli("predict", str(trained_run), "--json", input="\n".join(texts[:2]) + "\r\n" + texts[2] + "\r")
    assert completed.returncode == 0, completed.stderr
    # Printed escaped, U+2028 and U+0085 leave one result a line for readers that split at every Unicode break too.
    assert [json.loads(line)["text"] for line in completed.stdout.splitlines()] == texts


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [
        ((), "the following arguments are required: model"),
        (("--json",), "the following arguments are required: model"),
        (("--file", "texts.txt"), "the following arguments are required: model"),
        (
            ("some text",),
            "some text: no such model folder; the model (a run folder, its model/ folder or an exported folder) goes "
            "first, then the texts",
        ),
    ],
    ids=["nothing", "an option", "a text file", "a text"],
)
def test_predict_without_a_model_names_the_model_alone(cli, tmp_path: Path, arguments: tuple[str, ...], missing: str):
    """`training predict --file texts.txt` said 'the following arguments are required: model, text', though the texts
    were given; a lone text, taken for the model, was followed by 'no text to tag' once standard input had ended."""
    (tmp_path / "texts.txt").write_text("Maria Novak works at Spotify.\n")
    completed = cli("predict", *arguments, cwd=tmp_path, input="")
    assert completed.returncode == 2 and completed.stderr.splitlines()[-1] == f"training predict: error: {missing}"


@pytest.mark.parametrize(
    "texts", [("Maria Novak works at Spotify.",), ("--file", "texts.txt")], ids=["a text", "a file"]
)
def test_predict_names_a_missing_model_alone_when_texts_follow_it(cli, tmp_path: Path, texts: tuple[str, ...]) -> None:
    """A typo in the model's path, or a hub id, was followed by 'the model ... goes first, then the texts', though the
    model came first and the texts after it."""
    (tmp_path / "texts.txt").write_text("Maria Novak works at Spotify.\n")
    completed = cli("predict", "runs/my-rnu", *texts, cwd=tmp_path, input="")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == ["training predict: error: runs/my-rnu: no such model folder"]


def test_predict_refuses_a_folder_without_a_model_before_reading_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`training predict /tmp` with texts piped in waited for standard input to end, then said 'not a model folder'."""
    from training.cli.main import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("Maria Novak works at Spotify.\n"))
    assert main(["predict", str(tmp_path)]) == 2
    assert "not a model folder" in capsys.readouterr().err and sys.stdin.tell() == 0  # nothing read


def test_predict_refuses_texts_given_both_as_arguments_and_in_a_file(cli, trained_run: Path, tmp_path: Path) -> None:
    """The file's lines were left untagged, silently, and the arguments alone tagged."""
    file = tmp_path / "texts.txt"
    file.write_text("Anna Kowalczyk works at Siemens.\n", encoding="utf-8")
    completed = cli("predict", str(trained_run), "Second text here.", "--file", str(file))
    assert (completed.returncode, completed.stderr) == (
        2,
        f"training predict: error: --file {file}: given with texts as arguments; pass the texts one way or the other\n",
    )


def test_predict_refuses_a_text_argument_that_names_a_file(cli, trained_run: Path, tmp_path: Path) -> None:
    """`training predict RUN notes.txt` tagged the words of the name "notes.txt", exit 0; the error says the ways on."""
    file = tmp_path / "notes.txt"
    file.write_text("Anna Kowalczyk works at Siemens.\n", encoding="utf-8")
    completed = cli("predict", str(trained_run), "Second text here.", str(file))
    assert (completed.returncode, completed.stderr) == (
        2,
        f"training predict: error: text '{file}': names a file; pass --file {file} to tag its lines, or pipe the text "
        "on standard input to tag it as written\n",
    )


def test_predict_takes_options_before_between_and_after_its_texts(cli, trained_run: Path) -> None:
    texts = ["Anna works at Siemens.", "Second text here.", "Third one."]
    mixed = ("predict", str(trained_run), "--json", texts[0], "--batch-size", "1", texts[1], texts[2])
    completed = cli(*mixed)
    assert completed.returncode == 0, completed.stderr
    assert [json.loads(line)["text"] for line in completed.stdout.splitlines()] == texts
    completed = cli(*mixed, "--quantized")  # an option after the texts is read as the option, not dropped
    assert completed.returncode == 2 and "--quantized needs an exported folder" in completed.stderr
    completed = cli("predict", str(trained_run), texts[0], "--bogus", texts[1])
    assert completed.returncode == 2 and "unrecognized arguments: --bogus" in completed.stderr
    completed = cli("predict", "--json", "--", str(trained_run), "-x")  # after `--`, "-x" is a text
    assert completed.returncode == 0 and json.loads(completed.stdout)["text"] == "-x", completed.stderr
    # An option between the model and `--` left "-- -y" over: "unrecognized arguments"
    completed = cli("predict", str(trained_run), "--json", "x", "--", "-y", "--json")
    assert completed.returncode == 0, completed.stderr
    assert [json.loads(line)["text"] for line in completed.stdout.splitlines()] == ["x", "-y", "--json"]


def test_predict_refuses_input_or_arguments_that_are_not_utf8_in_one_line(trained_run: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "training.cli", "predict", str(trained_run)]
    completed = subprocess.run(command, input="Zürich\n".encode("latin-1"), capture_output=True, timeout=600)
    error = completed.stderr.decode()
    assert completed.returncode == 2, error
    assert (
        error == "training predict: error: standard input:1: not valid UTF-8 (byte 0xfc at offset 1); "
        "re-encode the text as UTF-8\n"
    )
    completed = subprocess.run([*command, "Bern", "Z\xfcrich".encode("latin-1")], capture_output=True, timeout=600)
    error = completed.stderr.decode()
    assert completed.returncode == 2, error
    assert error.startswith("training predict: error: text argument 2:1: not valid UTF-8 (byte 0xfc at offset 1)")


def test_predict_writes_texts_a_legacy_stdout_encoding_lacks_escaped(trained_run: Path) -> None:
    """A cp1252 standard output (Windows' for `> out.txt` before Python 3.15) ended as an internal
    UnicodeEncodeError; the JSON lines are valid JSON there, astral characters included."""
    import subprocess
    import sys

    text = "Tokyo \u6771\u4eac met John \U0001f600"
    command = [sys.executable, "-m", "training.cli", "predict", str(trained_run), text]
    environment = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    completed = subprocess.run([*command, "--json"], capture_output=True, env=environment, timeout=600)
    assert completed.returncode == 0, completed.stderr.decode()
    assert json.loads(completed.stdout.decode("cp1252"))["text"] == text
    completed = subprocess.run(command, capture_output=True, env=environment, timeout=600)
    assert completed.returncode == 0, completed.stderr.decode()
    assert b"entities in 1 text" in completed.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--seed", "-1", "from 0 to 4294967295"),
        ("--seed", "4294967296", "from 0 to 4294967295"),
        ("--trials", "0", "of at least 1"),
        ("--documents", "3", "from 10 to 100000"),  # the sweep refused it, after the corpus and configs were written
        ("--documents", "1000000000", "from 10 to 100000"),  # generated for hours, in more memory than a machine has
    ],
)
def test_demo_refuses_sizes_and_seeds_it_cannot_use_as_usage_errors(
    cli, tmp_path: Path, option: str, value: str, expected: str
) -> None:
    """--seed -1 stopped as an internal error (a pydantic message over four lines); --trials 0 ran the default."""
    completed = cli("demo", "--fast", "--output", str(tmp_path / "demo"), option, value)
    assert completed.returncode == 2 and f"argument {option}: expected a whole number {expected}" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 2 and not (tmp_path / "demo").exists()  # usage + error


@pytest.mark.parametrize("inside", [False, True], ids=["a file", "inside a file"])
def test_demo_refuses_an_output_that_is_or_lies_inside_a_file(cli, tmp_path: Path, inside: bool) -> None:
    """It said "[1/7] generating ..." first, then named a corpus file it could not write, not --output."""
    taken = tmp_path / "notes.txt"
    taken.write_text("a file\n")
    out = taken / "demo" if inside else taken
    completed = cli("demo", "--fast", "--output", str(out))
    found = f"lies inside the file {taken}" if inside else "is a file"
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"training demo: error: --output {out}: {found}; expected a folder for everything the demo writes"
    ]


# What the demo names as the makers of a file of its own names other than it writes it now, besides the user.
OTHER_DEMO = "other --documents/--seed or by another version"


def test_demo_refuses_an_output_holding_a_config_folder_it_did_not_write(cli, config_dir: Path, tmp_path: Path) -> None:
    """`training demo --output PROJECT` wrote its train.yaml and model file over PROJECT/configs."""
    shutil.copytree(config_dir, tmp_path / "configs")
    before = {path: path.read_bytes() for path in (tmp_path / "configs").rglob("*") if path.is_file()}
    completed = cli("demo", "--fast", "--output", str(tmp_path))
    assert completed.returncode == 2 and completed.stderr.splitlines() == [
        f"training demo: error: {tmp_path / 'configs' / 'train.yaml'}: not as this demo writes it (edited, or written "
        f"with {OTHER_DEMO}), and the demo would replace it; choose another --output"
    ]
    assert {path: path.read_bytes() for path in (tmp_path / "configs").rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    "name",
    [
        "corpus/train.jsonl",
        "corpus/validation.jsonl",
        "corpus/test.jsonl",
        "train.yaml",
        "model/tiny-bert.yaml",
        "data/resumes.yaml",
        "hpo/demo.yaml",
    ],
)
def test_demo_refuses_to_replace_any_of_its_files_that_it_did_not_write(cli, tmp_path: Path, name: str) -> None:
    """A configs/ holding nothing but the user's `corpus/train.jsonl` was taken for a demo cut short after its corpus,
    and the demo wrote over the user's corpus; any one file of the demo's names, not as it writes it, is refused."""
    mine = tmp_path / "configs" / name
    mine.parent.mkdir(parents=True)
    mine.write_text("mine\n")
    completed = cli("demo", "--fast", "--output", str(tmp_path))
    assert completed.returncode == 2 and completed.stderr.splitlines() == [
        f"training demo: error: {mine}: not as this demo writes it (edited, or written with {OTHER_DEMO}), and the "
        "demo would replace it; choose another --output"
    ]
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == [mine] and mine.read_text() == "mine\n"


def test_demo_takes_up_a_config_folder_it_began_with_the_same_settings(tmp_path: Path) -> None:
    """A demo cut short while writing its config folder (after its train split, or after train.yaml) is begun again:
    its files are as this demo writes them, so nothing is lost."""
    from training.cli.commands.demo import PROFILES, _check_config_folder, demo_files, write_demo_configs

    files = demo_files(PROFILES["fast"], seed=7)
    for written in (["corpus/train.jsonl"], [*files][:4]):
        write_demo_configs(tmp_path / "configs", {name: files[name] for name in written})
        _check_config_folder(tmp_path, "fast", PROFILES["fast"], 7, files)


def test_demo_takes_up_its_earlier_demo_with_another_trials(cli, tmp_path: Path) -> None:
    """`training demo --trials 5` in the folder of a demo run with --trials 2 was refused as 'not as this demo writes
    it': hpo/demo.yaml holds the budget, which is no setting of the study; the study goes on with the new one."""
    from training.cli.commands.demo import PROFILES, _check_config_folder, demo_files, write_demo_configs

    fast = PROFILES["fast"]
    write_demo_configs(tmp_path / "configs", demo_files(fast.model_copy(update={"trials": 2}), seed=7))
    more = fast.model_copy(update={"trials": 5})
    _check_config_folder(tmp_path, "fast", more, 7, demo_files(more, seed=7))
    hpo = tmp_path / "configs" / "hpo" / "demo.yaml"
    hpo.write_text(hpo.read_text().replace("k_folds: 2", "k_folds: 4"))  # edited beyond its budget: the user's
    completed = cli("demo", "--fast", "--trials", "5", "--output", str(tmp_path))
    assert completed.returncode == 2 and completed.stderr.splitlines() == [
        f"training demo: error: {hpo}: not as this demo writes it (edited, or written with {OTHER_DEMO}), and the "
        "demo would replace it; choose another --output"
    ]


def test_demo_names_the_command_that_goes_on_with_its_corpus_cut_short(cli, tmp_path: Path) -> None:
    """A demo cut short once it wrote its corpus, run again with other --documents, blamed its own corpus on the user
    ('not as this demo writes it'); the --documents are read back from the corpus, as from a finished demo."""
    from training.cli.commands.demo import PROFILES, demo_files, write_demo_configs

    out = tmp_path / "my demo"
    files = demo_files(PROFILES["full"].model_copy(update={"documents": 60}), seed=12)
    write_demo_configs(out / "configs", {name: text for name, text in files.items() if name.startswith("corpus/")})
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    completed = cli("demo", "--fast", "--seed", "12", "--output", str(out))
    assert completed.returncode == 2 and completed.stderr.splitlines() == [
        f"training demo: error: {out / 'configs'}: holds the corpus of a demo cut short; run `training demo --fast "
        f"--documents 60 --seed 12 --output '{out}'` to go on with it, or choose another --output"
    ]
    other_seed = cli("demo", "--fast", "--documents", "60", "--output", str(out))  # its seed is not in the corpus
    assert other_seed.returncode == 2 and other_seed.stderr.splitlines() == [
        f"training demo: error: {out / 'configs' / 'corpus' / 'train.jsonl'}: not as this demo writes it (edited, or "
        f"written with {OTHER_DEMO}), and the demo would replace it; choose another --output"
    ]
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    ("made", "run", "seed", "option", "given"),
    [
        ("full", "--fast", 7, "", " --documents 20"),
        ("fast", "--json", 12, " --fast", " --documents 20 --seed 12"),
        ("fast", "--fast", 12, " --fast", " --documents 20 --seed 12"),
    ],
    ids=["other size", "other size and seed", "same size, other seed"],
)
def test_demo_refuses_an_output_holding_the_other_sizes_demo_naming_it(
    cli, tmp_path: Path, made: str, run: str, seed: int, option: str, given: str
) -> None:
    """The demo of the other size (--fast or not) was called 'a config folder the demo did not write'; the command
    advised to go on with it left out its --documents and --seed (so it wrote another corpus) and quoted no path. The
    demo of the same size with other --documents and --seed was written over with another corpus."""
    from training.cli.commands.demo import PROFILES, demo_files, write_demo_configs

    out = tmp_path / "my demo"
    write_demo_configs(out / "configs", demo_files(PROFILES[made].model_copy(update={"documents": 20}), seed=seed))
    before = {path: path.read_bytes() for path in (out / "configs").rglob("*") if path.is_file()}
    completed = cli("demo", run, "--output", str(out))
    made_with = f"{PROFILES[made].backbone} made {'with' if option else 'without'} --fast"
    assert completed.returncode == 2 and completed.stderr.splitlines() == [
        f"training demo: error: {out / 'configs'}: holds the demo of {made_with}; run `training demo{option}{given} "
        f"--output '{out}'` to go on with it, or choose another --output"
    ]
    assert {path: path.read_bytes() for path in (out / "configs").rglob("*") if path.is_file()} == before
    (out / "configs" / "train.yaml").write_text("backbone: mine\n")
    edited = cli("demo", run, "--output", str(out))
    advice = f"run `training demo{option} --output '{out}'` with the same --documents and --seed as before to go on"
    if (made == "fast") == (run == "--fast"):  # its own size, whose settings it cannot read back: the file is named
        advice = f"{out / 'configs' / 'corpus' / 'train.jsonl'}: not as this demo writes it"
    assert edited.returncode == 2 and advice in edited.stderr


def test_demo_runs_end_to_end_and_writes_its_reports(cli, tmp_path: Path) -> None:
    from training.cli.commands.demo import PROFILES, demo_files, write_demo_configs

    out = tmp_path / "demo"
    # A demo cut short once its corpus was written, before its configs: gone on with by the command it names.
    files = demo_files(PROFILES["fast"].model_copy(update={"documents": 60}), seed=7)
    write_demo_configs(out / "configs", {name: text for name, text in files.items() if name.startswith("corpus/")})
    go_on = _advised_command(cli("demo", "--fast", "--trials", "2", "--output", str(out)))
    assert go_on == ["demo", "--fast", "--documents", "60", "--output", str(out)]
    completed = cli(*go_on, "--trials", "2", "--json")
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout)
    assert summary["lineage"]["study"]["study_name"] == "demo" and summary["lineage"]["study"]["trial_number"] in (0, 1)
    assert 0.0 <= summary["test_metrics"]["entity_f1"] <= 1.0 and len(summary["predictions"]) == 3
    for report in ("final report", "study report"):
        page = Path(summary["folders"][report])
        images = [page.parent / name for name in page.read_text().split('src="')[1:] for name in [name.split('"')[0]]]
        assert images and all(image.read_bytes()[:4] == b"\x89PNG" and image.stat().st_size > 5000 for image in images)
    # Finished, run again at the default size and budget: the command named goes on with a third trial.
    go_on = _advised_command(cli("demo", "--fast", "--output", str(out)))
    assert go_on == ["demo", "--fast", "--documents", "60", "--output", str(out)]
    more = cli(*go_on, "--json")
    assert more.returncode == 0, more.stderr[-3000:]
    assert sorted(path.name for path in (out / "study" / "trials").iterdir()) == ["0", "1", "2"]
    again, run_id = cli(*go_on, "--json"), json.loads(more.stdout)["lineage"]["run_id"]
    assert again.returncode == 0 and json.loads(again.stdout)["lineage"]["run_id"] == run_id  # reused


def _advised_command(refused: subprocess.CompletedProcess[str]) -> list[str]:
    """The arguments of the `training demo ...` command a refused demo names to go on with its folder."""
    assert refused.returncode == 2 and "to go on with it" in refused.stderr, refused.stderr
    return shlex.split(refused.stderr.split("`")[1])[1:]


@pytest.mark.parametrize("size", ["full", "fast"])
def test_the_demo_config_folder_reads_back_as_its_profile(size: str, tmp_path: Path) -> None:
    from training.cli.commands.demo import PROFILES, demo_files, write_demo_configs
    from training.config import build_training_config, load_hpo_config

    profile = PROFILES[size].model_copy(update={"documents": 20, "trials": 5})
    write_demo_configs(tmp_path, demo_files(profile, seed=3))
    config = build_training_config({}, tmp_path)
    hpo = load_hpo_config(tmp_path / "hpo" / "demo.yaml")
    assert (config.model.backbone, config.model.max_length, config.training.seed) == (profile.backbone, 128, 3)
    assert (hpo.k_folds, hpo.n_trials, hpo.sampler.seed) == (profile.folds, 5, 3)
    learning_rate = hpo.search_space["learning_rate"]
    assert (learning_rate.low, learning_rate.high) == profile.learning_rates
    assert config.training.learning_rate == profile.learning_rates[0]
    assert len(list((tmp_path / "corpus").iterdir())) == 3  # train, validation, test


def saved_best_config(config_dir: Path, path: Path, **values: object) -> Path:
    """A `best_config.json` at `path` for the config folder's base config; `values` replace the sweep's fields."""
    from training.config import BestConfig, StudyRef, build_training_config

    study = {
        "metric": "entity_f1",
        "direction": "maximize",
        "objective": 0.5,
        "trial_number": 0,
        "study_name": "ner",
        "storage": "sqlite:///study.db",
        "dataset_fingerprint": "0" * 64,
    }
    config = build_training_config(None, config_dir)
    return BestConfig(config=config, hyperparameters={}, study=StudyRef.model_validate(study | values)).save(path)


def test_final_refuses_other_data_than_the_sweep_s_in_one_line(cli, config_dir: Path, tmp_path: Path) -> None:
    best = saved_best_config(config_dir, tmp_path / "best_config.json", study_name="elsewhere")
    completed = cli("final", str(best), "--output", str(tmp_path / "run"))
    assert completed.returncode == 2, completed.stderr
    assert "but study 'elsewhere' chose its configuration on data 000000000000" in completed.stderr
    assert "--other-data" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before its job.json was written there


@pytest.mark.parametrize("backend", ["local", "subprocess", "torchrun"])
def test_a_final_dry_run_prints_the_command_that_would_run(cli, config_dir: Path, tmp_path: Path, backend: str) -> None:
    # It said only where the job was written, not what would run it.
    best = saved_best_config(config_dir, tmp_path / "best_config.json")
    output = tmp_path / "final run"  # a space: the line is quoted for a shell
    completed = cli("final", str(best), "--output", str(output), "--backend", backend, "--dry-run")
    assert completed.returncode == 0, completed.stderr
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"] if backend == "torchrun" else []
    job_id = json.loads((output / "job.json").read_text())["job_id"]  # a child refuses a job.json replaced meanwhile
    named = ["--job-id", job_id] if backend != "local" else []
    command = [sys.executable, *launcher, "-m", "training.execution.runner", str(output / "job.json"), *named]
    assert completed.stdout == shlex.join(command) + "\n"
    assert completed.stderr == f"dry run: job written to {output}; it runs with:\n"
    as_json = cli("final", str(best), "--output", str(output), "--backend", backend, "--dry-run", "--json")
    assert json.loads(as_json.stdout)["command"] == shlex.join(command)


def processes_running(fragment: str) -> list[int]:
    """The pids of live processes whose command line holds `fragment` (Linux: read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            running = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            if entry.name.isdigit() and running and fragment in (entry / "cmdline").read_text().replace("\0", " "):
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile, or not a process
            continue
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's process in /proc")
def test_final_stopped_with_sigterm_stops_its_job_s_process_and_exits_143(config_dir: Path, tmp_path: Path) -> None:
    # `kill PID` or a scheduler ending the command reaches this process alone: its job's child must not go on alone.
    from training.config import build_training_config

    fingerprint = build_training_config(None, config_dir).data.load().fingerprint
    best = saved_best_config(config_dir, tmp_path / "best_config.json", dataset_fingerprint=fingerprint)
    out = tmp_path / "run"
    arguments = ["final", str(best), "--output", str(out), "--backend", "subprocess"]
    command = [sys.executable, "-m", "training.cli", *arguments]
    final = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not processes_running(str(out / "job.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_running(str(out / "job.json")), "the job's process never started"
        final.send_signal(signal.SIGTERM)
        _, stderr = final.communicate(timeout=60)
    finally:
        final.kill()
        orphans = processes_running(str(out / "job.json"))
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
    assert orphans == [], "the job's process went on after training final was terminated"
    assert final.returncode == 143
    assert stderr.strip().splitlines()[-1] == "training final: terminated; state written so far is kept and resumable"


@pytest.mark.slow
def test_final_with_a_bad_mlflow_uri_exits_2_in_one_line_before_training(cli, config_dir: Path, tmp_path: Path) -> None:
    from training.config import build_training_config

    fingerprint = build_training_config(None, config_dir).data.load().fingerprint
    best = saved_best_config(config_dir, tmp_path / "best_config.json", dataset_fingerprint=fingerprint)
    out = tmp_path / "run"
    completed = cli("final", str(best), "--output", str(out), "--mlflow-uri", "ftp://x/y")
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "training final: error: tracking_uri (--mlflow-uri): 'ftp://x/y' is not an MLflow tracking URI; expected "
        "file, sqlite, postgresql, mysql, mssql, http, https, databricks, azureml: or a folder"
    ]
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_final_with_mlflow_names_the_logged_model_once_however_often_it_runs(
    cli, config_dir: Path, tmp_path: Path
) -> None:
    mlflow = pytest.importorskip("mlflow", reason='tracking needs pip install "training-execution[mlflow]"')
    from training.config import build_training_config

    fingerprint = build_training_config(None, config_dir).data.load().fingerprint
    best = saved_best_config(config_dir, tmp_path / "best_config.json", dataset_fingerprint=fingerprint)
    uri, out = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "run")

    shown = cli("final", str(best), "--output", out, "--mlflow-uri", uri)
    rerun = cli("final", str(best), "--output", out, "--mlflow-uri", uri, "--json")

    assert shown.returncode == 0 and rerun.returncode == 0, shown.stderr + rerun.stderr
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("final-training").experiment_id])  # logged once
    logged = f"runs:/{run.info.run_id}/pyfunc"
    assert f"MLflow model: {logged} (mlflow.pyfunc.load_model)" in shown.stderr
    assert json.loads(rerun.stdout)["mlflow_model"] == logged


# A command of a test plugin, `fail`: its error's message is formatted while main reports it, and raising the signal
# there lands it inside the error path, every time (the handler runs before raise_signal returns).
SIGNAL_WHILE_REPORTING = """
import signal, sys
from training.cli import commands, main
from training.common.errors import InputError

class Landing(InputError):
    def __str__(self):
        signal.raise_signal(getattr(signal, sys.argv[1]))
        return "bad input"

def fail(args):
    raise Landing("bad input")

class Stderr:  # the same signal again while the "interrupted" or "terminated" line is written
    def __init__(self, inner):
        self.inner, self.sent = inner, False
    def write(self, text):
        if not self.sent and text.startswith("training fail:"):
            self.sent = True
            signal.raise_signal(getattr(signal, sys.argv[1]))
        return self.inner.write(text)
    def flush(self):
        self.inner.flush()

sys.stderr = Stderr(sys.stderr)
commands.BUILTIN += (lambda parsers: parsers.add_parser("fail").set_defaults(func=fail),)
code = main.main(["fail"])
print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
sys.exit(code)
"""


@pytest.mark.parametrize(("name", "code", "how"), [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
def test_a_signal_while_an_error_is_reported_ends_in_one_line_and_the_signal_s_exit_code(
    name: str, code: int, how: str
) -> None:
    """SIGTERM or Ctrl-C arriving as main printed a command's error escaped it as a KeyboardInterrupt traceback, and
    a second Ctrl-C as it printed the 'interrupted' line did too; a command that writes nothing to resume was said to
    keep resumable state. Both handlers are as they were once main returns."""
    completed = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_REPORTING, name], capture_output=True, text=True)
    assert completed.returncode == code, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == f"training fail: {how}"
    assert completed.stdout.split() == ["True", "True"]


def test_predict_numbers_the_texts_of_a_file_as_its_lines(
    cli, tagging_run: Path, config_dir: Path, tmp_path: Path
) -> None:
    """The table's `text #` counted from 0, so that an entity on a file's second line was said to be in text 1."""
    from data.loaders import load_dataset

    document = load_dataset(config_dir / "resumes")["validation"][0].text.replace("\n", " ")
    (tmp_path / "texts.txt").write_text(f"\n{document}\n", encoding="utf-8")
    completed = cli("predict", str(tagging_run), "--file", str(tmp_path / "texts.txt"))
    assert completed.returncode == 0, completed.stderr
    numbers = {line.split("│")[1].strip() for line in completed.stdout.splitlines() if line.startswith("│")}
    assert numbers == {"2"}, completed.stdout  # the first line is blank: no entities
