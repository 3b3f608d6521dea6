"""Checks that cannot fail silently, in the batch-norm chapter and the notation page.

No code cell may print a line that is only ``True`` or ``False`` (a printed boolean is not a
check); every ``relative error:`` or ``max abs difference:`` line must come from a cell that
asserts (``assert`` or the library's ``compare``/``check_vjp``, which raise); code lines fit
the page (``ruff check --line-length 88``); each chapter ends with exercises whose solution
cells are hidden and assert.
"""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [ROOT / "chapters" / name for name in ("batchnorm_backward.ipynb", "notation.ipynb")]
ASSERTING = re.compile(r"\bassert\b|\bcompare\(|\bcheck_vjp\(|\bcheck_gradient\(")


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def printed_lines(cell):
    for output in cell.get("outputs", []):
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        text += output.get("data", {}).get("text/plain", "") if "data" in output else ""
        yield from text.splitlines()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_printed_booleans(path):
    for number, cell in enumerate(code_cells(path)):
        for line in printed_lines(cell):
            assert line.strip() not in ("True", "False"), f"{path.name} code cell {number}: {line!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_printed_errors_are_asserted_in_the_same_cell(path):
    for number, cell in enumerate(code_cells(path)):
        text = "\n".join(printed_lines(cell))
        if "relative error:" in text or "max abs difference:" in text:
            assert ASSERTING.search(cell.source), f"{path.name} code cell {number} prints an error it does not bound"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_fits_the_page(path):
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--line-length", "88", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_exercises_whose_hidden_solutions_assert(path):
    cells = nbformat.read(path, as_version=4).cells
    headings = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "## Exercises" in cell.source]
    assert headings, f"{path.name} has no Exercises section"
    solutions = [cell for cell in cells[headings[-1] + 1:] if cell.cell_type == "code"]
    assert solutions and all("hide-input" in cell.metadata.get("tags", []) for cell in solutions)
    assert all(ASSERTING.search(cell.source) for cell in solutions)
