"""Import time of each package `__init__` in a fresh interpreter, net of interpreter start-up.

Each figure is the best of N runs of `python -c "import X"` minus the best of N runs of `python -c pass`,
measured side by side in one run (rounds interleave every module, so drift hits all alike).
Usage: `python benchmarks/import_time.py [--runs 5] [--json]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time

PACKAGES = (
    "training.common",
    "training.config",
    "data",
    "training.core",
    "training.execution",
    "training.hpo",
    "training.cli",
    "training",
    "hpo",
    "training_exec",
    "training_compat",
)
# Libraries for scale: what a light package import avoids.
REFERENCES = ("yaml", "pydantic", "torch", "transformers", "optuna")


def wall_time(code: str) -> float:
    """Seconds a fresh interpreter takes to run `python -c code`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def best_times(codes: list[str], runs: int) -> dict[str, float]:
    """Fastest wall time of each code over `runs` interleaved rounds, after one warm-up round."""
    best = {code: float("inf") for code in codes}
    for round_number in range(runs + 1):
        for code in codes:
            seconds = wall_time(code)
            if round_number:
                best[code] = min(best[code], seconds)
    return best


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per module (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    modules = [module for module in (*PACKAGES, *REFERENCES) if available(module)]
    best = best_times(["pass", *(f"import {module}" for module in modules)], args.runs)
    baseline = best["pass"]
    rows = {module: best[f"import {module}"] - baseline for module in modules}
    if args.json:
        print(json.dumps({"baseline_s": baseline, "import_s": rows}, indent=2))
        return
    print(f"interpreter start-up (python -c pass): {baseline * 1000:.0f} ms, best of {args.runs}")
    print(f"{'module':<20} {'import (ms)':>12}")
    for module, seconds in rows.items():
        marker = "  (reference)" if module in REFERENCES else ""
        print(f"{module:<20} {seconds * 1000:>12.0f}{marker}")


if __name__ == "__main__":
    main()
