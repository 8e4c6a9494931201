"""How commands print tables and JSON."""

import json

from training.cli.output import print_json, print_table
from training.core.decoding import Entity


def test_table_cells_are_printed_as_written_not_read_as_rich_markup(capsys) -> None:
    rows = [("scored on", "corpus [test], 4 documents"), ("file", "runs/[bold]x[/bold].jsonl"), ("f1", 0.5)]
    print_table("export", ("what", "value"), rows)
    printed = capsys.readouterr().out
    assert "corpus [test], 4 documents" in printed and "runs/[bold]x[/bold].jsonl" in printed
    assert "0.5000" in printed


def test_a_table_title_holding_a_path_with_brackets_is_printed_as_written(capsys) -> None:
    print_table("lineage of runs/[final]/[/v2]", ("field", "value"), [("run_id", "abc")])
    assert "lineage of runs/[final]/[/v2]" in " ".join(capsys.readouterr().out.split())  # the title may wrap


def test_control_characters_of_a_cell_are_printed_as_escapes(capsys) -> None:
    # An entity's text holding ESC reached the terminal raw (rich keeps it inside a multi-word cell).
    print_table("entities", ("text #", "entity"), [(0, "John\x1b[31m Smith\x07")])
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed and "John\\x1b[31m Smith\\x07" in printed


def test_bidirectional_overrides_of_a_cell_are_printed_as_escapes(capsys) -> None:
    # U+202E (right-to-left override) in an entity reversed what the terminal showed after it, up to the line's end.
    print_table("entities", ("text #", "entity"), [(0, "evil\u202e txt.exe"), (1, "a\u2067b")])
    printed = capsys.readouterr().out
    assert "\u202e" not in printed and "\u2067" not in printed
    assert "evil\\u202e txt.exe" in printed and "a\\u2067b" in printed


def test_entities_are_printed_as_json_objects(capsys) -> None:
    """`training demo --json` read each entity's __dict__, which a slotted dataclass has none of: an internal error
    whenever the demo's model found an entity (the tiny model of --fast found none)."""
    print_json({"predictions": [[Entity(0, 5, "PER", "Alice", 0.875)], []]})
    found = json.loads(capsys.readouterr().out)["predictions"]
    assert found == [[{"start": 0, "end": 5, "label": "PER", "text": "Alice", "score": 0.875}], []]
