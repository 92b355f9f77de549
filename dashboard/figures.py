"""DataFrame → Plotly figure, one function per chart; no Streamlit, no storage access.

Every figure takes the frames built in :mod:`dashboard.data` and returns a
``plotly.graph_objects.Figure``, so the charts are unit-tested by inspecting their
traces, and ``app.py`` only places them. Scores are "lower is better" (0 = ideal), so
every score axis reads the same way: down and left is good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: One colour per trial state, readable on light and dark themes.
STATE_COLOURS = {"COMPLETE": "#4C78A8", "PRUNED": "#B0B0B0", "FAIL": "#E45756", "RUNNING": "#F2A93B", "WAITING": "#9D755D"}
FRONT_COLOUR = "#E4572E"
CHOSEN_COLOUR = "#2E9E44"
BASELINE_COLOUR = "#333333"
SCORE_COLOURS = {"style": "#4C78A8", "content": "#E4572E", "noise": "#72B7B2", "sum": "#54A24B"}

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "legend": {"orientation": "h", "y": -0.18}}


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 14})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **_LAYOUT)
    return fig


def _hover_text(df: pd.DataFrame) -> list[str]:
    def fmt(v) -> str:
        return f"{v:.3g}" if isinstance(v, (int, float)) and not math.isnan(v) else "–"

    return [
        f"<b>trial {int(r.number)}</b><br>style {fmt(r.style)} · content {fmt(r.content)} · noise {fmt(r.noise)}"
        f"<br>{r.network or ''} · content {r.content_layer or ''}"
        f"<br>style weight {fmt(r.style_weight)} · TV {fmt(r.tv_weight)} · scale {fmt(r.style_scale)}"
        for r in df.itertuples()
    ]


def pareto_figure(df: pd.DataFrame, x: str = "style", y: str = "content", chosen: int | None = None,
                  baseline: Mapping[str, float] | None = None, baseline_note: str = "") -> go.Figure:
    """Finished trials as points (style score vs content score); the Pareto front drawn as a staircase.

    ``customdata`` of every point is ``[trial number]``, which is what a click (Streamlit's
    selection event) and the hover preview read back. ``baseline`` (the off-the-shelf
    model's judge scores, ``{"style", "content", ...}``) is drawn as a reference point with
    no ``customdata`` (a click on it opens nothing), and the region that beats it on both
    scores is shaded, so a glance shows which trials do better than Magenta's network.
    """
    done = df[(df["state"] == "COMPLETE") & df[x].notna() & df[y].notna()]
    title = f"Pareto front: {x} vs {y} score (lower is better)"
    if done.empty:
        return _empty(title, "no finished trial yet")
    fig = go.Figure()
    feasible = done["feasible"] if "feasible" in done else pd.Series(True, index=done.index)
    noisy = done[~feasible.astype(bool)]
    rest = done[~done["pareto"] & feasible.astype(bool)]
    front = done[done["pareto"]].sort_values([x, y])
    if not front.empty:
        # Staircase through the front: everything up-right of it is dominated.
        sx, sy = [], []
        for i, r in enumerate(front.itertuples()):
            if i:
                sx.append(getattr(r, x))
                sy.append(sy[-1])
            sx.append(getattr(r, x))
            sy.append(getattr(r, y))
        fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", line={"color": FRONT_COLOUR, "width": 1.5, "dash": "dot"},
                                 hoverinfo="skip", showlegend=False, name="front line"))
    for part, name, colour, size, symbol in ((noisy, "too noisy (infeasible)", "#B0B0B0", 9, "x"),
                                             (rest, "dominated", STATE_COLOURS["COMPLETE"], 10, "circle"),
                                             (front, "Pareto front", FRONT_COLOUR, 13, "circle")):
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode="markers", name=name,
            marker={"color": colour, "size": size, "symbol": symbol, "line": {"color": "white", "width": 1},
                    "opacity": 0.9},
            customdata=part[["number"]].to_numpy(), hovertext=_hover_text(part), hoverinfo="text",
        ))
    if chosen is not None and chosen in set(done["number"]):
        c = done[done["number"] == chosen]
        fig.add_trace(go.Scatter(
            x=c[x], y=c[y], mode="markers", name=f"chosen (#{chosen})",
            marker={"symbol": "star", "size": 22, "color": CHOSEN_COLOUR, "line": {"color": "white", "width": 1}},
            customdata=c[["number"]].to_numpy(), hovertext=_hover_text(c), hoverinfo="text",
        ))
    if baseline is not None and _is_finite(baseline.get(x)) and _is_finite(baseline.get(y)):
        bx, by = float(baseline[x]), float(baseline[y])
        lo_x, lo_y = min(0.0, float(done[x].min())), min(0.0, float(done[y].min()))
        fig.add_shape(type="rect", x0=lo_x, y0=lo_y, x1=bx, y1=by, layer="below", line={"width": 0},
                      fillcolor="rgba(84, 162, 75, 0.10)")
        noise = baseline.get("noise")
        fig.add_trace(go.Scatter(
            x=[bx], y=[by], mode="markers+text", name="off-the-shelf (Magenta, no training)",
            marker={"symbol": "diamond", "size": 16, "color": BASELINE_COLOUR, "line": {"color": "white", "width": 1.5}},
            text=["off-the-shelf"], textposition="top right", textfont={"color": BASELINE_COLOUR},
            hovertext=[f"<b>off-the-shelf baseline</b><br>Magenta's arbitrary network, no training"
                       f"<br>style {bx:.3g} · content {by:.3g}" + (f" · noise {float(noise):.3g}" if _is_finite(noise) else "")
                       + (f"<br>{baseline_note}" if baseline_note else "") + "<br>shaded: better on both scores"],
            hoverinfo="text",
        ))
    fig.update_layout(title=title, xaxis_title=f"{x} score", yaxis_title=f"{y} score", hovermode="closest",
                      clickmode="event+select", dragmode="pan", **_LAYOUT)
    return fig


def _is_finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def history_figure(history: pd.DataFrame) -> go.Figure:
    """Each finished trial's scores in order, with the best so far as a step line."""
    title = "Optimisation history"
    if history.empty:
        return _empty(title, "no finished trial yet")
    fig = go.Figure()
    for col in ("style", "content"):
        fig.add_trace(go.Scatter(x=history["number"], y=history[col], mode="markers", name=f"{col} score",
                                 marker={"color": SCORE_COLOURS[col], "size": 7, "opacity": 0.6}))
    for col in ("style", "content", "sum"):
        label = "best style + content" if col == "sum" else f"best {col}"
        fig.add_trace(go.Scatter(x=history["number"], y=history[f"best_{col}"], mode="lines", name=label,
                                 line={"color": SCORE_COLOURS[col], "shape": "hv", "width": 2,
                                       "dash": "solid" if col == "sum" else "dot"}))
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title="judge score (lower is better)", **_LAYOUT)
    return fig


