"""`training.precision`: what `auto` resolves to on this machine, bf16 on a CPU, bad values, and `auto`'s check that
keeps bf16 only where the first evaluation holds fp32's F1."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from transformers import BertForTokenClassification

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset, load_dataset
from training.common.errors import ConfigError
from training.config import TrainingConfig
from training.core import precision, train_model
from training.core.callbacks import Callback, TrainerState
from training.core.checkpoint import Progress
from training.core.evaluator import evaluate_model
from training.core.features import Collator, encode_documents
from training.core.model import save_model
from training.core.optimization import Optimization
from training.core.precision import native_bf16, resolve_precision
from training.core.predictor import Predictor, predict
from training.core.run_context import RunContext
from training.core.run_folder import RunFolder
from training.core.run_metrics import Evaluation, PrecisionCheck, RunMetrics

ENTITY_TYPES = ("PER", "ORG", "LOC")
CPU = torch.device("cpu")
# bf16 keeps 8 significant bits: products of the tiny BERT's logits move by a few hundredths at most.
LOGIT_TOLERANCE = 0.1


def corpus(documents: tuple[Document, ...]) -> Dataset:
    return Dataset({"train": documents[:16], "validation": documents[-4:]}, ENTITY_TYPES)


def test_auto_is_bf16_exactly_where_the_cpu_computes_it_natively() -> None:
    """Native bf16 instructions imply oneDNN's bf16 kernels: a CPU without them (an AVX2 machine) trains in fp32; with
    AMX (or Arm's BF16) in bf16; with AVX512-BF16 alone, in bf16 where it measured faster."""
    onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    resolved = resolve_precision("auto", CPU)
    assert resolved == ("bf16" if native_bf16(CPU) else "fp32")
    if not onednn_bf16:
        assert resolved == "fp32"
    found = torch.cpu.get_capabilities()
    if not (found.get("amx_bf16") or found.get("bf16")) and found.get("avx512_bf16"):
        assert resolved == ("bf16" if precision.cpu_bf16_speedup() >= precision.BF16_SPEEDUP else "fp32")
    assert resolve_precision("auto", torch.device("meta")) == "fp32"


def test_the_cpu_bf16_measure_runs_under_inference_mode(caplog: pytest.LogCaptureFixture) -> None:
    """Timing a step needs no bf16 instructions (elsewhere bf16 is emulated, and slow): measured on any CPU, and in a
    caller's inference mode (`evaluate_model(precision="auto")` inside `torch.inference_mode()`)."""
    assert 0 < precision._bf16_speedup() < 100
    with torch.inference_mode():
        assert precision._bf16_speedup() > 0
    precision.cpu_bf16_speedup.cache_clear()
    with caplog.at_level(logging.DEBUG, logger="training.core"):
        speedup = precision.cpu_bf16_speedup()
        assert precision.cpu_bf16_speedup() == speedup
    assert caplog.text.count(f"runs {speedup:.2f}x as fast in bf16 as in fp32 here") == 1


def test_a_run_records_and_logs_the_precision_auto_resolved_to(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = tiny_config.with_values({"training.num_epochs": 1})
    assert config.training.precision == "auto"
    result = train_model(config, corpus(ner_documents), tmp_path / "run")
    expected = resolve_precision("auto", CPU)
    assert result.metrics.precision == expected
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["precision"] == expected
    assert (tmp_path / "run" / "train.log").read_text().count(f"optimizer steps in {expected};") == 1


def test_bf16_trains_on_a_cpu(tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path) -> None:
    config = tiny_config.with_values({"training.num_epochs": 1, "training.precision": "bf16"})
    result = train_model(config, corpus(ner_documents), tmp_path / "run")
    assert result.metrics.precision == "bf16" and result.metrics.skipped_steps == 0
    assert torch.isfinite(torch.tensor(result.metrics.history[-1].loss))


def test_bf16_logits_equal_fp32_within_the_tolerance(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    """The same weights and windows, forward in fp32 and under bf16 autocast: the same logits within
    `LOGIT_TOLERANCE` and the same tag wherever fp32's best tag leads by more than twice that."""
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    windows = encode_documents(ner_documents, tokenizer, iob2_tag_names(ENTITY_TYPES), 64, 8).windows
    batch = Collator(tokenizer.pad_token_id)(windows)
    inputs = {name: batch[name] for name in ("input_ids", "attention_mask")}
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        fp32 = model.eval()(**inputs).logits.float()[real]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(**inputs).logits.float()[real]

    assert float((fp32 - bf16).abs().max()) <= LOGIT_TOLERANCE
    top = fp32.topk(2, dim=1).values
    clear = top[:, 0] - top[:, 1] > 2 * LOGIT_TOLERANCE
    assert clear.sum() > 0
    assert torch.equal(fp32.argmax(dim=1)[clear], bf16.argmax(dim=1)[clear])


def test_cuda_autocast_keeps_attention_off_cudnn_and_restores_the_flags_after() -> None:
    """cuDNN's attention plans each new sequence length (0.3 s on an H200): a CUDA autocast leaves it out for its
    span, also one left by an error, and gives the process its settings back; a CPU autocast and fp32 touch no
    attention setting. The flags are readable and settable without a GPU."""
    before = torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*CUDA is not available")  # torch then disables the autocast
        context = precision.autocast(torch.device("cuda"), torch.bfloat16)
        assert torch.backends.cuda.cudnn_sdp_enabled() == before[0]  # nothing changes before it is entered
        with context:
            assert not torch.backends.cuda.cudnn_sdp_enabled()
            assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
        with pytest.raises(RuntimeError, match=r"^inside$"), precision.autocast(torch.device("cuda"), torch.bfloat16):
            raise RuntimeError("inside")
    assert (torch.backends.cuda.cudnn_sdp_enabled(), torch.backends.cuda.flash_sdp_enabled()) == before
    for device, dtype in ((torch.device("cpu"), torch.bfloat16), (torch.device("cuda"), None)):
        with precision.autocast(device, dtype):
            assert torch.backends.cuda.cudnn_sdp_enabled() == before[0]


def test_prediction_and_evaluation_take_a_precision(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    assert Predictor(model, tokenizer, device="cpu", precision="bf16").autocast_dtype == torch.bfloat16
    assert Predictor(model, tokenizer, device="cpu", precision="fp32").autocast_dtype is None
    assert Predictor(model, tokenizer, device="cpu").autocast_dtype is None  # fp32 by default, on any CPU
    result = evaluate_model(
        model, tokenizer, ner_documents[:4], tag_names=iob2_tag_names(ENTITY_TYPES), precision="bf16"
    )
    assert result.num_documents == 4


@pytest.mark.parametrize(
    ("trained", "native", "expected"),
    [
        ("bf16", True, "bf16"),
        ("bf16", False, "fp32"),
        ("fp32", True, "fp32"),
        ("fp16", True, "fp32"),
        (None, True, "fp32"),
    ],
)
def test_a_saved_run_predicts_and_evaluates_in_the_precision_it_evaluated_in(
    forward_passes: ForwardPasses,
    tiny_tokenizer_and_model: Callable[..., tuple],
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trained: str | None,
    native: bool,
    expected: str,
) -> None:
    """The F1 a run reports is that of its precision, so `predict` and `evaluate_model` on its model folder compute
    in it unless told otherwise, where this CPU computes it natively (our own probe answers as told); a GPU run's fp16
    is fp32 on a CPU, and a model that no run saved is fp32."""
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    model_dir = save_model(model, tokenizer, tmp_path / "run" / "model")
    if trained is not None:
        record = RunMetrics(status="completed", config_fingerprint="c", dataset_fingerprint="d", precision=trained)
        RunFolder.of_model(model_dir).write_metrics(record)

    def dtypes(call: Callable[[], object]) -> set[torch.dtype | None]:
        forward_passes.passes, forward_passes.recording = [], True
        call()
        check, *passes = [dtype for _, dtype in forward_passes.passes]  # the first: loading's two-token check
        assert check is None
        return set(passes)

    dtype, text = precision.AUTOCAST_DTYPES[expected], [ner_documents[0].text]  # type: ignore[index]
    assert dtypes(lambda: predict(model_dir, text, device="cpu")) == {dtype}
    assert dtypes(lambda: evaluate_model(model_dir, None, ner_documents[:2], device="cpu")) == {dtype}
    assert dtypes(lambda: predict(model_dir, text, device="cpu", precision="fp32")) == {None}
    assert dtypes(lambda: evaluate_model(model_dir, None, ner_documents[:2], precision="bf16")) == {torch.bfloat16}
    assert Predictor.from_folder(model_dir, device="cpu").precision == expected
    assert evaluate_model(model_dir, None, ner_documents[:2], device="cpu").precision == expected
    assert evaluate_model(model, tokenizer, ner_documents[:2]).precision == "fp32"  # held in memory: no run


def test_a_run_metrics_file_that_cannot_be_read_stops_only_the_default_precision(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    """Another tool's `metrics.json` beside a model folder, or a damaged one: the error says how to use the model."""
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    model_dir = save_model(model, tokenizer, tmp_path / "run" / "model")
    for content in ("{broken", '{"accuracy": 0.9}'):
        (tmp_path / "run" / "metrics.json").write_text(content, encoding="utf-8")
        hint = r"; give a precision \(precision='fp32', --precision fp32\) to use the model$"
        with pytest.raises(ConfigError, match=rf"^{tmp_path / 'run' / 'metrics.json'}: .*{hint}"):
            predict(model_dir, ["Anna works in Paris."])
        with pytest.raises(ConfigError, match=hint):
            evaluate_model(model_dir, None, ner_documents[:2])
        assert len(predict(model_dir, ["Anna works in Paris."], precision="fp32")) == 1
        assert evaluate_model(model_dir, None, ner_documents[:2], precision="fp32").num_documents == 2


def test_a_bad_precision_is_one_config_error(
    tiny_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    with pytest.raises(ConfigError, match=r"^override: training.precision: .*'fp8'") as caught:
        tiny_config.with_values({"training.precision": "fp8"})
    assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(ConfigError, match=r"^training.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on cpu$"):
        resolve_precision("fp16", CPU)
    tokenizer, model = tiny_tokenizer_and_model(ENTITY_TYPES)
    with pytest.raises(ConfigError, match=r"^precision: 'fp8' is not a precision; expected auto, fp32, bf16 or fp16$"):
        evaluate_model(model, tokenizer, ner_documents[:2], tag_names=iob2_tag_names(ENTITY_TYPES), precision="fp8")


# -- `auto`'s bf16 check on the first evaluation ----------------------------------------------------------------------
class ForwardPasses(Callback):
    """Every forward pass of a token-classification model once training begins (a torch module hook, no stand-in):
    whether it computed gradients (a training step) and the autocast dtype it ran under (None: fp32)."""

    def __init__(self) -> None:
        self.passes: list[tuple[bool, torch.dtype | None]] = []
        self.recording = False

    def on_train_begin(self, state: TrainerState) -> None:
        self.passes, self.recording = [], True

    def __call__(self, module: torch.nn.Module, args: object, output: object) -> None:
        if self.recording and isinstance(module, BertForTokenClassification):
            autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
            self.passes.append((torch.is_grad_enabled(), autocast))

    def evaluations(self) -> list[torch.dtype | None]:
        """The autocast dtype of each evaluation's passes, one entry per run of evaluation batches."""
        runs: list[torch.dtype | None] = []
        previous: tuple[bool, torch.dtype | None] | None = None
        for training, dtype in self.passes:
            if not training and (training, dtype) != previous:
                runs.append(dtype)
            previous = (training, dtype)
        return runs

    def training_dtypes(self) -> set[torch.dtype | None]:
        return {dtype for training, dtype in self.passes if training}


@pytest.fixture
def forward_passes() -> Iterator[ForwardPasses]:
    recorder = ForwardPasses()
    handle = torch.nn.modules.module.register_module_forward_hook(recorder)
    yield recorder
    handle.remove()


@pytest.fixture
def bf16_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """This CPU emulates bf16: our own hardware probe answers as on a CPU with AMX, so that `auto` resolves to bf16."""
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)


@pytest.fixture
def failing_check(bf16_hardware: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` resolves to bf16 and its check fails whatever the figures: no F1 gap is below a negative tolerance."""
    monkeypatch.setattr(precision, "BF16_F1_TOLERANCE", -1.0)


@pytest.fixture
def dataset(tiny_config: TrainingConfig) -> Dataset:
    return load_dataset(tiny_config.data.path, labels=tiny_config.data.labels)


def scores(entity_f1: float) -> Evaluation:
    figures = dict.fromkeys(("entity_precision", "entity_recall", "macro_precision", "macro_recall", "macro_f1"), 0.5)
    return Evaluation(entity_f1=entity_f1, support=20, token_accuracy=0.9, **figures)


@pytest.mark.parametrize(
    ("bf16_f1", "fp32_f1", "switched"),
    [(0.80, 0.82, True), (0.81, 0.82, False), (0.815, 0.82, False), (0.85, 0.82, False), (0.0, 0.02, True)],
)
def test_bf16_more_than_a_point_of_f1_below_fp32_switches_to_fp32(
    bf16_f1: float,
    fp32_f1: float,
    switched: bool,
    bf16_hardware: None,
    tiny_config: TrainingConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="training.core"):
        check = precision.check_bf16(scores(bf16_f1), scores(fp32_f1))
    assert check == PrecisionCheck(bf16_f1=bf16_f1, fp32_f1=fp32_f1, switched=switched)
    assert precision.check_bf16(scores(bf16_f1), scores(fp32_f1), announce=False) == check
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    expected = f"precision auto: bf16 scored entity F1 {bf16_f1:.4f}, fp32 {fp32_f1:.4f} (more than 0.01 below)"
    assert warnings == ([f"{expected}; training goes on in fp32"] if switched else [])
    optimization = Optimization.build(torch.nn.Linear(2, 2), tiny_config.training, RunContext(), total_steps=4)
    after = optimization.after(check)
    assert (after.precision, after.autocast_dtype) == (("fp32", None) if switched else ("bf16", torch.bfloat16))
    assert optimization.precision == "bf16"  # the record is frozen: the switch is a new one


@pytest.mark.parametrize("bf16_f1", [0.0, 0.5])
def test_no_decision_while_fp32_finds_no_entity(bf16_f1: float, caplog: pytest.LogCaptureFixture) -> None:
    """An F1 of 0 in fp32 says nothing about what bf16 loses (a first evaluation before the model finds anything):
    no decision, the run checks again at its next evaluation."""
    with caplog.at_level(logging.INFO, logger="training.core"):
        assert precision.check_bf16(scores(bf16_f1), scores(0.0)) is None
    assert caplog.records == []


def learned_early(tiny_config: TrainingConfig, ner_documents: tuple[Document, ...]) -> tuple[TrainingConfig, Dataset]:
    """A tiny BERT that finds entities by its first evaluation (step 32 of 40: 5 epochs of 8 steps), scored on
    sentences it trains on, so that the check there decides."""
    values = {"training.num_epochs": 5, "training.batch_size": 4, "training.learning_rate": 5e-3}
    values["training.eval_steps"] = 32  # the check, then 8 steps and the last evaluation
    dataset = Dataset({"train": ner_documents[:32], "validation": ner_documents[:8]}, ENTITY_TYPES)
    return tiny_config.with_values(values), dataset


@pytest.mark.slow
def test_auto_keeps_bf16_where_its_first_evaluation_holds_fp32_f1(
    bf16_hardware: None,
    forward_passes: ForwardPasses,
    tiny_config: TrainingConfig,
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
) -> None:
    """Real evaluations of a tiny BERT trained briefly in emulated bf16 and in fp32: within a point of F1, and the run
    trains on in bf16."""
    config, dataset = learned_early(tiny_config, ner_documents)
    result = train_model(config, dataset, tmp_path / "run", callbacks=[forward_passes])

    check = result.metrics.precision_check
    assert check is not None and not check.switched and result.metrics.precision == "bf16"
    assert check.fp32_f1 > 0.5 and abs(check.bf16_f1 - check.fp32_f1) <= precision.BF16_F1_TOLERANCE
    assert result.metrics.history[0].step == 32 and result.metrics.history[0].entity_f1 == check.bf16_f1
    assert forward_passes.evaluations() == [torch.bfloat16, None, torch.bfloat16]
    assert forward_passes.training_dtypes() == {torch.bfloat16}
    log = (tmp_path / "run" / "train.log").read_text()
    assert "precision auto: bf16 scored entity F1" in log and "training goes on in bf16" in log


@pytest.mark.slow
def test_auto_switches_to_fp32_for_the_rest_of_the_run_where_bf16_falls_short(
    failing_check: None,
    forward_passes: ForwardPasses,
    tiny_config: TrainingConfig,
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
) -> None:
    """Training, evaluation and `metrics.json` are fp32 from the failed check on."""
    config, dataset = learned_early(tiny_config, ner_documents)
    result = train_model(config, dataset, tmp_path / "run", callbacks=[forward_passes])

    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["precision"] == "fp32" and record["precision_check"]["switched"] is True
    check = result.metrics.precision_check
    assert check is not None and result.metrics.history[0].entity_f1 == check.fp32_f1
    assert forward_passes.evaluations() == [torch.bfloat16, None, None]
    first_epoch = forward_passes.passes.index((False, torch.bfloat16))
    assert {dtype for training, dtype in forward_passes.passes[first_epoch:] if training} == {None}
    warnings = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "WARNING" in line]
    assert len([line for line in warnings if "precision auto" in line]) == 1
    assert f"bf16 scored entity F1 {check.bf16_f1:.4f}, fp32 {check.fp32_f1:.4f}" in warnings[-1]
    assert "training goes on in fp32" in warnings[-1]


def test_an_explicit_bf16_run_is_not_checked(
    failing_check: None, forward_passes: ForwardPasses, tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    """Even where a check would fail, `precision: bf16` is taken as given: no fp32 evaluation, no switch."""
    config = tiny_config.with_values({"training.num_epochs": 2, "training.precision": "bf16"})
    result = train_model(config, dataset, tmp_path / "run", callbacks=[forward_passes])

    assert result.metrics.precision == "bf16" and result.metrics.precision_check is None
    assert forward_passes.evaluations() == [torch.bfloat16, torch.bfloat16]  # no fp32 pass
    assert "precision auto" not in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.parametrize(
    "values",
    [{"training.num_epochs": 1}, {"training.num_epochs": 2, "training.keep": "last"}],
    ids=["only-the-last-evaluation", "keep-last"],
)
def test_auto_is_not_checked_where_the_check_could_not_change_the_run_or_must_not(
    values: dict[str, object],
    failing_check: None,
    forward_passes: ForwardPasses,
    tiny_config: TrainingConfig,
    dataset: Dataset,
    tmp_path: Path,
) -> None:
    """No training follows a run's last evaluation; a run that keeps its last model (a refit, which evaluates on the
    test split) must not let that split steer it: both stay in bf16, unchecked, even where a check would fail."""
    result = train_model(tiny_config.with_values(values), dataset, tmp_path / "run", callbacks=[forward_passes])

    assert result.metrics.precision == "bf16" and result.metrics.precision_check is None
    assert None not in forward_passes.evaluations()


def test_a_validation_split_without_entities_is_checked_at_each_evaluation_and_never_decides(
    failing_check: None, forward_passes: ForwardPasses, tiny_config: TrainingConfig, tmp_path: Path
) -> None:
    plain = tuple(Document.from_words(f"p{i}", ["nothing", "to", "find", "here"], ["O"] * 4) for i in range(4))
    dataset = Dataset({"train": plain, "validation": plain[:2]}, ENTITY_TYPES)
    result = train_model(
        tiny_config.with_values({"training.num_epochs": 3}), dataset, tmp_path / "run", callbacks=[forward_passes]
    )

    assert result.metrics.precision == "bf16" and result.metrics.precision_check is None
    assert forward_passes.evaluations() == [torch.bfloat16, None, torch.bfloat16, None, torch.bfloat16]
    assert forward_passes.training_dtypes() == {torch.bfloat16}


class Interrupt(Exception):
    """Stands for a crash in the middle of a run."""


class CrashAtSecondEvaluation(Callback):
    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if len(state.history) == 2:
            raise Interrupt


@pytest.mark.slow
def test_a_run_resumed_after_the_switch_goes_on_in_fp32(
    failing_check: None,
    forward_passes: ForwardPasses,
    tiny_config: TrainingConfig,
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checkpoint's progress record keeps the decision: the resumed run trains in fp32 and equals a straight one."""
    config, dataset = learned_early(tiny_config, ner_documents)
    straight = train_model(config, dataset, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train_model(config, dataset, tmp_path / "resumed", callbacks=[CrashAtSecondEvaluation(), forward_passes])
    saved = Progress.model_validate_json((tmp_path / "resumed/checkpoint/trainer_state.json").read_text())
    assert saved.global_step == 32 and saved.precision_check is not None and saved.precision_check.switched

    monkeypatch.setattr(precision, "BF16_F1_TOLERANCE", 1.0)  # a check made again would now keep bf16
    resumed = train_model(config, dataset, tmp_path / "resumed", callbacks=[forward_passes])

    assert resumed.metrics.precision == "fp32" and resumed.metrics.precision_check == saved.precision_check
    assert forward_passes.training_dtypes() == {None} and forward_passes.evaluations() == [None]
    assert resumed.metrics.history == straight.metrics.history and resumed.metrics.best == straight.metrics.best


@pytest.mark.slow
def test_every_torchrun_rank_takes_the_same_precision_decision(ner_config_dir: Path, tmp_path: Path) -> None:
    """Each rank scores the gathered predictions of the whole validation split: the same figures, the same decision."""
    script = tmp_path / "ddp_check.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os

            from data.loaders import load_dataset
            from training.config import build_training_config
            from training.core import precision, train_model

            precision.native_bf16 = lambda device: True  # as on a CPU with AMX: `auto` resolves to bf16
            # 32 steps in all; the first evaluation (the check) after 24, late enough for the tiny BERT to find entities
            settings = ["training.num_epochs=8", "training.batch_size=4", "training.learning_rate=5e-3"]
            settings.append("training.eval_steps=24")
            config = build_training_config({{"set": settings}}, {str(ner_config_dir)!r})
            metrics = train_model(config, load_dataset(config.data.path), {str(tmp_path / "ddp")!r}).metrics
            check = metrics.precision_check.model_dump_json()
            print(f"decision {{os.environ['RANK']}} {{metrics.precision}} {{check}}")
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    # Anywhere in the output: the ranks share one pipe, where one rank's line can run into another's.
    decisions = sorted(re.findall(r"decision (\d+) (\w+ \{[^{}]*\})", completed.stdout))
    assert [rank for rank, _ in decisions] == ["0", "1"], completed.stdout[-3000:]
    assert decisions[0][1] == decisions[1][1]
    record = RunMetrics.model_validate_json((tmp_path / "ddp" / "metrics.json").read_text())
    assert record.world_size == 2 and record.precision_check is not None and record.precision_check.fp32_f1 > 0
    assert decisions[0][1] == f"{record.precision} {record.precision_check.model_dump_json()}"


@pytest.mark.parametrize(
    ("configured", "switched", "trained"),
    [("auto", False, torch.bfloat16), ("auto", True, None), ("bf16", True, torch.bfloat16)],
    ids=["auto-keeps-bf16", "auto-switched", "explicit-bf16-ignores-it"],
)
def test_a_run_takes_an_earlier_runs_check_instead_of_scoring_its_first_evaluation_in_fp32_again(
    configured: str,
    switched: bool,
    trained: torch.dtype | None,
    bf16_hardware: None,
    forward_passes: ForwardPasses,
    tiny_config: TrainingConfig,
    dataset: Dataset,
    tmp_path: Path,
) -> None:
    """A sweep's later trial: the check of an earlier run of the same model and data decides from the first step,
    with no fp32 evaluation, and `metrics.json` records it as taken; a precision given explicitly is not `auto`'s."""
    earlier = PrecisionCheck(bf16_f1=0.80, fp32_f1=0.85 if switched else 0.80, switched=switched)
    config = tiny_config.with_values({"training.num_epochs": 2, "training.precision": configured})
    result = train_model(config, dataset, tmp_path / "run", callbacks=[forward_passes], precision_check=earlier)

    taken = earlier.model_copy(update={"taken": True}) if configured == "auto" else None
    assert result.metrics.precision_check == taken
    assert RunFolder(tmp_path / "run").read_metrics() == result.metrics
    assert result.metrics.precision == ("fp32" if trained is None else "bf16")
    assert forward_passes.evaluations() == [trained, trained]  # two epochs, no fp32 pass of its own
    assert forward_passes.training_dtypes() == {trained}
    log = (tmp_path / "run" / "train.log").read_text()
    assert ("an earlier run's check gave entity F1 0.8000 in bf16" in log) == (configured == "auto")
    assert "precision auto: bf16 scored" not in log


def test_a_resumed_run_keeps_its_own_check_and_not_one_it_is_given(
    bf16_hardware: None, tiny_config: TrainingConfig, dataset: Dataset, tmp_path: Path
) -> None:
    """The checkpoint's precision is the run's: a check given on resuming is not taken over it."""

    class CrashInEpoch2(Callback):
        def on_step_end(self, state: TrainerState) -> None:
            if state.epoch == 1:  # after epoch 1's evaluation and checkpoint
                raise RuntimeError("crash")

    config = tiny_config.with_values({"training.num_epochs": 3})
    with pytest.raises(RuntimeError, match=r"^crash$"):
        train_model(config, dataset, tmp_path / "run", callbacks=[CrashInEpoch2()])
    given = PrecisionCheck(bf16_f1=0.2, fp32_f1=0.9, switched=True)
    result = train_model(config, dataset, tmp_path / "run", precision_check=given)

    own = result.metrics.precision_check
    assert own is None or not own.taken
    assert result.metrics.precision == ("fp32" if own is not None and own.switched else "bf16")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resuming at epoch 2" in log and "an earlier run's check" not in log
