"""Scan of the committed chapter notebooks for checks that cannot fail.

A check in a chapter is an ``assert`` (or a call of the library's compare /
check helpers, which raise) next to a printed value and its bound. This test
reads every committed ``chapters/*.ipynb`` (their saved outputs, nothing is
executed) and fails on

(a) a code cell whose output has a line that is just ``True`` or ``False``: a
    printed boolean stands in for an assertion and passes whatever it says;
(b) a code cell that prints a ``relative error:`` or ``max abs difference:``
    line but contains no ``assert`` and no call of a checking helper, so that
    the bound the line reports is not enforced in the same cell;
(c) a chapter that does not end with an Exercises section whose solution
    cells are hidden on the page with their outputs (``hide-cell``) and check themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))

BOOLEAN_LINE = re.compile(r"^\s*(True|False)\s*$")
BOUND_LINE = re.compile(r"relative error:|max abs difference:")
# Helpers of bnbackprop that raise when their bound is exceeded.
CHECKING_CALL = re.compile(r"\bassert\b|\b(compare|check_gradient|check_\w+|assert_\w+)\s*\(")


def _output_text(output: dict) -> str:
    """The text a code cell's output shows: stream text or a plain-text result."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    elif output.get("output_type") in {"execute_result", "display_data"}:
        text = output.get("data", {}).get("text/plain", "")
    else:
        return ""
    return "".join(text) if isinstance(text, list) else text


def _cells(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            text = "\n".join(_output_text(output) for output in cell.get("outputs", []))
            yield index, cell.source, text


def boolean_lines(path: Path) -> list[str]:
    """'cell N: line' for every output line of the notebook that is just True or False."""
    return [
        f"cell {index}: {line.strip()!r}"
        for index, _, text in _cells(path)
        for line in text.splitlines()
        if BOOLEAN_LINE.match(line)
    ]


def unchecked_bound_lines(path: Path) -> list[str]:
    """'cell N: line' for every bound line printed by a cell with no assert or check call."""
    return [
        f"cell {index}: {line.strip()!r}"
        for index, source, text in _cells(path)
        if not CHECKING_CALL.search(source)
        for line in text.splitlines()
        if BOUND_LINE.search(line)
    ]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found in {ROOT / 'chapters'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_printed_booleans(path: Path) -> None:
    found = boolean_lines(path)
    assert not found, f"{path.name}: a printed True/False stands in for an assertion:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_printed_bounds_are_asserted(path: Path) -> None:
    found = unchecked_bound_lines(path)
    assert not found, f"{path.name}: bound printed without an assert in the same cell:\n  " + "\n  ".join(found)


def exercise_problems(path: Path) -> list[str]:
    """What is missing from the notebook's closing Exercises section, if anything."""
    cells = nbformat.read(path, as_version=4).cells
    headings = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "## Exercises" in cell.source]
    if not headings:
        return ["no '## Exercises' section"]
    solutions = [(i, cell) for i, cell in enumerate(cells) if i > headings[-1] and cell.cell_type == "code"]
    if not solutions:
        return ["the Exercises section has no solution cell"]
    problems = [f"cell {i}: solution not hidden with its output (hide-cell)" for i, cell in solutions
                if "hide-cell" not in cell.metadata.get("tags", [])]
    problems += [f"cell {i}: solution checks nothing" for i, cell in solutions if not CHECKING_CALL.search(cell.source)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_exercises_whose_hidden_solutions_check_themselves(path: Path) -> None:
    found = exercise_problems(path)
    assert not found, f"{path.name}: " + "; ".join(found)


def _notebook(tmp_path: Path, source: str, printed: str) -> Path:
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_the_scan_can_fail(tmp_path: Path) -> None:
    """The two scans flag what they are meant to flag, and only that."""
    assert boolean_lines(_notebook(tmp_path, "print(x == y)", "True\n")) == ["cell 0: 'True'"]
    assert boolean_lines(_notebook(tmp_path, "print('ok:', x == y)", "ok: False\n")) == []
    printed = "max abs difference: 1e-16\n"
    assert unchecked_bound_lines(_notebook(tmp_path, "print(d)", printed)) == ["cell 0: 'max abs difference: 1e-16'"]
    assert unchecked_bound_lines(_notebook(tmp_path, "print(d)\nassert d < 1e-12", printed)) == []
    assert unchecked_bound_lines(_notebook(tmp_path, "compare('a', a, b, bound=1e-12)", printed)) == []


def test_the_exercise_check_can_fail(tmp_path: Path) -> None:
    """A chapter without exercises, or with a visible or unchecked solution, is flagged."""

    def chapter(*cells) -> Path:
        path = tmp_path / "chapter.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=list(cells)), path)
        return path

    heading = nbformat.v4.new_markdown_cell("## Exercises\n\n1. Show that ...")
    hidden = nbformat.v4.new_code_cell("assert x == 1", metadata={"tags": ["hide-cell"]})
    assert exercise_problems(chapter(nbformat.v4.new_markdown_cell("# A chapter"))) == ["no '## Exercises' section"]
    assert exercise_problems(chapter(heading, hidden)) == []
    visible = nbformat.v4.new_code_cell("assert x == 1")
    assert exercise_problems(chapter(heading, visible)) == ["cell 1: solution not hidden with its output (hide-cell)"]
    unchecked = nbformat.v4.new_code_cell("print(x)", metadata={"tags": ["hide-cell"]})
    half_hidden = nbformat.v4.new_code_cell("assert x == 1", metadata={"tags": ["hide-input"]})
    assert exercise_problems(chapter(heading, half_hidden)) == [
        "cell 1: solution not hidden with its output (hide-cell)"
    ]
    assert exercise_problems(chapter(heading, unchecked)) == ["cell 1: solution checks nothing"]
