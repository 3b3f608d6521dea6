"""Execute chapter notebooks in place and keep their diffs readable.

    python tools/run_notebook.py chapters/NAME.ipynb [...]

Runs each notebook top to bottom on the current environment's ``python3``
kernel (the same one `make test` uses under nbval), then strips the per-cell
``execution`` timing metadata and anything else that changes on every run, so
that a re-run changes only the outputs that really changed. Cell ids are kept
(they are stable). Execution counts are kept (numbered 1, 2, ... by the run): nbval does not compare them, and
they make the committed notebook look like a clean top-to-bottom run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KEEP_CELL_METADATA = ("tags", "mystnb")
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def normalise(nb: nbformat.NotebookNode) -> None:
    """Drop run-to-run noise from the notebook and cell metadata."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_METADATA}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    normalise(nb)
    nbformat.write(nb, path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[1:]:
        print(f"executing {name}", flush=True)
        run(Path(name))
