"""Figures drawn from the library's own objects, so that a picture cannot drift from the code.

:func:`computation_graph` draws the nine-step graph of :mod:`bnbackprop.stepwise`: one box
per value, one arrow per input of a step (read from :func:`bnbackprop.stepwise.make_steps`),
and, in each box that the backward pass visits, the order of that visit.
"""

from __future__ import annotations

from bnbackprop import stepwise

# Where each value sits (column, row): the mean branch above, the variance branch below.
LAYOUT = {
    "X": (0.0, 1.0),
    "mu": (1.0, 2.0),
    "xmu": (2.0, 1.0),
    "sq": (3.0, 0.0),
    "var": (4.0, 0.0),
    "sqrtvar": (5.0, 0.0),
    "ivar": (6.0, 0.0),
    "xhat": (7.0, 1.0),
    "gamma": (7.7, 2.2),
    "gammax": (8.5, 1.0),
    "beta": (9.2, 2.2),
    "out": (10.0, 1.0),
}


def graph_edges(eps: float = 1e-5) -> list[tuple[str, str, int]]:
    """``(input, output, step number)`` for every arrow of the graph, from the library's steps."""
    return [(name, step.output, step.number) for step in stepwise.make_steps(eps) for name in step.inputs]


def backward_order(eps: float = 1e-5) -> dict[str, int]:
    """The order in which the backward pass reaches each computed value (``out`` first).

    :func:`bnbackprop.stepwise.backward_steps` runs the steps in reverse, so the output of
    step k is visited in position 10 − k; ``X`` is finished last.
    """
    steps = stepwise.make_steps(eps)
    order = {step.output: position for position, step in enumerate(reversed(steps), start=1)}
    order["X"] = len(steps) + 1
    return order


def computation_graph(ax=None):
    """Draw the graph on ``ax`` (a new figure if None) and return the figure.

    Forward arrows are labelled with their step number; the circled number in a box is the
    position in which the backward pass visits that value.
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(10.5, 3.6))
    else:
        fig = ax.figure
    order = backward_order()
    for source, target, number in graph_edges():
        (x0, y0), (x1, y1) = LAYOUT[source], LAYOUT[target]
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0),
            arrowprops={"arrowstyle": "-|>", "color": "0.35", "shrinkA": 20, "shrinkB": 20, "lw": 1.2},
        )
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, str(number), fontsize=8, color="0.35", ha="center")
    for name, (x, y) in LAYOUT.items():
        parameter = name in ("gamma", "beta")
        ax.text(
            x, y, {"gamma": "γ", "beta": "β", "mu": "μ"}.get(name, name), ha="center", va="center", fontsize=10,
            bbox={"boxstyle": "round,pad=0.35", "fc": "#fff4d6" if parameter else "#e8f0fb", "ec": "0.3"},
        )
        if name in order:
            ax.text(x + 0.32, y + 0.3, str(order[name]), ha="center", va="center", fontsize=8, color="white",
                    bbox={"boxstyle": "circle,pad=0.2", "fc": "#c0392b", "ec": "none"})
    ax.set_xlim(-0.6, 10.6)
    ax.set_ylim(-0.6, 2.7)
    ax.set_axis_off()
    ax.set_title("forward steps 1–9 on the arrows; red: order of the backward visit", fontsize=10)
    return fig


#: The Matplotlib settings of the book's figures (fonts sized for a 757 px column and still
#: legible when the column narrows to a phone's 390 px, white plates that stay readable in
#: dark mode); PNG at twice the column's pixel width comes from :func:`use_book_style`.
BOOK_STYLE = {
    "figure.figsize": (7.5, 4.2),
    "figure.dpi": 100,
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 11,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "lines.linewidth": 1.8,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
}


def use_book_style() -> None:
    """Apply ``BOOK_STYLE`` and, inside IPython, render inline figures at 2× (retina PNG).

    A chapter calls this once after its imports; figures are then shown with myst-nb's
    ``glue`` and a ``{glue:figure}`` directive, which gives them a number, a caption and
    alt text.
    """
    import matplotlib as mpl

    mpl.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is optional for the library
        return
    shell = get_ipython()
    if shell is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
