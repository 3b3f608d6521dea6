"""Root pytest configuration: applies to the chapter notebooks that nbval collects.

nbval compares every output of a re-executed notebook with the committed one, but skips
``image/png`` (rendered pixels are not part of what a chapter asserts). Figures shown
through myst-nb's ``glue`` are stored under ``application/papermill.record/image/png``,
which nbval does not know to skip: a figure of rounding-level values (or a different
FreeType build) would fail the comparison although every number the chapter asserts
agrees. They are skipped the same way; the browser test checks the figures on the page.
"""

from __future__ import annotations

GLUED_IMAGES = (
    "application/papermill.record/image/png",
    "application/papermill.record/image/jpeg",
    "application/papermill.record/image/svg+xml",
)


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        parent = getattr(item, "parent", None)
        skip = getattr(parent, "skip_compare", None)
        if skip is not None and not set(GLUED_IMAGES) <= set(skip):
            parent.skip_compare = tuple(skip) + GLUED_IMAGES
