"""Small helpers for the notebook generators in this folder."""

from __future__ import annotations

import textwrap

import nbformat


def md(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(source).strip("\n"))


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write(cells: list, path: str, ids: str) -> None:
    """Write a notebook with stable cell ids (``ids`` + running number)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for number, cell in enumerate(cells):
        cell["id"] = f"{ids}-{number:02d}"
    nb.cells = cells
    nbformat.write(nb, path)
