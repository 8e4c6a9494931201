"""`training demo`: the main job on embedded defaults (filled in below)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run the end-to-end demo on a generated corpus (offline, CPU)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("training demo: not yet - the demo job arrives with the CLI issue; run the tests meanwhile.")
    return 0
