"""`training predict`: entity spans of texts (arguments, a file, or standard input)."""

from __future__ import annotations

import argparse
import codecs
import os
import sys
from dataclasses import asdict
from pathlib import Path

from data.formats import HALF_SURROGATE, LINE_BREAK
from data.text_files import decode_text, read_text
from training.cli.commands.common import add_precision_option, positive_int
from training.cli.output import print_table
from training.cli.run_paths import load_predictor, note_unfinished, predictor_folder
from training.common.errors import InputError
from training.common.plural import counted


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("predict", help="find entities in text with a saved model")
    parser.add_argument(
        "model", type=Path, help="a run folder, its model/ folder, or an exported folder (onnxruntime, no torch)"
    )
    # default=[]: argparse takes a "*" positional without a default as required, and named it as missing with the model
    parser.add_argument(
        "text", nargs="*", default=[], help="texts to tag (default: one text per line of --file or stdin)"
    )
    parser.add_argument("--file", type=Path, help="read one text per line from this file")
    parser.add_argument("--json", action="store_true", help="print one JSON object per text (JSON lines)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="windows per forward pass (default 32; an exported folder's int8 model takes one at a time)",
    )
    parser.add_argument("--quantized", action="store_true", help="an exported folder's int8 model")
    add_precision_option(parser)
    parser.set_defaults(func=run)


def _texts(args: argparse.Namespace) -> list[str]:
    if args.text and args.file:  # one of them would be left untagged, silently
        raise InputError(f"--file {args.file}: given with texts as arguments; pass the texts one way or the other")
    if named := next((text for text in args.text if os.path.isfile(text)), None):  # its name was tagged, silently
        raise InputError(
            f"text {named!r}: names a file; pass --file {named} to tag its lines, or pipe the text on standard input "
            "to tag it as written"
        )
    if args.text:  # bytes the locale cannot decode come as U+DC80-U+DCFF, which the tokenizer refuses: name the byte
        return [
            decode_text(os.fsencode(text), f"text argument {number}") if HALF_SURROGATE.search(text) else text
            for number, text in enumerate(args.text, 1)
        ]
    # UTF-8 (texts to tag are not the run's corpus, whose data.encoding is not theirs), a BOM (Notepad writes one)
    # dropped, anything else an error naming the line.
    if args.file:
        text = read_text(args.file)
    elif hasattr(sys.stdin, "buffer"):
        text = decode_text(sys.stdin.buffer.read(), "standard input")
    else:  # a notebook or a test harness may swap sys.stdin for a text stream with no bytes under it (a StringIO)
        text = decode_text(sys.stdin.read().encode("utf-8", "surrogatepass"), "standard input")
    # A blank line is a text (with no entities), so that the N-th result is the N-th line's.
    texts = LINE_BREAK.split(text)
    if texts[-1] == "":  # the break that ends the last line starts no line of its own
        texts.pop()
    if not texts:  # lines that are all blank are texts still: a batch's N results for its N lines
        if args.file:
            raise InputError(f"--file {args.file}: empty; expected one text to tag per line")
        raise InputError("no text to tag: pass texts as arguments, --file FILE, or lines on standard input")
    return texts


# JSON leaves these unescaped, but a reader splitting lines with `str.splitlines` would cut a result in two at them.
_LINE_BREAKS_ESCAPED = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def run(args: argparse.Namespace) -> int:
    import json

    # A missing model, or a folder holding none, is refused before standard input is waited on.
    if not args.model.exists():
        hint = "; the model (a run folder, its model/ folder or an exported folder) goes first, then the texts"
        if args.text or args.file:  # else a lone text may have been taken for the model
            hint = ""
        raise InputError(f"{args.model}: no such model folder{hint}")
    folder = predictor_folder(args.model, quantized=args.quantized, precision=args.precision)
    note_unfinished(args, folder)
    texts = _texts(args)
    predictor = load_predictor(folder, args.batch_size, quantized=args.quantized, precision=args.precision)
    results = predictor(texts)
    if args.json:
        escaped = codecs.lookup(sys.stdout.encoding or "utf-8").name != "utf-8"  # JSON's \u escapes, where it lacks one
        for text, entities in zip(texts, results, strict=True):
            line = json.dumps({"text": text, "entities": [asdict(entity) for entity in entities]}, ensure_ascii=escaped)
            print(line.translate(_LINE_BREAKS_ESCAPED))
        return 0
    # Numbered from 1: read with --file, the number is the text's line.
    rows = [
        (number, e.label, e.text, f"{e.start}-{e.end}", e.score)
        for number, entities in enumerate(results, 1)
        for e in entities
    ]
    print_table(f"entities in {counted(len(texts), 'text')}", ("text #", "label", "entity", "chars", "score"), rows)
    return 0
