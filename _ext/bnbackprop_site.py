"""The book's own Sphinx plumbing for the website.

Sphinx extension (loaded through ``sphinx.local_extensions`` in _config.yml). It

- writes the API reference (chapters/api.md) from the package itself: the line
  ``% bnbackprop-api-reference`` of that page is replaced by a table of every
  public function and class of every module of ``bnbackprop`` (with the first
  line of its docstring, each linked to its entry), followed by one section per
  module (``automodule``), headed by the module's name without the package's
  (automodule shows its docstring). A new module appears with no line to add;
- packs the project's source into the site, as ``bnbackprop-source.tar.gz`` at
  the root of the HTML output (what ``git archive HEAD`` gives; outside a git
  checkout, the files of the tree minus build outputs and caches), so that a
  reader of the website can download the whole book and run it;
- offers each chapter's executed notebook (chapters/NAME.ipynb) in the page's
  download menu, beside its text source (chapters/NAME.md).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

API_DOCNAME = "chapters/api"
API_MARKER = "% bnbackprop-api-reference"
PACKAGE = "bnbackprop"
ARCHIVE_NAME = "bnbackprop-source.tar.gz"
ARCHIVE_PREFIX = "bnbackprop/"
# Not packed when the tree is archived without git: build outputs and caches.
ARCHIVE_SKIP = {
    ".git", ".venv", "_build", ".jupyter_cache", ".pytest_cache", ".ruff_cache",
    "__pycache__", ".ipynb_checkpoints", ".hypothesis",
}


# ---- API reference -----------------------------------------------------------


def _first_line(obj) -> str:
    """The first sentence-paragraph of a docstring, as one line of MyST text."""
    doc = inspect.getdoc(obj) or ""
    line = " ".join(doc.split("\n\n")[0].split())
    line = re.sub(r":math:`([^`]+)`", r"{math}`\1`", line)  # RST math -> MyST math
    line = re.sub(r":(?!math:)\w+:`~?([^`]+)`", r"`\1`", line)  # other RST roles -> code
    line = re.sub(r"``([^`]+)``", r"`\1`", line)  # RST literals -> code
    return line.replace("|", "\\|").replace("$", "\\$")


def _modules() -> list:
    package = importlib.import_module(PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))
    return [importlib.import_module(f"{PACKAGE}.{name}") for name in names]


def _members(module) -> list[tuple[str, object]]:
    """The public functions and classes that automodule documents, in source order."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
        ]
    members = [(name, getattr(module, name)) for name in names]
    members = [(name, value) for name, value in members if inspect.isfunction(value) or inspect.isclass(value)]

    def line(item):
        try:
            return inspect.getsourcelines(item[1])[1]
        except (OSError, TypeError):
            return 0

    return sorted(members, key=line)


def api_reference() -> str:
    """MyST text: the summary table, then one automodule section per module."""
    rows = ["| Function or class | What it does |", "| --- | --- |"]
    sections = []
    for module in _modules():
        short = module.__name__.removeprefix(f"{PACKAGE}.")
        # A row naming the module, then one row per function or class.
        rows.append(f"| **{{mod}}`{module.__name__} <{module.__name__}>`** | {_first_line(module)} |")
        for name, value in _members(module):
            role = "class" if inspect.isclass(value) else "func"
            rows.append(f"| {{{role}}}`{name} <{module.__name__}.{name}>` | {_first_line(value)} |")
        sections += [
            f"## `{short}`",
            "",
            "```{eval-rst}",
            f".. automodule:: {module.__name__}",
            "   :members:",
            "   :undoc-members:",
            "```",
            "",
        ]
    # The container's class lets the style sheet stack the table on a phone.
    table = ["::::{container} bnbackprop-api-summary", *rows, "::::"]
    return "\n".join(["## Every function and class", "", *table, "", *sections])


def _source_read(app, docname: str, source: list[str]) -> None:
    if docname == API_DOCNAME and API_MARKER in source[0]:
        source[0] = source[0].replace(API_MARKER, api_reference())


# ---- The source archive --------------------------------------------------------


def _git_archive(root: Path, target: Path) -> bool:
    """``git archive HEAD`` into target; False when root is not a git checkout with a commit."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return False
    if inside.returncode != 0:
        return False
    subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar.gz", f"--prefix={ARCHIVE_PREFIX}", "-o", str(target), "HEAD"],
        check=True,
    )
    return True


def _tree_archive(root: Path, target: Path) -> None:
    """The tree's files, minus build outputs and caches (for a copy without .git)."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        return None if ARCHIVE_SKIP.intersection(parts) or info.name.endswith(".egg-info") else info

    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(root.iterdir()):
            if path.name in ARCHIVE_SKIP:
                continue
            archive.add(path, arcname=ARCHIVE_PREFIX + path.name, filter=keep)


def write_source_archive(root: Path, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    target = outdir / ARCHIVE_NAME
    if not _git_archive(root, target):
        _tree_archive(root, target)
    return target


def _builder_inited(app) -> None:
    # Written before the pages, so that the landing page's link to it resolves
    # as soon as the site exists.
    if app.builder.format == "html":
        write_source_archive(Path(app.confdir), Path(app.outdir))


# ---- The notebook of each chapter, for download ------------------------------------


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Put chapters/NAME.ipynb (the executed notebook paired with NAME.md) in the
    page's download menu. sphinx-book-theme copies a text notebook's .ipynb only
    when a launch button (Binder, Colab, ...) is configured, and the book has none."""
    if app.builder.format != "html" or context.get("ipynb_source"):
        return
    notebook = Path(app.srcdir, pagename).with_suffix(".ipynb")
    if not notebook.is_file() or not Path(app.srcdir, pagename).with_suffix(".md").is_file():
        return
    target = Path(app.outdir, "_sources", pagename).with_suffix(".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def _always_reread_api(app, env, added, changed, removed) -> list[str]:
    # The page's text comes from the package's docstrings, which Sphinx does not
    # track: read it again on every build.
    return [API_DOCNAME] if API_DOCNAME in env.found_docs else []


def setup(app):
    app.connect("source-read", _source_read)
    app.connect("env-get-outdated", _always_reread_api)
    app.connect("builder-inited", _builder_inited)
    # Before sphinx-book-theme's header buttons (priority 501) are made.
    app.connect("html-page-context", _offer_notebook, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
