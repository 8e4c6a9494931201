"""Notebooks: code cells are rewritten, IPython syntax and every other byte of the file are kept."""

from __future__ import annotations

import json

import pytest

from training.common.errors import InputError
from training_compat.notebook import IPYTHON, CellNote, rewrite_notebook
from training_compat.plan import NO_NEW_HOME, Note


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
    result = rewrite_notebook(raw)
    expected = [
        MARKDOWN,
        code(
            ["%pip install training-compat\n", "!ls\n", "from training.hpo import create_search_space  # é\n", "x = 1"],
            [OUTPUT],
        ),
        code("import training.core.model\ntraining.core.model.create_model_and_tokenizer"),
        cells[3],
    ]
    assert result.source == notebook(*expected, **layout)  # byte for byte: same layout, same escaping
    assert [cell.index for cell in result.cells] == [2, 3]
    assert result.cells[0].after.startswith("%pip install training-compat\n!ls\nfrom training.hpo")
    assert result.imports == 2
    bash = Note(1, "a %%bash cell is not Python; migrate the imports in it by hand", IPYTHON)
    assert result.notes == (CellNote(4, bash),)


def test_a_notebook_without_legacy_imports_is_returned_as_it_was() -> None:
    raw = b'{"cells": [{"cell_type": "code", "source": ["import os"]}],\n "nbformat": 4}'
    assert rewrite_notebook(raw).source == raw


def test_a_cell_that_does_not_parse_names_the_cell_and_line() -> None:
    raw = notebook(code("import hpo\n"), code("import os\nx = (\n"))
    with pytest.raises(InputError, match=r"^cell 2, line 2: invalid syntax: '\(' was never closed$"):
        rewrite_notebook(raw)


def test_a_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(InputError, match="not a notebook"):
        rewrite_notebook(b"{cells")
    # nested deeper than json's recursion reads: it was a RecursionError, the CLI's internal error
    with pytest.raises(InputError, match=r"^not a notebook \(invalid JSON: nested too deeply to read, hundreds of"):
        rewrite_notebook(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


# Cells as found in real projects: magics inside blocks, assigned output, cell magics, help, continued commands.
REAL_CELLS = [
    "import os\nif not os.path.exists('data'):\n    !git clone https://example.org/data.git\n"
    "from hpo import create_search_space, tune_helper\n",
    "files = !ls data\nt = %timeit -o len(files)\nfrom training.model import create_model_and_tokenizer\n",
    "%%time\nfrom training_exec import execute_final_training\n",
    "%%bash\npython -c 'from hpo import create_search_space'\n",
    "%time from hpo import create_search_space\nfor seed in range(2):\n    %run train.py\n",
]


def test_real_world_cells_are_rewritten_and_everything_else_kept_byte_for_byte() -> None:
    cells = [code(source.splitlines(keepends=True), [OUTPUT]) for source in REAL_CELLS]
    cells[0]["metadata"] = {"tags": ["setup"], "collapsed": True}
    raw = notebook(MARKDOWN, *cells, indent=1, sort_keys=True, ensure_ascii=False)
    result = rewrite_notebook(raw)
    sources = [
        REAL_CELLS[0].replace(
            "from hpo import create_search_space, tune_helper\n",
            "from training.hpo import create_search_space\nfrom hpo import tune_helper\n",
        ),
        REAL_CELLS[1].replace("from training.model import", "from training.core import"),
        "%%time\nfrom training.execution import execute_final_training\n",
        REAL_CELLS[3],
        REAL_CELLS[4],
    ]
    expected = [dict(cell, source=text.splitlines(keepends=True)) for cell, text in zip(cells, sources, strict=True)]
    assert result.source == notebook(MARKDOWN, *expected, indent=1, sort_keys=True, ensure_ascii=False)
    assert [cell.index for cell in result.cells] == [2, 3, 4]
    assert result.imports == 3
    assert result.notes == (
        CellNote(2, Note(4, "hpo.tune_helper has no new home; see docs/migration.md", NO_NEW_HOME)),
        CellNote(5, Note(1, "a %%bash cell is not Python; migrate the imports in it by hand", IPYTHON)),
        CellNote(6, Note(1, "an IPython line is not Python; migrate the import in it by hand", IPYTHON)),
    )
    assert rewrite_notebook(result.source).source == result.source  # a second run changes nothing


def test_outputs_and_metadata_keep_their_bytes_in_a_layout_json_dumps_does_not_write() -> None:
    # hand-edited or written by another tool: escaped and raw text mixed, an inline object, a float json would shorten
    raw = (
        '{"cells": [\n  {"cell_type": "code", "metadata": {}, "execution_count": 1,\n'
        '   "outputs": [{"output_type": "stream", "name": "stdout",\n'
        '                "text": ["caf\\u00e9 \\ud83d\\ude00 1.0e-05\\n"]}],\n'
        '   "source": ["import os  # é\\n",\n              "from hpo import create_search_space\\n"]}\n ],\n'
        ' "metadata": {"language_info": {"name": "python", "version": 3.10}}, "nbformat": 4, "nbformat_minor": 5}\n'
    ).encode()
    result = rewrite_notebook(raw)
    assert result.source == raw.replace(b'"from hpo import', b'"from training.hpo import')


def test_a_line_added_to_a_cell_is_spaced_as_the_lines_around_it() -> None:
    raw = b'{"cells": [{"cell_type": "code", "source": [\r\n    "import hpo.sweep"\r\n  ]}], "nbformat": 4}'
    expected = (
        b'{"cells": [{"cell_type": "code", "source": [\r\n    "import training.hpo.sweep\\n",\r\n'
        b'    "from training import hpo"\r\n  ]}], "nbformat": 4}'
    )
    assert rewrite_notebook(raw).source == expected


def test_a_notebook_of_nbformat_3_has_its_code_cells_rewritten() -> None:
    # nbformat 3 (IPython 1 and 2) keeps the cells in worksheets and a code cell's source under "input"
    cell = {"cell_type": "code", "collapsed": False, "input": ["from hpo import create_search_space"], "outputs": []}
    document = {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": [cell]}]}
    result = rewrite_notebook(json.dumps(document, indent=1).encode())
    document["worksheets"][0]["cells"][0]["input"] = ["from training.hpo import create_search_space"]
    assert result.source == json.dumps(document, indent=1).encode()
    assert [cell.index for cell in result.cells] == [1]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[]", "the file is not a JSON object"),
        (b'{"nbformat": 4}', "no cells"),
        (b'{"cells": 3}', "cells is not a JSON array"),
        (b'{"cells": [1]}', "a cell is not a JSON object"),
        (b'{"worksheets": [[]]}', "a worksheet is not a JSON object"),
        (b'{"cells": [{"cell_type": "code", "source": 5}]}', "the source of cell 1 is neither text nor a list of"),
        (b'{"cells": [{"cell_type": "code", "source": ["import hpo\\n", 7]}]}', "the source of cell 1 is neither"),
    ],
)
def test_json_that_is_not_a_notebook_is_refused_in_one_line(raw: bytes, why: str) -> None:
    with pytest.raises(InputError, match=rf"^not a notebook \({why}"):
        rewrite_notebook(raw)
