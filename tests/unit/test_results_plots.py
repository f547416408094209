"""Readable figures (avtrust.results.plots): fixed colours, n/a vs 0, Wilson error bars,
labels that do not overlap, training curves by method family and scale."""

from __future__ import annotations

import json

import pytest
from test_eval_metrics_db import two_model_db

from avtrust.evaluate.metrics import wilson
from avtrust.results import plots


@pytest.fixture
def con(tmp_path):
    con = two_model_db(tmp_path, "zs", "tuned", "cavpref")
    yield con
    con.close()


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, in order."""
    saved = []
    original = plots._save

    def keep(fig, path):
        saved.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def _bars(ax):
    return [p for p in ax.patches if p.get_height() and p.get_hatch() is None]


def test_one_colour_per_model_in_every_plot(con, figures, tmp_path):
    palette = plots.colours(con)
    assert palette["cavpref"] == palette["tuned"]  # a method takes its model's colour
    assert len({palette["zs"], palette["tuned"]}) == 2
    assert plots.model_colours(["b", "a"])["a"] == plots.model_colours(["a", "b", "c"])["a"]
    plots.task_bars(con, tmp_path / "t.png")
    plots.yes_rate(con, tmp_path / "y.png", paper={})
    bars_ax, yes_ax = figures[0].axes[0], figures[1].axes[0]
    # zs has MAT 100 %, tuned MAT 50 %: each bar in its model's colour
    by_height = {round(p.get_height()): p.get_facecolor() for p in _bars(bars_ax)}
    assert by_height[100] == pytest.approx(palette["zs"])
    assert by_height[50] == pytest.approx(palette["tuned"])
    yes = {tuple(p.get_facecolor()) for p in _bars(yes_ax) if round(p.get_height()) == 25}
    assert yes == {tuple(palette["zs"]), tuple(palette["tuned"])}


def test_missing_is_not_zero_and_error_bars_are_wilson(con, figures, tmp_path):
    plots.task_bars(con, tmp_path / "t.png")
    ax = figures[0].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "n/a" in texts  # ICIT… were not evaluated
    assert "0" in texts  # the loglik MCIT accuracy is a real 0
    stubs = [p for p in ax.patches if p.get_hatch()]
    assert stubs and all(p.get_height() < 10 for p in stubs)
    spans = sorted(
        tuple(round(y, 3) for y in (seg[0][1], seg[1][1]))
        for c in ax.collections
        for seg in c.get_segments()
    )
    lo, hi = wilson(3, 4)  # MCIT 3 of 4 right
    assert (round(100 * lo, 3), round(100 * hi, 3)) in spans


def test_labels_do_not_overlap(con, figures, tmp_path):
    plots.yes_rate(con, tmp_path / "y.png")  # ours and the shipped paper rows
    fig = figures[0]
    ax = fig.axes[0]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    assert len(boxes) >= 4
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "paper (as printed)" in labels and "unparsed replies (no answer)" in labels


def test_where_widening_cannot_make_room_only_the_crowded_panels_get_smaller_labels(
    monkeypatch,
):
    plt = plots._pyplot()
    fig, (crowded, roomy) = plt.subplots(1, 2, figsize=(6, 3))
    crowded.set_xticks(range(40), [f"a long tick label {i}" for i in range(40)])
    roomy.set_xticks(range(3), ["a", "b", "c"])
    size = roomy.get_xticklabels()[0].get_fontsize()
    widened = []
    monkeypatch.setattr(fig, "set_size_inches", lambda *a: widened.append(a))  # no room
    plots._x_labels_fit(fig, [crowded, roomy])
    assert len(widened) == 4  # it tried
    assert crowded.get_xticklabels()[0].get_fontsize() == 5
    assert roomy.get_xticklabels()[0].get_fontsize() == size > 5
    plt.close(fig)


def _log(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_training_curves_by_family_scale_and_integer_steps(tmp_path, figures):
    logs = {}
    for method, scale in [("sft", 2.0), ("dpo", 0.7), ("grpo_acc", 0.002), ("rlcomm_ansco", 1.8)]:
        rows = [{"step": s, "loss": scale * (1 - s / 20), "learning_rate": 1e-5}
                for s in (1, 3, 5)]  # fmt: skip
        logs[method] = _log(tmp_path / f"{method}.jsonl", rows)
    panels = plots.curve_panels(logs)
    assert [(f, k, sorted(s)) for f, k, s in panels] == [
        ("CAVPref and baselines", "loss", ["dpo", "sft"]),
        # a GRPO loss 1000x smaller than Ans-CO's: separate axes
        ("RL-CoMM stages and baselines", "loss", ["grpo_acc"]),
        ("RL-CoMM stages and baselines", "loss", ["rlcomm_ansco"]),
    ]
    plots.training_curves(logs, tmp_path / "c.png", {"sft": (0.1, 0.2, 0.3, 1.0)})
    fig = figures[0]
    axes = [a for a in fig.get_axes() if a.lines]
    assert len(axes) == 3
    for ax in axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
    colour = {line.get_label(): line.get_color() for ax in axes for line in ax.lines}
    assert colour["sft"] == (0.1, 0.2, 0.3, 1.0)  # the palette's colour is kept
    assert len(set(map(tuple, colour.values()))) == 4
    titles = [sf._suptitle.get_text() for sf in fig.subfigs]
    assert titles == ["CAVPref and baselines", "RL-CoMM stages and baselines"]
