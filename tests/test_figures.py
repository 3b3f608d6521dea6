"""The computation-graph figure is drawn from the library's steps."""

import matplotlib

matplotlib.use("Agg")

from bnbackprop import figures, stepwise


def test_edges_are_the_steps_inputs():
    edges = figures.graph_edges()
    assert len(edges) == sum(len(step.inputs) for step in stepwise.make_steps(1e-5)) == 13
    assert ("xmu", "xhat", 7) in edges and ("xmu", "sq", 3) in edges and ("X", "mu", 1) in edges
    assert all(source in figures.LAYOUT and target in figures.LAYOUT for source, target, _ in edges)


def test_backward_order_is_reverse_topological():
    """Every value is visited only after every value computed from it."""
    order = figures.backward_order()
    assert order["out"] == 1 and order["X"] == max(order.values()) == 10
    for source, target, _ in figures.graph_edges():
        if source in order:
            assert order[source] > order[target], (source, target)


def test_figure_draws_a_box_per_value():
    fig = figures.computation_graph()
    labels = {text.get_text() for text in fig.axes[0].texts}
    assert {"X", "μ", "xmu", "sq", "var", "sqrtvar", "ivar", "xhat", "gammax", "out", "γ", "β"} <= labels
    assert {str(k) for k in range(1, 11)} <= labels


def test_use_book_style_sets_the_rc_parameters():
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    try:
        mpl.rcParams["font.size"] = 7.0
        figures.use_book_style()
        assert mpl.rcParams["font.size"] == figures.BOOK_STYLE["font.size"]
        assert tuple(mpl.rcParams["figure.figsize"]) == figures.BOOK_STYLE["figure.figsize"]
    finally:
        mpl.rcParams.update(before)
