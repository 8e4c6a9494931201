"""`training export`: a trained model as ONNX, ready for onnxruntime (`training predict` and `serve` read it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.output import print_json, print_table
from training.cli.run_paths import model_folder


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("export", help="export a model to ONNX (dynamic batch and sequence axes)")
    parser.add_argument("model", type=Path, help="a run folder or its model/ folder")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the export format")
    parser.add_argument("--output", type=Path, required=True, help="the folder to write (replaced atomically)")
    parser.add_argument("--quantize", action="store_true", help="also write an int8 dynamically quantised model")
    parser.add_argument("--json", action="store_true", help="print the export record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.common.optional import require

    model_dir = model_folder(args.model)
    require("onnxruntime", "training export")
    from training.core.export import export_onnx

    record = export_onnx(model_dir, args.output, quantize=args.quantize)
    if args.json:
        print_json(record.model_dump(mode="json"))
        return 0
    rows = [
        ("folder", str(args.output.resolve())),
        ("model", record.onnx_file),
        ("int8 model", record.quantized_file or "-"),
        ("max |logits - torch|", f"{record.parity_max_abs_diff:.2e}"),
        ("window", f"{record.max_length} tokens, stride {record.stride}"),
    ]
    print_table("ONNX export", ("what", "value"), rows)
    return 0
