"""`training export`: a trained model as ONNX, ready for onnxruntime (`training predict` and `serve` read it)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from training.cli.output import print_json, print_table
from training.cli.run_paths import model_folder, note_unfinished
from training.common.plural import counted


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("export", help="export a model to ONNX (dynamic batch and sequence axes)")
    parser.add_argument("model", type=Path, help="a run folder or its model/ folder")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="the export format")
    parser.add_argument("--output", type=Path, required=True, help="the folder to write (replaced atomically)")
    parser.add_argument(
        "--quantize", action="store_true", help="also write an int8 dynamically quantised model and report its F1"
    )
    parser.add_argument(
        "--data-path", type=os.path.expanduser, help="data to score --quantize on (default: the run's validation data)"
    )
    parser.add_argument(
        "--split", help="split of --data-path to score (default: validation; a single data file is scored whole)"
    )
    parser.add_argument("--json", action="store_true", help="print the export record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.common.optional import require

    model_dir = model_folder(args.model)
    note_unfinished(args, model_dir)
    require("onnxruntime", "training export")
    from training.core.export import export_onnx

    record = export_onnx(model_dir, args.output, quantize=args.quantize, data_path=args.data_path, split=args.split)
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
    report = record.quantization
    if report is not None:
        rows += [
            ("scored on", f"{report.data} [{report.split}], {counted(report.documents, 'document')}"),
            ("entity F1 torch / ONNX / int8", f"{report.torch_f1:.4f} / {report.onnx_f1:.4f} / {report.int8_f1:.4f}"),
            ("int8 F1 change", f"{report.f1_change:+.4f}"),
        ]
    print_table("ONNX export", ("what", "value"), rows)
    return 0
