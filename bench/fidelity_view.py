"""Fidelity at the view size: does the trained network give, at 512 and 1024 px, the picture the gallery showed?

A network-proxy study stores every trial's pictures at its view size (512 px by default,
painted by the tuned proxy network as ``trainer stylize`` paints). :mod:`bench.fidelity`
trains a network per trial; this part paints the study's view-size test photos with that
network at 512 px and at 1024 px (the view photo enlarged, so both sides see the same
picture) through :func:`nst.viewsize.paint_at_scale`, the painting ``trainer stylize``
does, and compares them with the gallery's picture:

* judge scores on a common view (long side ``view``, default 256 px: every picture is
  shrunk to it, and the judge is bound to the photos at that size), so the three columns
  differ only in what they paint, not in their size;
* the stroke wavelength of each picture (:func:`nst.strokes.stroke_wavelength`, a share
  of the picture's long side), the number that tells "the same look, bigger" from "a
  finer texture".

Targets (DESIGN.md, "Fidelity"): network within +-0.10 of the gallery's picture on style
and content at both sizes, and the same ranking of trials (Spearman's rho >= 0.8). A
contact sheet, one row per trial and test photo: gallery (view size) | network 512 |
network 1024, a 1:1 crop of the centre.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

SCORES = ("style", "content", "noise")
SIZES = (512, 1024)


@dataclass
class ViewRow:
    label: str
    gallery: list[np.ndarray]  # the trial's stored view-size pictures
    network: dict[int, list[np.ndarray]] = field(default_factory=dict)  # size -> pictures
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # "gallery" | "512" | "1024" -> means
    strokes: dict[str, float] = field(default_factory=dict)  # same keys -> mean stroke wavelength


def paint_sizes(paint: Callable[[np.ndarray], np.ndarray], photos: Sequence[np.ndarray], work_side: int,
                sizes: Sequence[int] = SIZES) -> dict[int, list[np.ndarray]]:
    """Each photo painted by ``paint`` at every size in ``sizes`` (long side), as ``trainer stylize`` paints it."""
    from nst.images import resize_longest
    from nst.viewsize import paint_at_scale

    return {size: [paint_at_scale(paint, resize_longest(p, size), work_side) for p in photos] for size in sizes}


def judge_row(row: ViewRow, judge, view: int) -> None:
    """Fill ``row.scores`` and ``row.strokes``: every picture shrunk to ``view`` and judged (``judge`` is bound to the photos there)."""
    from nst.images import resize_longest
    from nst.strokes import stroke_wavelength

    columns = {"gallery": row.gallery, **{str(s): imgs for s, imgs in row.network.items()}}
    for key, images in columns.items():
        small = np.stack([resize_longest(img, view) for img in images]).astype(np.float32)
        row.scores[key] = {k: float(v) for k, v in judge.score(small).means().items() if k in SCORES}
        # The picture's own stroke wavelength (not the edges it adds over the photo: an enlarged
        # painting adds none above the photo's fine detail, which leaves that measure undefined).
        row.strokes[key] = float(np.mean([stroke_wavelength(img) for img in images]))


def summarise_view(rows: Sequence[ViewRow], sizes: Sequence[int] = SIZES) -> dict[str, float]:
    """Per size: Spearman's rho (gallery against network) per score, the largest |difference|, rows within 0.10."""
    from bench.fidelity_stats import spearman

    out: dict[str, float] = {}
    for size in sizes:
        key = str(size)
        within = 0
        for r in rows:
            within += all(abs(r.scores[key][k] - r.scores["gallery"][k]) <= 0.10 for k in ("style", "content"))
        out[f"{size} within"] = within
        for k in ("style", "content"):
            gallery = [r.scores["gallery"][k] for r in rows]
            net = [r.scores[key][k] for r in rows]
            out[f"{size} rho {k}"] = spearman(gallery, net)
            out[f"{size} max |d {k}|"] = max((abs(a - b) for a, b in zip(gallery, net, strict=True)), default=0.0)
    out["rows"] = len(rows)
    return out


def format_view_report(rows: Sequence[ViewRow], summary: dict[str, float], view: int,
                       sizes: Sequence[int] = SIZES) -> str:
    from bench.common import format_table

    head = ["row", "gallery style / content", *[f"net {s} style / content" for s in sizes],
            *[f"Δ {s} style / content" for s in sizes], "stroke λ gallery", *[f"λ {s}" for s in sizes]]
    body = []
    for r in rows:
        g = r.scores["gallery"]
        cells = [r.label, f"{g['style']:.3f} / {g['content']:.3f}"]
        cells += [f"{r.scores[str(s)]['style']:.3f} / {r.scores[str(s)]['content']:.3f}" for s in sizes]
        cells += [f"{r.scores[str(s)]['style'] - g['style']:+.3f} / {r.scores[str(s)]['content'] - g['content']:+.3f}"
                  for s in sizes]
        cells += [f"{r.strokes['gallery']:.3f}", *[f"{r.strokes[str(s)]:.3f}" for s in sizes]]
        body.append(cells)
    lines = [f"View size: judged on a common {view} px view; stroke λ as a share of the long side", "",
             format_table(head, body), ""]
    for s in sizes:
        lines.append(f"{s} px: {int(summary[f'{s} within'])} of {int(summary['rows'])} rows within ±0.10; "
                     f"Spearman rho style {summary[f'{s} rho style']:.2f}, content {summary[f'{s} rho content']:.2f}")
    return "\n".join(lines)


def view_sheet(rows: Sequence[ViewRow], cell: int = 256) -> np.ndarray:
    """gallery | network 512 | network 1024 (a centre crop at 1:1), one row per trial and photo."""
    from nst.images import contact_sheet

    def crop(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        side = min(h, w, 512)
        top, left = (h - side) // 2, (w - side) // 2
        return img[top:top + side, left:left + side]

    sheet_rows = []
    for r in rows:
        for j, gallery in enumerate(r.gallery):
            sheet_rows.append([gallery, r.network[512][j], crop(r.network[1024][j])])
    return contact_sheet(sheet_rows, cell=cell)
