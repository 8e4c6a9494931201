"""IPython syntax is hidden from the parser where IPython reads it, and comes back byte for byte."""

from __future__ import annotations

import ast

import pytest

from training_compat.ipython import cell_magic, mask

# Cell shapes seen in real notebooks, each holding IPython syntax that is not Python.
CELLS = {
    "shell command as the only statement of a block": (
        "import os\nif not os.path.exists('repo'):\n    !git clone https://example.org/repo.git\n"
        "from hpo import create_search_space\n"
    ),
    "line magic as the only statement of a loop, nested": (
        "for seed in range(3):\n    if seed:\n        %run -i train.py --seed $seed\n    else:\n        %env SEED=0\n"
    ),
    "assigned shell and magic output": "files = !ls data/*.json\nt = %timeit -o sum(range(10))\nfirst, rest = !ls\n",
    "magic in a function, a try and a with block": (
        "def setup():\n    %load_ext autoreload\n\ntry:\n    !!nvidia-smi\nexcept Exception:\n    pass\n"
        "with open('x') as f:\n    %time f.read()\n"
    ),
    "help and autocall escapes": "create_search_space?\nobj.method??\n?len\n/print 1 2\n,print a b\n",
    "command continued with backslashes": "!pip install \\\n    training-compat \\\n    optuna\nx = 1\n",
    "cell magic with a Python body": "%%time\nfrom hpo import create_search_space\nspace = create_search_space({})\n",
    "windows line endings, no final newline": "if True:\r\n    !echo hi\r\nx = 1",
}
# Lines that look like IPython but are Python, because they continue a statement or sit in a string.
PYTHON = {
    "operators on continuation lines": "x = (10\n    % 3)\ny = (x\n!= 2)\n",
    "a percent line in a string": 'text = """\n%not a magic\n!not a command\n"""\n',
    "a backslash continuation": "x = 1 + \\\n    2\n",
    "a question mark in a comment": "x = 1  # why?\n",
}


@pytest.mark.parametrize("case", sorted(CELLS))
def test_every_ipython_shape_parses_and_comes_back_byte_for_byte(case: str) -> None:
    source = CELLS[case]
    masked = mask(source)
    ast.parse(masked.code)  # raises on a line left unmasked
    assert masked.code.count("\n") == source.count("\n")  # line numbers of notes stay true
    assert masked.unmask(masked.code) == source


def test_a_hidden_line_keeps_its_indentation_and_number() -> None:
    masked = mask(CELLS["shell command as the only statement of a block"])
    assert masked.code.splitlines()[2] == "    pass  # training-migrate: ipython line 0"
    assert list(masked.hidden()) == [(3, "    !git clone https://example.org/repo.git\n")]


def test_continued_commands_are_hidden_whole_at_their_first_lines_indentation() -> None:
    masked = mask(CELLS["command continued with backslashes"])
    assert [number for number, _ in masked.hidden()] == [1, 2, 3]
    assert masked.code.endswith("pass  # training-migrate: ipython line 2\nx = 1\n")


@pytest.mark.parametrize("case", sorted(PYTHON))
def test_python_that_looks_like_ipython_is_left_alone(case: str) -> None:
    source = PYTHON[case]
    assert mask(source).code == source


def test_cell_magic_names() -> None:
    assert [cell_magic(text) for text in ("\n%%time\nx", "%%bash -e\necho", "%time x", "x = 1")] == [
        "time",
        "bash",
        None,
        None,
    ]
