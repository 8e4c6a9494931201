"""Built-in commands of `training`."""

from __future__ import annotations

import argparse


def _demo(args: argparse.Namespace) -> int:
    print("training demo: not yet - the demo job arrives with the CLI issue; run the tests meanwhile.")
    return 0


def register_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`training demo`: the main job on the embedded defaults."""
    parser = commands.add_parser("demo", help="run the end-to-end demo on a generated corpus (offline, CPU)")
    parser.set_defaults(func=_demo)


BUILTIN = (register_demo,)
