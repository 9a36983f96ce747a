"""Figure helpers draw what they are given."""

import numpy as np

from mamba_edu import plots, scan


def test_work_depth_draws_each_method_and_the_reference_lines():
    sizes = [2, 4, 8, 16]
    work = {m: [scan.work_depth(m, n)[0] for n in sizes] for m in ("sequential", "blelloch")}
    depth = {m: [scan.work_depth(m, n)[1] for n in sizes] for m in ("sequential", "blelloch")}
    fig = plots.work_depth(sizes, work, depth, title="t")
    ax_w, ax_d = fig.axes
    labels = [line.get_label() for line in ax_w.lines]
    assert labels == ["sequential", "blelloch", "n", "n·log₂ n"]
    np.testing.assert_array_equal(ax_w.lines[1].get_ydata(), [2, 6, 14, 30])
    np.testing.assert_array_equal(ax_d.lines[1].get_ydata(), [2, 4, 6, 8])
    np.testing.assert_allclose(ax_d.lines[-1].get_ydata(), np.log2(sizes))
    # a method keeps its colour in both panels
    assert ax_w.lines[1].get_color() == ax_d.lines[1].get_color()
