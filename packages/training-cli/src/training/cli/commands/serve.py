"""`training serve`: a trained model behind an HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from training.cli.commands.common import add_precision_option, positive_int
from training.cli.run_paths import note_unfinished, predictor_folder
from training.common.cores import check_process_count
from training.common.optional import require


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="serve a model over HTTP: POST /predict, GET /health, GET /metadata")
    parser.add_argument(
        "model", type=Path, help="a run folder, its model/ folder (torch), or an exported folder (onnxruntime)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=positive_int, default=1, help="server processes, each with a model copy")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="texts tagged together across requests")
    parser.add_argument("--max-texts", type=positive_int, default=64, help="texts accepted in one request")
    parser.add_argument("--max-chars", type=positive_int, default=20_000, help="characters accepted in one text")
    parser.add_argument("--quantized", action="store_true", help="serve an exported folder's int8 model")
    add_precision_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.common.errors import InputError

    check_process_count(args.workers, f"--workers {args.workers}")  # uvicorn starts them all, however many
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: expected a port 0-65535")
    model_dir = predictor_folder(args.model, quantized=args.quantized, precision=args.precision).resolve()
    note_unfinished(args, model_dir)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET  # as uvicorn chooses it
    try:  # before the model loads: uvicorn would load it, then log the error and exit 3
        socket.create_server((args.host, args.port), family=family).close()
    except OSError as error:
        where = f"--host {args.host} --port {args.port}"
        raise InputError(f"{where}: cannot listen there: {error.strerror or error}") from None
    uvicorn = require("uvicorn", "training serve")
    require("fastapi", "training serve")
    from training.cli.serving import SETTINGS_VARIABLE, ServeSettings, check_model

    settings = ServeSettings(
        model_dir=str(model_dir),
        quantized=args.quantized,
        precision=args.precision,
        batch_size=args.batch_size,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
    )
    with tempfile.TemporaryDirectory(prefix="training-serve-") as folder:
        settings_file = Path(folder) / "settings.json"
        settings_file.write_text(settings.model_dump_json(), encoding="utf-8")
        os.environ[SETTINGS_VARIABLE] = str(settings_file)
        if args.workers > 1:  # uvicorn restarts, for ever, worker processes that cannot load the model: load it first,
            # in a process of its own, so that this one, which only watches the workers, holds no model copy of its own
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as check:
                check.submit(check_model).result()
        uvicorn.run(
            "training.cli.serving:app_from_settings",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
        )
    return 0
