"""The fidelity bench's arithmetic, apart from training and judging (``bench/fidelity.py`` runs those).

Which trials to take along a study's Pareto front (:func:`nondominated_layers`,
:func:`spread_along_front`), one row of results (:class:`Row`), Spearman's rho
(:func:`spearman`), the summary over the rows (:func:`summarise`), the Markdown table
(:func:`format_report`), and two runs' networks against each other (:func:`compare_runs`).
No TensorFlow and no study here: the functions take plain numbers.

    python -m bench.fidelity_stats OUT_A/fidelity.json OUT_B/fidelity.json

prints how closely the networks of two bench runs agree (the same study and recipe with
another ``--seed``: the same losses trained on another draw of crops). Their Spearman
rho is the most the proxy-against-network rho can be expected to reach: ranks the
training's own randomness reshuffles cannot be predicted by any proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# -- picking trials ----------------------------------------------------------------------------


def nondominated_layers(points: dict[int, tuple[float, float]]) -> list[list[int]]:
    """Trial numbers in successive Pareto layers (both objectives minimised); each layer sorted by the first."""
    left = dict(points)
    layers = []
    while left:
        front = [n for n, (a, b) in left.items()
                 if not any(a2 <= a and b2 <= b and (a2, b2) != (a, b) for m, (a2, b2) in left.items() if m != n)]
        front.sort(key=lambda n: (left[n][0], left[n][1], n))
        layers.append(front)
        for n in front:
            del left[n]
    return layers


def spread_along_front(points: dict[int, tuple[float, float]], k: int) -> list[int]:
    """``k`` trials spread along the front: its ends and evenly spaced ones between, topped up from later layers."""
    picked: list[int] = []
    for layer in nondominated_layers(points):
        need = k - len(picked)
        if need <= 0:
            break
        if len(layer) <= need:
            picked += layer
        else:
            idx = sorted({round(i * (len(layer) - 1) / (need - 1)) for i in range(need)}) if need > 1 else [0]
            picked += [layer[i] for i in idx]
    return picked


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their average rank); NaN with fewer than 3 pairs."""
    if len(a) < 3:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


# -- rows and their summary ---------------------------------------------------------------------


@dataclass
class Row:
    label: str
    config: Any  # StyleConfig
    proxy_images: list[np.ndarray] | None = None
    proxy: dict[str, float] = field(default_factory=dict)
    network_images: list[np.ndarray] | None = None
    network: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0


def summarise(rows: Sequence[Row]) -> dict[str, float]:
    """Spearman's rho over the trials per score, the largest |difference|, and how many rows are within 0.10."""
    out: dict[str, float] = {}
    for k in ("style", "content"):
        proxy = [r.proxy[k] for r in rows]
        net = [r.network[k] for r in rows]
        out[f"rho_{k}"] = spearman(proxy, net)
        out[f"max_abs_diff_{k}"] = max((abs(a - b) for a, b in zip(net, proxy, strict=True)), default=float("nan"))
    out["within_0.10"] = sum(all(abs(r.network[k] - r.proxy[k]) <= 0.10 for k in ("style", "content")) for r in rows)
    out["rows"] = len(rows)
    return out


def format_report(rows: Sequence[Row], references, summary: dict[str, float], settings: dict[str, Any]) -> str:
    from bench.common import format_table

    head = ["row", "proxy style", "net style", "Δ style", "proxy content", "net content", "Δ content",
            "proxy noise", "net noise", "steps", "min"]
    body = []
    for r in rows:
        body.append([r.label, *(f"{v:.3f}" for v in (r.proxy["style"], r.network["style"], r.network["style"] - r.proxy["style"],
                                                      r.proxy["content"], r.network["content"],
                                                      r.network["content"] - r.proxy["content"], r.proxy["noise"],
                                                      r.network["noise"])), r.steps, f"{r.seconds / 60:.1f}"])
    for label, scores, _ in references:
        body.append([f"*{label}*", "", f"{scores['style']:.3f}", "", "", f"{scores['content']:.3f}", "", "",
                     f"{scores['noise']:.3f}", "", ""])
    recipe = ", ".join(f"{k} {v}" for k, v in settings.items())
    lines = [f"recipe: {recipe}", format_table(head, body),
             (f"Spearman rho over {int(summary['rows'])} rows: style {summary['rho_style']:.2f}, content "
              f"{summary['rho_content']:.2f}" if int(summary["rows"]) >= 3 else
              f"Spearman rho: needs 3 rows or more, {int(summary['rows'])} here")
             + f"; largest |Δ|: style {summary['max_abs_diff_style']:.3f}, content "
             f"{summary['max_abs_diff_content']:.3f}; within ±0.10 on both: {int(summary['within_0.10'])} of "
             f"{int(summary['rows'])}"]
    return "\n\n".join(lines)


# -- two runs against each other ------------------------------------------------------------


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Rho and the largest |difference| between the networks of two ``fidelity.json`` results, row by row (same labels)."""
    rows_a = {r["label"]: r["network"] for r in a["rows"]}
    rows_b = {r["label"]: r["network"] for r in b["rows"]}
    labels = [label for label in rows_a if label in rows_b]
    if len(labels) != len(rows_a) or len(labels) != len(rows_b):
        raise ValueError(f"the runs have different rows: {sorted(rows_a)} against {sorted(rows_b)}")
    out: dict[str, float] = {"rows": len(labels)}
    for k in ("style", "content"):
        x, y = [rows_a[label][k] for label in labels], [rows_b[label][k] for label in labels]
        out[f"rho_{k}"] = spearman(x, y)
        out[f"max_abs_diff_{k}"] = max(abs(p - q) for p, q in zip(x, y, strict=True))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.fidelity_stats",
                                     description="Two fidelity bench runs' networks against each other.")
    parser.add_argument("first", help="a fidelity.json written by bench/fidelity.py")
    parser.add_argument("second", help="another, with the same rows (e.g. the same run with another --seed)")
    args = parser.parse_args(argv)
    try:
        with open(args.first, encoding="utf-8") as fa, open(args.second, encoding="utf-8") as fb:
            a, b = json.load(fa), json.load(fb)
        c = compare_runs(a, b)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"python -m bench.fidelity_stats: {exc}; give two fidelity.json files of the same study") from None
    print(f"networks of {args.first} (seed {a['settings'].get('seed', 0)}) against {args.second} "
          f"(seed {b['settings'].get('seed', 0)}), {int(c['rows'])} rows: Spearman rho style {c['rho_style']:.2f}, "
          f"content {c['rho_content']:.2f}; largest |Δ| style {c['max_abs_diff_style']:.3f}, content "
          f"{c['max_abs_diff_content']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
