"""Notebooks: code cells are rewritten, IPython lines and every other byte of the file are kept."""

from __future__ import annotations

import json

import pytest

from training.common.errors import InputError
from training_compat.notebook import rewrite_notebook
from training_compat.rewrite import rewrite


def rewrite_cell(index: int, code: str) -> str:
    return rewrite(code.encode()).source.decode()


def notebook(*cells: dict, **layout) -> bytes:
    document = {
        "cells": list(cells),
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return (json.dumps(document, **layout) + "\n").encode()


def code(source, outputs=()) -> dict:
    return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": list(outputs), "source": source}


MARKDOWN = {"cell_type": "markdown", "metadata": {}, "source": ["Run `from hpo import create_search_space`\n"]}
OUTPUT = {"output_type": "stream", "name": "stdout", "text": ["from hpo import x\n"]}


@pytest.mark.parametrize(
    "layout",
    [{"indent": 1, "sort_keys": True, "ensure_ascii": False}, {"indent": 2, "ensure_ascii": True}],
    ids=["nbformat", "indent-2-ascii"],
)
def test_code_cells_change_and_nothing_else(layout: dict) -> None:
    cells = [
        MARKDOWN,
        code(
            ["%pip install training-compat\n", "!ls\n", "from hpo import create_search_space  # é\n", "x = 1"], [OUTPUT]
        ),
        code("import training.model\ntraining.model.create_model_and_tokenizer"),
        code(["%%bash\n", "echo from hpo import x\n"]),
    ]
    raw = notebook(*cells, **layout)
    after, changed = rewrite_notebook(raw, rewrite_cell)
    expected = [
        MARKDOWN,
        code(
            ["%pip install training-compat\n", "!ls\n", "from training.hpo import create_search_space  # é\n", "x = 1"],
            [OUTPUT],
        ),
        code("import training.core.model\ntraining.core.model.create_model_and_tokenizer"),
        cells[3],
    ]
    assert after == notebook(*expected, **layout)  # byte for byte: same layout, same escaping
    assert [cell.index for cell in changed] == [2, 3]
    assert changed[0].after.startswith("%pip install training-compat\n!ls\nfrom training.hpo")


def test_a_notebook_without_legacy_imports_is_returned_as_it_was() -> None:
    raw = b'{"cells": [{"cell_type": "code", "source": ["import os"]}],\n "nbformat": 4}'
    assert rewrite_notebook(raw, rewrite_cell) == (raw, [])


def test_a_cell_that_does_not_parse_names_the_cell_and_line() -> None:
    raw = notebook(code("import hpo\n"), code("import os\nx = (\n"))
    with pytest.raises(InputError, match=r"^cell 2, line 2: invalid syntax: '\(' was never closed$"):
        rewrite_notebook(raw, rewrite_cell)


def test_a_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(InputError, match="not a notebook"):
        rewrite_notebook(b"{cells", rewrite_cell)
