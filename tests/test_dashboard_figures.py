"""dashboard.figures: each chart shows what its frame says (checked on the traces, no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import data, figures


def _trials() -> pd.DataFrame:
    rows = [
        # number, state, style, content, network, style_weight, init
        (0, "COMPLETE", 0.2, 0.8, "vgg16_hed", 1e-1, "content"),
        (1, "COMPLETE", 0.5, 0.5, "vgg16_hed", 1e-2, "content"),
        (2, "COMPLETE", 0.6, 0.6, "tiny", 1e-3, "mixed"),  # dominated by 1
        (3, "COMPLETE", 0.9, 0.1, "tiny", 1e-4, "mixed"),
        (4, "PRUNED", np.nan, np.nan, None, 1e-2, "content"),
        (5, "FAIL", np.nan, np.nan, None, 1.0, "mixed"),
    ]
    df = pd.DataFrame(rows, columns=["number", "state", "style", "content", "network", "param:style_weight", "param:init"])
    df["noise"] = [0.1, 0.2, 0.3, 0.05, np.nan, np.nan]
    df["feasible"] = True
    df["pareto"] = [True, True, False, True, False, False]  # every finished trial but 2
    for col in ("content_layer", "style_weight", "tv_weight", "style_scale"):
        df[col] = {"content_layer": "block4_conv2"}.get(col, 1.0)
    return df


def _trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


def test_pareto_figure_points_front_and_chosen():
    fig = figures.pareto_figure(_trials(), chosen=2)
    front, rest = _trace(fig, "Pareto front"), _trace(fig, "dominated")
    assert sorted(int(c[0]) for c in front.customdata) == [0, 1, 3]
    assert [int(c[0]) for c in rest.customdata] == [2]
    chosen = _trace(fig, "chosen (#2)")
    assert chosen.marker.symbol == "star" and list(chosen.x) == [0.6]
    # The staircase: starts at the best-style point and ends at the best-content point.
    line = _trace(fig, "front line")
    assert (line.x[0], line.y[0]) == (0.2, 0.8) and (line.x[-1], line.y[-1]) == (0.9, 0.1)
    assert all(np.diff(line.x) >= 0) and all(np.diff(line.y) <= 0)
    assert "trial 1" in front.hovertext[1]


def test_pareto_figure_sets_noisy_trials_apart():
    df = _trials()
    df.loc[df["number"] == 0, ["feasible", "pareto"]] = [False, False]
    fig = figures.pareto_figure(df)
    noisy = _trace(fig, "too noisy (infeasible)")
    assert [int(c[0]) for c in noisy.customdata] == [0] and noisy.marker.symbol == "x"
    assert 0 not in [int(c[0]) for c in _trace(fig, "dominated").customdata]
    assert fig.layout.xaxis.title.text == "style score" and fig.layout.clickmode == "event+select"


def test_pareto_figure_without_finished_trials_says_so():
    df = _trials()
    fig = figures.pareto_figure(df[df["state"] != "COMPLETE"])
    assert not fig.data and "no finished trial" in fig.layout.annotations[0].text


def test_history_figure_best_so_far_lines():
    fig = figures.history_figure(data.history_frame(_trials()))
    assert list(_trace(fig, "style score").x) == [0, 1, 2, 3]
    assert list(_trace(fig, "best style").y) == [0.2, 0.2, 0.2, 0.2]
    assert list(_trace(fig, "best content").y) == [0.8, 0.5, 0.5, 0.1]
    assert list(_trace(fig, "best style + content").y) == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert "no finished" in figures.history_figure(pd.DataFrame()).layout.annotations[0].text


def test_importance_figure_orders_params():
    imp = pd.DataFrame({"param": ["a", "b", "a", "b"], "objective": ["style", "style", "content", "content"],
                        "importance": [0.9, 0.1, 0.7, 0.3]})
    fig = figures.importance_figure(imp)
    assert [t.name for t in fig.data] == ["style score", "content score"]
    assert list(fig.data[0].y) == ["b", "a"]  # most important on top (last in a horizontal bar chart)
    assert list(fig.data[0].x) == [0.1, 0.9]
    empty = figures.importance_figure(pd.DataFrame(columns=["param", "objective", "importance"]), "needs 3 trials")
    assert "needs 3 trials" in empty.layout.annotations[0].text


def test_parallel_figure_log_and_categorical_axes():
    fig = figures.parallel_figure(_trials())
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert "log10 style_weight" in dims, "weights spanning 1e-4..1e-1 belong on a log axis"
    assert list(dims["log10 style_weight"].values) == pytest.approx([-1, -2, -3, -4])
    assert list(dims["init"].ticktext) == ["content", "mixed"] and list(dims["init"].values) == [0, 0, 1, 1]
    assert {"style score", "content score", "noise score"} <= set(dims)
    assert list(fig.data[0].line.color) == pytest.approx([1.0, 1.0, 1.2, 1.0])
    linear = figures.parallel_figure(_trials(), log_params={"style_weight": False})
    assert "style_weight" in {d.label for d in linear.data[0].dimensions}


def test_loss_and_training_figures():
    fig = figures.loss_curve_figure([100.0, 10.0, float("nan"), 1.0])
    assert list(fig.data[0].y) == [100.0, 10.0, 1.0] and fig.layout.yaxis.type == "log"
    assert "no loss curve" in figures.loss_curve_figure([]).layout.annotations[0].text
    metrics = pd.DataFrame({"step": [0, 10, 20], "loss": [5.0, 2.0, 1.0], "style": [4.0, 1.5, 0.6],
                            "images_per_s": [np.nan, 3.0, 3.1]})
    fig = figures.training_figure(metrics, ["loss", "style"])
    assert [t.name for t in fig.data] == ["loss", "style"] and fig.layout.yaxis.type == "log"
    steps = np.arange(1, 101)
    noisy = pd.DataFrame({"step": steps, "loss": 10 + np.where(steps % 2, 1.0, -1.0)})
    smooth = figures.training_figure(noisy, ["loss"], smooth=10)
    raw, trend = smooth.data
    assert raw.opacity == 0.25 and not raw.showlegend and trend.name == "loss"
    assert np.ptp(np.asarray(trend.y)[10:-10]) < 0.25 < np.ptp(np.asarray(raw.y)), "the rolling mean removes the zig-zag"
    neg = figures.training_figure(pd.DataFrame({"step": [0, 1], "delta": [-1.0, 1.0]}))
    assert neg.layout.yaxis.type == "linear"
    assert "no metrics" in figures.training_figure(pd.DataFrame()).layout.annotations[0].text


def test_scores_figure_groups_trained_and_gatys():
    fig = figures.scores_figure({"trained": {"style": 0.4, "content": 0.3}, "gatys": {"style": 0.35, "content": 0.2}})
    assert [t.name for t in fig.data] == ["trained", "gatys"]
    assert list(fig.data[0].x) == ["style", "content"] and list(fig.data[1].y) == [0.35, 0.2]


def test_pareto_figure_draws_the_baseline_as_a_reference_point_that_opens_nothing():
    df = _trials()
    plain = figures.pareto_figure(df)
    assert not any("off-the-shelf" in (t.name or "") for t in plain.data) and not plain.layout.shapes
    fig = figures.pareto_figure(df, baseline={"style": 0.55, "content": 0.55, "noise": 0.3}, baseline_note="2 beat it")
    base = [t for t in fig.data if "off-the-shelf" in (t.name or "")]
    assert len(base) == 1
    assert list(base[0].x) == [0.55] and list(base[0].y) == [0.55]
    assert base[0].customdata is None  # a click on it must not open a trial
    assert "2 beat it" in base[0].hovertext[0]
    # The shaded region (better on both scores) reaches from the origin to the baseline.
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.y0, shape.x1, shape.y1) == (0.0, 0.0, 0.55, 0.55)
    # Every trial is still clickable, as before.
    numbers = sorted(int(n) for t in fig.data if t.customdata is not None for n in np.asarray(t.customdata).ravel())
    assert numbers == [0, 1, 2, 3]
