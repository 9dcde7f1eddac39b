"""Figure helpers: log-axis tick labels are plain, few and never overlap."""

import pytest

from overparam.report.figures import figure, tick_label, tidy_log_ticks


def test_tick_label():
    assert [tick_label(v) for v in (2e-5, 1e-4, 0.002, 0.05, 20, 300, 1e5, 2e6)] == [
        "$2\\times10^{-5}$", "0.0001", "0.002", "0.05", "20", "300", "100,000",
        "$2\\times10^{6}$"]
    assert tick_label(0) == "" and tick_label(float("nan")) == ""


def _labels(ax, axis):
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks = (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    ticks += [t for t in ((ax.xaxis if axis == "x" else ax.yaxis).get_minorticklabels())]
    shown = [t for t in ticks if t.get_text() and t.get_visible()]
    pos = [t.get_position()[0 if axis == "x" else 1] for t in shown]
    inside = [t for t, p in zip(shown, pos) if lo <= p <= hi]
    return inside, [t.get_window_extent(renderer) for t in inside]


@pytest.mark.parametrize("lims", [(15, 90), (3e-4, 0.06), (1, 1e6), (0.02, 0.9)])
def test_log_ticks_do_not_overlap(lims):
    import matplotlib.pyplot as plt

    fig, ax = figure(4.0, 3.0)
    ax.plot(lims, lims)
    ax.set_xscale("log")
    ax.set_yscale("log")
    tidy_log_ticks(ax)
    for axis in "xy":
        labels, boxes = _labels(ax, axis)
        assert len(labels) >= 2, (lims, axis, [t.get_text() for t in labels])
        for a, b in zip(boxes, boxes[1:]):
            assert not a.overlaps(b), (lims, axis, [t.get_text() for t in labels])
    plt.close(fig)


def test_untidy_matplotlib_default_overlaps_here():
    """The check above can fail: matplotlib's own labels on 0.6 decades, on a narrow axis."""
    import matplotlib.pyplot as plt

    fig, ax = figure(2.0, 2.0)
    ax.plot((15, 90), (15, 90))
    ax.set_xscale("log")
    labels, boxes = _labels(ax, "x")
    assert any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    plt.close(fig)
