"""Execute chapters from their text sources and keep the pair in sync.

    python tools/run_notebook.py chapters/NAME.md [...]      # or chapters/NAME.ipynb
    python tools/run_notebook.py --sync chapters/NAME.md     # re-pair without executing

Every chapter notebook has one text source, ``chapters/NAME.md`` (a MyST Markdown
notebook, paired with ``chapters/NAME.ipynb`` by jupytext). Edit the ``.md``; then this
script reads it, runs it top to bottom on the current environment's ``python3`` kernel
(the one `make test` uses under nbval), and writes

- ``chapters/NAME.ipynb`` with the outputs (what nbval compares on every `make test`),
  with run-to-run noise stripped (timing metadata) and cell ids kept stable: a cell
  whose source is unchanged keeps its id; a new cell gets an id derived from its source;
- ``chapters/NAME.md`` rewritten in jupytext's canonical form, so that the two files
  hold the same cells (tests/test_pairing.py fails otherwise).

``--sync`` does the same without executing: the outputs of unchanged cells are kept,
those of changed cells dropped (run it again without ``--sync`` before committing).
Given a ``.ipynb`` path, the ``.md`` beside it is the source all the same.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import jupytext
import nbformat

KEEP_CELL_METADATA = ("tags", "mystnb")
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "jupytext")
PAIRED_FORMATS = "ipynb,md:myst"


def normalise(nb: nbformat.NotebookNode) -> None:
    """Drop run-to-run noise from the notebook and cell metadata."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_METADATA}
    nb.metadata.setdefault("jupytext", {})["formats"] = PAIRED_FORMATS
    for key in ("text_representation",):
        nb.metadata["jupytext"].pop(key, None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}


def _key(cell) -> tuple[str, str]:
    return cell.cell_type, cell.source.strip()


def adopt_ids_and_outputs(nb: nbformat.NotebookNode, previous: nbformat.NotebookNode | None, stem: str) -> None:
    """Keep ids (and, for --sync, outputs) of cells whose source did not change."""
    old = {}
    if previous is not None:
        for cell in previous.cells:
            old.setdefault(_key(cell), []).append(cell)
    used: set[str] = set()
    for cell in nb.cells:
        cell["id"] = None
        match = old.get(_key(cell))
        if match:
            before = match.pop(0)
            cell["id"] = before.get("id")
            if cell.cell_type == "code":
                cell["outputs"] = before.get("outputs", [])
                cell["execution_count"] = before.get("execution_count")
        if not cell.get("id") or cell["id"] in used:
            digest = hashlib.sha1(cell.source.encode()).hexdigest()[:8]
            candidate, n = f"{stem[:20]}-{digest}", 0
            while candidate in used:
                n += 1
                candidate = f"{stem[:20]}-{digest}-{n}"
            cell["id"] = candidate
        used.add(cell["id"])


def run(path: Path, execute: bool = True) -> None:
    md_path, ipynb_path = path.with_suffix(".md"), path.with_suffix(".ipynb")
    if not md_path.exists():
        sys.exit(f"{md_path} does not exist: the .md is the chapter's source (see README, 'Editing a chapter')")
    if "jupytext:" not in md_path.read_text(encoding="utf-8")[:400]:
        sys.exit(f"{md_path} is a plain page, not a notebook: it has no jupytext header")
    nb = jupytext.read(md_path, fmt="md:myst")
    previous = nbformat.read(ipynb_path, as_version=4) if ipynb_path.exists() else None
    nb.nbformat, nb.nbformat_minor = 4, 5
    adopt_ids_and_outputs(nb, previous, md_path.stem)
    if execute:
        from nbclient import NotebookClient

        os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        client = NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(md_path.parent)}}
        )
        client.execute()
    normalise(nb)
    nbformat.write(nb, ipynb_path)
    jupytext.write(nb, md_path, fmt="md:myst")


if __name__ == "__main__":
    args = sys.argv[1:]
    execute = "--sync" not in args
    names = [a for a in args if a != "--sync"]
    if not names:
        sys.exit(__doc__)
    for name in names:
        print(("executing " if execute else "syncing ") + name, flush=True)
        run(Path(name), execute=execute)
