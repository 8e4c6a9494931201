"""docs/cli.md shows every command's `--help` as the commands print it (it drifted for four commands once)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from training.cli.main import build_parser, main

REFERENCE = Path(__file__).parents[3] / "docs" / "cli.md"
SECTION = re.compile(r"^## training ?([^\n]*)\n\n```text\n(.*?)```$", re.MULTILINE | re.DOTALL)


def _sections() -> dict[str, str]:
    return {command.strip(): text for command, text in SECTION.findall(REFERENCE.read_text(encoding="utf-8"))}


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """The help `training COMMAND --help` prints (through `main`: it once showed required options as optional)."""
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _commands(parser, prefix: str = "") -> list[str]:
    """Every command and subcommand the parser knows, as typed after `training`."""
    found = []
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            found += [f"{prefix}{name}", *_commands(sub, f"{prefix}{name} ")]
    return found


def test_the_reference_has_a_section_for_each_command_and_no_other() -> None:
    assert sorted(_sections()) == sorted(["", *_commands(build_parser())])


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="argparse 3.13 prints an option's metavar once")
@pytest.mark.parametrize("command", sorted(_sections()))
def test_each_section_is_the_commands_help(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the width docs/cli.md is written at
    assert _sections()[command] == _help(command, capsys), (
        f"docs/cli.md is out of date: paste the output of `COLUMNS=100 training {command} --help` into its section"
    )