def importance_figure(importance: pd.DataFrame, note: str = "") -> go.Figure:
    """Horizontal bars: how much each search parameter explains each score's variation."""
    title = "Parameter importance"
    if importance.empty:
        return _empty(title, note or "nothing to rank yet")
    order = importance.groupby("param")["importance"].mean().sort_values().index.tolist()
    fig = go.Figure()
    for obj, part in importance.groupby("objective", sort=False):
        part = part.set_index("param").reindex(order)
        fig.add_trace(go.Bar(y=order, x=part["importance"], orientation="h", name=f"{obj} score",
                             marker_color=SCORE_COLOURS.get(str(obj))))
    fig.update_layout(title=title, barmode="group", xaxis_title="importance (normalised)",
                      height=max(300, 70 + 45 * len(order)), **_LAYOUT)
    return fig


def parallel_figure(df: pd.DataFrame, params: Sequence[str] | None = None,
                    log_params: Mapping[str, bool] | None = None) -> go.Figure:
    """Parallel coordinates of the search parameters and the scores, coloured by style + content.

    Categorical parameters become evenly spaced ticks with their labels; parameters
    listed in ``log_params`` (or positive values spanning more than two decades) are
    drawn on a log10 axis so one huge weight does not squash the rest.
    """
    title = "Parallel coordinates"
    done = df[(df["state"] == "COMPLETE") & df["style"].notna()]
    if params is None:
        params = [c for c in df.columns if c.startswith("param:")]
    if done.empty:
        return _empty(title, "no finished trial yet")
    log_params = dict(log_params or {})
    dims = []
    for col in params:
        values = done[col]
        label = col.removeprefix("param:")
        if values.isna().all():
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum() and not values.map(lambda v: isinstance(v, (bool, str))).any():
            positive = numeric[numeric > 0]
            use_log = log_params.get(label)
            if use_log is None:
                use_log = bool(len(positive) == numeric.notna().sum() and len(positive) > 1
                               and positive.max() / positive.min() > 100)
            if use_log:
                dims.append({"label": f"log10 {label}", "values": np.log10(numeric.where(numeric > 0))})
            else:
                dims.append({"label": label, "values": numeric})
        else:
            cats = sorted({str(v) for v in values.dropna()})
            index = {c: i for i, c in enumerate(cats)}
            dims.append({"label": label, "values": values.map(lambda v, index=index: index.get(str(v), np.nan)),
                         "tickvals": list(range(len(cats))), "ticktext": cats,
                         "range": [-0.5, len(cats) - 0.5] if len(cats) > 1 else [-1, 1]})
    total = done["style"] + done["content"]
    for col in ("style", "content", "noise"):
        if done[col].notna().any():
            dims.append({"label": f"{col} score", "values": done[col]})
    fig = go.Figure(go.Parcoords(
        line={"color": total, "colorscale": "Viridis_r", "showscale": True,
              "colorbar": {"title": {"text": "style+content"}}},
        dimensions=dims,
    ))
    fig.update_layout(title=title, margin={"l": 60, "r": 60, "t": 110, "b": 30})
    return fig


