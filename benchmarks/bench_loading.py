"""Loading corpora at scale: `load_dataset` (the CLI's loader) and tokenisation, this tree against a git revision.

    hatch run test:python benchmarks/bench_loading.py --baseline REV [--scale 1] [--rounds 2] [--features 5000]

Writes four corpora of generated resumes (`data.generate`, seeded) into a temporary folder, at `--scale` 1:
CoNLL-2003-shaped text (`-DOCSTART-` documents, four columns, 50k sentences), WikiNER-style CoNLL (two tab-separated
columns, no document markers: each sentence a document), token JSON lines (100k documents) and character-span JSON
lines (20k resumes). Each load runs in a fresh process whose `PYTHONPATH` points at one code version's
`packages/*/src` (a revision's files come from `git archive`), so its peak memory (`ru_maxrss`) is its own; the
versions alternate within every round. Reported per corpus and version: median seconds, documents/s, peak memory
against the file's size, the ratio this tree / revision within each round as median [min-max], and whether both
versions built the same documents (texts, words, tags, spans, groups). `--features N` also times `encode_documents`
with the tiny BERT on the first N documents of the span corpus (same windows checked); `--profile N` prints the top N
functions (by own time) of one untimed cProfile run of this tree per corpus.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_predict import REPOSITORY, revision_tree

THIS_TREE = "this tree"
SIZES = {"conll2003.conll": 50_000, "wikiner.conll": 50_000, "tokens.jsonl": 100_000, "spans.jsonl": 20_000}


def write_corpora(folder: Path, scale: float, seed: int) -> dict[str, Path]:
    """The four corpora (sentences for the CoNLL files, documents for the JSON lines) from seeded resumes."""
    from data.documents import Document, Span
    from data.generate import generate_document

    rng = random.Random(seed)

    def resume() -> tuple[dict[str, Any], Document]:
        record = generate_document(rng, rng.randint(1, 14))
        spans = tuple(Span(*annotation) for annotation in record["annotations"])
        return record, Document.from_spans("-", record["text"], spans)

    files = {name: folder / name for name in SIZES}
    target = {name: max(3, int(size * scale)) for name, size in SIZES.items()}
    with files["spans.jsonl"].open("w", encoding="utf-8") as spans:
        for _ in range(target["spans.jsonl"]):
            spans.write(json.dumps(resume()[0], ensure_ascii=False) + "\n")
    with files["tokens.jsonl"].open("w", encoding="utf-8") as tokens:
        for _ in range(target["tokens.jsonl"]):
            document = resume()[1]
            tokens.write(json.dumps({"tokens": [w.text for w in document.words], "tags": list(document.tags)}) + "\n")
    sentences = 0
    with files["conll2003.conll"].open("w", encoding="utf-8") as conll, files["wikiner.conll"].open("w") as wikiner:
        while sentences < target["conll2003.conll"]:
            document = resume()[1]
            conll.write("-DOCSTART- -X- -X- O\n\n")
            for word, tag in zip(document.words, document.tags, strict=True):
                conll.write(f"{word.text} NN B-NP {tag}\n")
                wikiner.write(f"{word.text}\t{tag}\n")
                if word.text == ".":  # a sentence ends at a full stop, and at the document's end
                    conll.write("\n")
                    wikiner.write("\n")
                    sentences += 1
            if document.words[-1].text != ".":
                conll.write("\n")
                wikiner.write("\n")
                sentences += 1
    return files


def worker(path: Path, features: int, profile: int) -> int:
    """Load `path` (and tokenise its first `features` documents); print one JSON line of timings and digests."""
    from data.loaders import load_dataset

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    dataset = load_dataset(path)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    documents = [document for split in dataset.values() for document in split]
    digest = hashlib.sha256()
    for document in documents:
        spans = [[span.start, span.end, span.label] for span in document.spans]
        words = [[word.text, word.start, word.end] for word in document.words]
        digest.update(json.dumps([document.text, words, document.tags, spans, document.group]).encode())
    result = {
        "seconds": seconds,
        "documents": len(documents),
        "words": sum(len(document.words) for document in documents),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "digest": digest.hexdigest(),
    }
    if features:
        from transformers import AutoTokenizer

        from training.core.features import encode_documents
        from training.core.tiny_model import tiny_bert_folder

        tokenizer = AutoTokenizer.from_pretrained(tiny_bert_folder())
        started = time.perf_counter()
        encoded = encode_documents(documents[:features], tokenizer, dataset.tag_names, 128, 16)
        result["features_seconds"] = time.perf_counter() - started
        windows = [[w.doc_index, w.input_ids, w.labels, w.word_ids] for w in encoded.windows]
        result["features_digest"] = hashlib.sha256(json.dumps(windows).encode()).hexdigest()
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    print(json.dumps(result))
    return 0


def run(source: Path, path: Path, features: int = 0, profile: int = 0) -> dict[str, Any]:
    """One load in a fresh process on the code under `source`."""
    paths = sorted(str(folder) for folder in (source / "packages").glob("*/src"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, __file__, "--worker", str(path), "--features", str(features), "--profile", str(profile)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{source}: loading {path.name} failed:\n{done.stderr[-2000:]}")
    if profile:
        print(done.stderr)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to compare with; none: this tree alone")
    parser.add_argument("--scale", type=float, default=1.0, help="corpus sizes relative to the defaults")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--features", type=int, default=0, help="also tokenise this many span documents")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of this tree per corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", choices=tuple(SIZES), help="corpora to load (default: all)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        sys.exit(worker(args.worker, args.features, args.profile))
    with tempfile.TemporaryDirectory() as scratch:
        sources = {THIS_TREE: REPOSITORY}
        if args.baseline:
            sources[f"revision {args.baseline}"] = revision_tree(args.baseline, Path(scratch))
        files = write_corpora(Path(scratch), args.scale, args.seed)
        files = {name: path for name, path in files.items() if not args.only or name in args.only}
        sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in files.items())
        print(f"load average {os.getloadavg()[0]:.2f}; {sizes}")
        if args.profile:
            for path in files.values():
                run(REPOSITORY, path, profile=args.profile)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_number in range(args.rounds):
            order = list(sources) if round_number % 2 == 0 else list(reversed(sources))
            for name, path in files.items():
                for version in order:
                    extra = args.features if name == "spans.jsonl" else 0
                    result = run(sources[version], path, features=extra)
                    results.setdefault((name, version), []).append(result)
                    print(f"round {round_number} {name:16s} {version:22s} {result['seconds']:7.2f}s", flush=True)
        report(files, sources, results)


def report(files: dict[str, Path], sources: dict[str, Path], results: dict[tuple[str, str], list[dict]]) -> None:
    print(
        f"\n{'corpus':16s} {'version':22s} {'docs':>7s} {'words':>9s} {'load s':>7s} {'docs/s':>8s} "
        f"{'peak MB':>8s} {'x file':>6s} {'tokenise s':>10s}"
    )
    for name, path in files.items():
        size = path.stat().st_size / 2**20
        for version in sources:
            runs = results[name, version]
            seconds = statistics.median(r["seconds"] for r in runs)
            peak = max(r["maxrss_mb"] for r in runs)
            features = [r["features_seconds"] for r in runs if "features_seconds" in r]
            tokenise = f"{statistics.median(features):10.2f}" if features else f"{'':10s}"
            print(
                f"{name:16s} {version:22s} {runs[0]['documents']:7d} {runs[0]['words']:9d} {seconds:7.2f} "
                f"{runs[0]['documents'] / seconds:8.0f} {peak:8.0f} {peak / size:6.1f} {tokenise}"
            )
    if len(sources) < 2:
        return
    this, baseline = list(sources)
    print(f"\nratio {this} / {baseline} per round: median [min-max]; same outputs")
    for name in files:
        mine, theirs = results[name, this], results[name, baseline]
        ratios = [a["seconds"] / b["seconds"] for a, b in zip(mine, theirs, strict=True)]
        memory = [a["maxrss_mb"] / b["maxrss_mb"] for a, b in zip(mine, theirs, strict=True)]
        same = all(
            a["digest"] == b["digest"] and a.get("features_digest") == b.get("features_digest")
            for a, b in zip(mine, theirs, strict=True)
        )
        print(
            f"{name:16s} time {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]  "
            f"peak memory {statistics.median(memory):.2f}  same documents: {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
