"""Every chapter notebook has one text source, and the two hold the same cells.

``chapters/NAME.md`` (MyST Markdown, jupytext) is what a person edits;
``chapters/NAME.ipynb`` keeps the executed outputs that nbval compares. This test
fails when a notebook has no text source, when a text source is not paired with
its notebook, or when a cell's type, source or tags differ between the two — that
is, when someone edited one file and did not run ``tools/run_notebook.py``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("*.ipynb"))


def _is_notebook_source(path: Path) -> bool:
    head = path.read_text(encoding="utf-8")[:400]
    return head.startswith("---\n") and "jupytext:" in head


TEXT_SOURCES = sorted(p for p in CHAPTERS.glob("*.md") if _is_notebook_source(p))


def _cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())))
        for cell in notebook.cells
    ]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_text_source(path):
    source = path.with_suffix(".md")
    assert source.exists(), f"{path.name} has no text source {source.name}"
    assert _is_notebook_source(source), f"{source.name} is not a jupytext MyST notebook"


@pytest.mark.parametrize("path", TEXT_SOURCES, ids=lambda p: p.name)
def test_text_source_has_its_notebook(path):
    assert path.with_suffix(".ipynb").exists(), f"{path.name} has no executed notebook beside it"
    formats = jupytext.read(path).metadata.get("jupytext", {}).get("formats", "")
    assert formats == "ipynb,md:myst", f"{path.name}: jupytext formats {formats!r}, want 'ipynb,md:myst'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_holds_the_same_cells(path):
    text = _cells(jupytext.read(path.with_suffix(".md")))
    executed = _cells(nbformat.read(path, as_version=4))
    assert len(text) == len(executed), (
        f"{path.stem}: {len(text)} cells in the .md, {len(executed)} in the .ipynb; "
        f"run tools/run_notebook.py {path.with_suffix('.md').relative_to(ROOT)}"
    )
    for number, (a, b) in enumerate(zip(text, executed, strict=True)):
        assert a == b, (
            f"{path.stem}, cell {number}: the .md and the .ipynb differ; "
            f"run tools/run_notebook.py {path.with_suffix('.md').relative_to(ROOT)}\n"
            f".md:   {a!r:.300}\n.ipynb: {b!r:.300}"
        )


def test_the_pairing_check_can_fail(tmp_path):
    """The comparison above sees a one-character edit."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("Text.")]
    edited = jupytext.reads(jupytext.writes(nb, fmt="md:myst").replace("x = 1", "x = 2"), fmt="md:myst")
    assert _cells(edited) != _cells(nb)
    assert _cells(jupytext.reads(jupytext.writes(nb, fmt="md:myst"), fmt="md:myst")) == _cells(nb)