def loss_curve_figure(curve: Sequence[float], title: str = "Loss during the proxy run") -> go.Figure:
    """One trial's total loss per optimiser step, log scale (it falls by orders of magnitude)."""
    values = [v for v in curve if v is not None and math.isfinite(v)]
    if not values:
        return _empty(title, "no loss curve recorded")
    fig = go.Figure(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines", name="loss",
                               line={"color": SCORE_COLOURS["style"]}))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss",
                      yaxis_type="log" if min(values) > 0 else "linear", showlegend=False, **_LAYOUT)
    fig.update_layout(height=300)
    return fig


def training_figure(metrics: pd.DataFrame, columns: Sequence[str] | None = None, smooth: int = 1) -> go.Figure:
    """Training loss terms per step, one colour each; log axis when every value is positive.

    Per-step losses of a feed-forward network are noisy (every step sees another batch),
    so with ``smooth > 1`` each term is drawn faintly as recorded and boldly as a centred
    rolling mean over ``smooth`` steps.
    """
    title = "Training losses"
    if metrics.empty or "step" not in metrics:
        return _empty(title, "no metrics written yet")
    if columns is None:
        columns = [c for c in metrics.columns if c != "step" and metrics[c].notna().any()]
    palette = ["#4C78A8", "#E4572E", "#54A24B", "#B279A2", "#F2A93B", "#72B7B2", "#9D755D", "#FF9DA6"]
    fig = go.Figure()
    for i, col in enumerate(columns):
        part = metrics[["step", col]].dropna()
        colour = SCORE_COLOURS.get(col) or ("#222222" if col in ("loss", "total") else palette[i % len(palette)])
        width = 2.5 if col in ("loss", "total") else 1.5
        if smooth > 1 and len(part) > smooth:
            fig.add_trace(go.Scatter(x=part["step"], y=part[col], mode="lines", name=f"{col} (raw)", showlegend=False,
                                     line={"color": colour, "width": 1}, opacity=0.25, hoverinfo="skip"))
            trend = part[col].rolling(smooth, center=True, min_periods=1).mean()
            fig.add_trace(go.Scatter(x=part["step"], y=trend, mode="lines", name=col, line={"color": colour, "width": width}))
        else:
            fig.add_trace(go.Scatter(x=part["step"], y=part[col], mode="lines", name=col, line={"color": colour, "width": width}))
    positive = all((metrics[c].dropna() > 0).all() for c in columns)
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss (log)" if positive else "loss",
                      yaxis_type="log" if positive else "linear", **_LAYOUT)
    return fig


def scores_figure(scores: Mapping[str, Mapping[str, float]], title: str = "Judge scores (lower is better)") -> go.Figure:
    """Grouped bars comparing judge scores of several results (e.g. trained network vs its Gatys trial)."""
    if not scores:
        return _empty(title, "no scores yet")
    names = [k for k in ("style", "content", "noise") if any(k in v for v in scores.values())]
    fig = go.Figure()
    palette = ["#4C78A8", "#E4572E", "#54A24B", "#B279A2"]
    for i, (who, vals) in enumerate(scores.items()):
        fig.add_trace(go.Bar(x=names, y=[vals.get(n) for n in names], name=who, marker_color=palette[i % len(palette)],
                             text=[f"{vals[n]:.3f}" if n in vals else "" for n in names], textposition="outside"))
    fig.update_layout(title=title, barmode="group", yaxis_title="score", height=320, **_LAYOUT)
    return fig
