"""Documents/s of `evaluate_model` and of `Predictor` on raw texts: this tree against the code of a git revision.

Each code version runs in a worker process of its own whose `PYTHONPATH` points at that version's
`packages/*/src` (the revision's files are taken with `git archive`, so nothing in the repository changes). Both
workers load the same saved model (the packaged MiniLM, or `--model tiny-bert`, with a fresh seeded head) and
the same generated documents (`data.generate`), and take turns: every round runs each task at each thread count
once per worker, the order of the workers alternating between rounds, so load on a shared machine hits them
alike. Reported: documents/s and tokens/s (window tokens, specials included, no padding) per worker, the ratio
this tree / revision within each round as median [min-max], whether both versions returned the same tags,
metrics and entities (scores within 1e-5), and the entity F1 of each one's `evaluate`.

- `evaluate`: `evaluate_model(model, tokenizer, documents)` on the labelled documents (metrics included).
- `predict`: `Predictor(model, tokenizer)(texts)` on the same documents' raw texts.

`--exported` also measures this tree's `OnnxPredictor` on an export of the model (`export_onnx(..., quantize=True)`)
against the revision's torch `predict`: tasks `predict onnx` (fp32) and `predict int8` (onnxruntime's dynamic int8
weights), at the same thread count. The model is then first trained (`train_model`, `--train-documents` other
generated documents), so that the export's record gives a meaningful F1 of torch, fp32 ONNX and int8 on the timed
documents (which no training saw).

`--precision` is the `precision` both take (fp32, their default for a model held in memory; bf16; auto: bf16 where
the CPU computes it natively, which is what a run trained with `precision: auto` predicts in from its folder):
every version runs in the first one given, and this tree once more in each other one, in a worker of its own
(`--precision fp32 bf16` measures bf16 against fp32 within one run, and compares their outputs as a revision's).

Batch sizes are each version's own defaults unless `--batch-size` is given. `--profile N` prints where each
worker spends each task's time (one untimed cProfile run per task, the top N functions by own time).

Usage: `python benchmarks/bench_predict.py --baseline a237f94 [--repeats 3] [--threads 1 2] [--documents 200]
[--precision fp32 bf16] [--exported]`
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from predict_workload import BACKBONES, model_folder, prepare

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPOSITORY = Path(__file__).resolve().parents[1]
TASKS = ("evaluate", "predict")
EXPORTED_TASKS = {"predict onnx": False, "predict int8": True}  # task: quantized; this tree only, vs `predict`
THIS_TREE = "this tree"
ONNX = "this tree, onnxruntime"
SCORE_TOLERANCE = 1e-5


# -- the worker: one code version, commands on stdin, one JSON line per answer on stdout -------------------------
def worker(folder: Path, batch_size: int | None, onnx: bool, precision: str) -> int:
    """Serve timing commands for the code on this process's `PYTHONPATH` (`onnx`: its onnxruntime predictor on the
    exported folder, in a process of its own: onnxruntime's threads in the torch workers' process slowed torch), torch
    computing in `precision`."""
    import torch
    import transformers
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    import training.core.pipeline
    from data.documents import Document, Span
    from training.core import Predictor  # any code version: the module holding it was renamed
    from training.core.evaluator import evaluate_model

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    records = [json.loads(line) for line in (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    documents = [
        Document.from_spans(f"doc-{index}", record["text"], tuple(Span(*span) for span in record["annotations"]))
        for index, record in enumerate(records)
    ]
    texts = [document.text for document in documents]
    sized = {} if batch_size is None else {"batch_size": batch_size}
    # fp32, every version's default, is not passed: a revision from before the precision argument runs it too
    computed = sized if precision == "fp32" else {**sized, "precision": precision}
    if "precision" in computed and "precision" not in inspect.signature(evaluate_model).parameters:
        raise SystemExit(f"this code version computes in fp32 only; leave out --precision {precision}")
    sessions: dict[tuple[str, int], Any] = {}
    if not onnx:
        model = AutoModelForTokenClassification.from_pretrained(model_folder(folder)).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_folder(folder))
        predictor = Predictor(model, tokenizer, device="cpu", **computed)

    def runner(task: str, threads: int) -> Callable[[], Any]:
        """The task as a call; an onnxruntime session (one per task and thread count) is made here, untimed."""
        if task == "evaluate":
            return lambda: evaluate_model(model, tokenizer, documents, **computed)
        if task == "predict":
            return lambda: predictor(texts)
        if (task, threads) not in sessions:
            from training.core.exported import OnnxPredictor  # only here: a baseline revision may predate it

            exported = folder / "exported"
            sessions[task, threads] = OnnxPredictor(exported, quantized=EXPORTED_TASKS[task], threads=threads, **sized)
        return lambda: sessions[task, threads](texts)

    _answer({"ready": True, "pipeline": training.core.pipeline.__file__, "torch": torch.__version__})
    for line in sys.stdin:
        command = json.loads(line)
        torch.set_num_threads(command["threads"])
        if command.get("warmup"):
            # The first calls also give the outputs the versions are compared on.
            tasks = EXPORTED_TASKS if onnx else TASKS
            _answer({task: _outputs(task, runner(task, command["threads"])()) for task in tasks})
        elif command.get("profile"):
            profiler = cProfile.Profile()
            profiler.runcall(runner(command["task"], command["threads"]))
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(command["profile"])
            _answer({"profile": text.getvalue()})
        else:
            call = runner(command["task"], command["threads"])
            started = time.perf_counter()
            call()
            _answer({"seconds": time.perf_counter() - started})
    return 0


def _outputs(task: str, result: Any) -> Any:
    """What a version returned, as plain JSON, for comparing versions."""
    if task == "evaluate":
        metrics = {name: value for name, value in result.metrics.items() if isinstance(value, (int, float))}
        return {"tags": [list(tags) for tags in result.predictions], "metrics": metrics}
    return [[[e.start, e.end, e.label, e.score] for e in entities] for entities in result]


def _answer(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# -- the parent: data, model, code versions, rounds ----------------------------------------------------------------
class Worker:
    """A worker process for the code under `source` (a folder holding `packages/*/src`), computing in `precision`."""

    def __init__(self, name: str, source: Path, precision: str, folder: Path, args: argparse.Namespace) -> None:
        self.name = name
        self.tasks = tuple(EXPORTED_TASKS) if name == ONNX else TASKS
        paths = sorted(str(path) for path in (source / "packages").glob("*/src"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(folder), "--precision", precision]
        if name == ONNX:
            command.append("--onnx")
        if args.batch_size is not None:
            command += ["--batch-size", str(args.batch_size)]
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.ask(None)
        expected = str(source / "packages")
        if not ready["pipeline"].startswith(expected):
            raise SystemExit(f"{name}: imported {ready['pipeline']}, not the code under {expected}")

    def ask(self, command: dict[str, Any] | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker exited (code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def revision_tree(revision: str, scratch: Path) -> Path:
    """The revision's `packages/` extracted under `scratch` with `git archive` (the repository is left as it is)."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", "--format=tar", revision, "packages"],
        check=True,
        capture_output=True,
    ).stdout
    target = scratch / "revision"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def compare(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether every torch worker returned this tree's tags, metrics and entities (scores within tolerance), and how
    far the onnxruntime predictor's entities are from this tree's torch ones."""
    first = outputs[THIS_TREE]
    verdict: dict[str, Any] = {}
    for name, other in outputs.items():
        if name == ONNX:
            verdict.update({f"{ONNX} {task}": agreement(first["predict"], other[task]) for task in EXPORTED_TASKS})
        if name in (THIS_TREE, ONNX):
            continue
        same_eval = first["evaluate"] == other["evaluate"]
        spans = [[entity[:3] for entity in doc] for doc in first["predict"]]
        other_spans = [[entity[:3] for entity in doc] for doc in other["predict"]]
        differences = [
            abs(a[3] - b[3])
            for left, right in zip(first["predict"], other["predict"], strict=True)
            for a, b in zip(left, right, strict=False)
        ]
        largest = max(differences, default=0.0)
        f1 = [outputs_f1(first), outputs_f1(other)]
        verdict[name] = {
            "evaluate_identical": same_eval,
            "entity_f1": f1,
            "predict_spans_identical": spans == other_spans,
            "predict_max_score_difference": largest,
            "same_outputs": same_eval and spans == other_spans and largest <= SCORE_TOLERANCE,
        }
    return verdict


def outputs_f1(outputs: dict[str, Any]) -> float:
    """The entity F1 of a worker's `evaluate` output (its metrics on the timed documents)."""
    return round(outputs["evaluate"]["metrics"]["entity_f1"], 4)


def agreement(reference: list[Any], other: list[Any]) -> dict[str, Any]:
    """How far `other`'s entities are from `reference`'s (torch's): identical or not, and the F1 of one against the
    other (entities as start, end, label)."""
    expected = {(index, *entity[:3]) for index, doc in enumerate(reference) for entity in doc}
    found = {(index, *entity[:3]) for index, doc in enumerate(other) for entity in doc}
    both = len(expected & found)
    f1 = 2 * both / (len(expected) + len(found)) if expected or found else 1.0
    return {"entities_identical": expected == found, "entity_agreement_f1": round(f1, 4), "entities": len(found)}


def spread(values: Sequence[float], digits: int = 1) -> str:
    """`median [min-max]`."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to compare with (e.g. a237f94); none: this tree alone")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts (default 1)")
    parser.add_argument("--documents", type=int, default=200, help="generated documents (default 200)")
    parser.add_argument("--sentences", type=int, default=14, help="most sentences per document (default 14)")
    parser.add_argument("--model", choices=sorted(BACKBONES), default="minilm", help="backbone (default minilm)")
    parser.add_argument("--batch-size", type=int, help="inference batch size (default: each version's own)")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=("auto", "fp32", "bf16"),
        default=["fp32"],
        help="torch's precision: every version in the first, this tree also in each other one (default fp32)",
    )
    parser.add_argument("--seed", type=int, default=42, help="corpus and head seed (default 42)")
    parser.add_argument("--profile", type=int, default=0, help="print each worker's top N functions per task")
    parser.add_argument("--exported", action="store_true", help="also time this tree's onnxruntime predict")
    parser.add_argument("--train-documents", type=int, default=300, help="--exported: training documents")
    parser.add_argument("--train-epochs", type=int, default=3, help="--exported: training epochs (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--onnx", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args.batch_size, args.onnx, args.precision[0])

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as scratch_name:
        scratch = Path(scratch_name)
        facts = prepare(args, scratch)
        first, *others = dict.fromkeys(args.precision)
        sources = {THIS_TREE: (REPOSITORY, first), **{f"{THIS_TREE}, {other}": (REPOSITORY, other) for other in others}}
        if args.baseline:
            sources[f"revision {args.baseline}"] = (revision_tree(args.baseline, scratch), first)
        if args.exported:
            sources[ONNX] = (REPOSITORY, first)
        workers = [Worker(name, source, precision, scratch, args) for name, (source, precision) in sources.items()]
        try:
            seconds, outputs = measure(args, workers)
        finally:
            for item in workers:
                item.close()
    result = {
        **facts,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "model": BACKBONES[args.model],
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "seconds": seconds,
        "outputs": compare(outputs) if len(outputs) > 1 else {},
        "total_wall_seconds": time.perf_counter() - began,
    }
    report(result, [item.name for item in workers])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def measure(args: argparse.Namespace, workers: list[Worker]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seconds per worker, task and thread count (one value per round), and each worker's outputs."""
    seconds: dict[str, Any] = {
        item.name: {task: {str(n): [] for n in args.threads} for task in item.tasks} for item in workers
    }
    outputs: dict[str, Any] = {item.name: {} for item in workers}
    for item in workers:
        outputs[item.name] = item.ask({"warmup": True, "threads": args.threads[0]})
        for task in item.tasks if args.profile else ():
            profile = item.ask({"task": task, "threads": args.threads[0], "profile": args.profile})["profile"]
            print(f"-- profile: {item.name}, {task}, {args.threads[0]} thread(s)\n{profile}", flush=True)
    for round_index in range(args.repeats):
        order = workers if round_index % 2 == 0 else workers[::-1]
        for threads in args.threads:
            for task in (*TASKS, *EXPORTED_TASKS):
                for item in (worker for worker in order if task in worker.tasks):
                    answer = item.ask({"task": task, "threads": threads})
                    seconds[item.name][task][str(threads)].append(answer["seconds"])
                    print(
                        f"  round {round_index + 1} {threads} thread(s) {task:<12} {item.name:<24} "
                        f"{answer['seconds']:7.2f} s  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    return seconds, outputs


def report(result: dict[str, Any], names: list[str]) -> None:
    count, tokens = result["documents"], result["tokens"]
    print(
        f"\n{result['model']}: {count} documents, {result['words']} words, {result['windows']} windows, {tokens} "
        f"tokens (max_length {result['max_length']}, stride {result['stride']}), {result['repeats']} rounds, torch in "
        f"{result['precision'][0]} unless named"
    )
    if "quantization" in result:
        print(f"entity F1 on the timed documents after training (the export's record): {result['quantization']}")
    seconds = result["seconds"]
    for task in (*TASKS, *EXPORTED_TASKS):
        measured = [name for name in names if task in seconds[name]]
        compared = "predict" if task in EXPORTED_TASKS else task
        for threads in seconds[measured[0]][task] if measured else ():
            for name in measured:
                values = seconds[name][task][threads]
                print(
                    f"{task:<12} {threads} thread(s) {name:<24} documents/s {spread([count / s for s in values]):>22}"
                    f"  tokens/s {spread([tokens / s for s in values], 0):>24}"
                )
            for name in (name for name in names if name != measured[0] and compared in seconds[name]):
                runs = seconds[measured[0]][task][threads]
                ratios = [b / a for a, b in zip(runs, seconds[name][compared][threads], strict=True)]
                print(f"{task:<12} {threads} thread(s) {measured[0]} / {name} {compared}: {spread(ratios, 2)}")
    for name, verdict in result["outputs"].items():
        print(f"outputs of {THIS_TREE} and {name}: {verdict}")
    print(f"total wall time: {result['total_wall_seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
