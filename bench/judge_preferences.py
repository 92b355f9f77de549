"""How often does the judge pick the picture a painter would pick? The preference sets, scored.

Usage::

    python bench/judge_preferences.py                          # the default judge, both sets
    python bench/judge_preferences.py --set 512 --all          # the 512 px set only, every pair
    python bench/judge_preferences.py --three-views            # the candidate: Magenta, VGG16 Gram, colour, a third each
    python bench/judge_preferences.py --candidates             # every combination of the style parts, and each part alone
    python bench/judge_preferences.py --fairness               # per part: how often it picks each competitor, vs the painter
    python bench/judge_preferences.py --network vgg16_hed      # a single-network judge (version 1's computation)
    python bench/judge_preferences.py --sheet /tmp/misses.png   # then docs/images/judge_disagreements.jpg, at 3/4 size

Two sets of labelled pairs of results of the same photo and painting, each labelled by
looking with the one a painter would prefer and why: ``tests/data/preferences`` (128 px,
Gatys proxies against Magenta and each other; ``make.py`` there) and
``tests/data/preferences512`` (512 px, this product's own outputs: trained networks,
network-proxy trials, Gatys renders and the baseline). The judge prefers, as ``tuner
best`` does: a result within the noise limit over one above it; between two feasible
results (or two infeasible ones), the smaller ``style + content``. The agreement is the
share of pairs where the two agree.

Each picture is scored once with every style part (the default judge with the VGG16 Gram
view reported at weight 0, :meth:`nst.judge.JudgeSpec.with_gram_view`), so the candidates of
``--candidates`` are different combinations of the same numbers.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "preferences"
DATA512 = ROOT / "tests" / "data" / "preferences512"
SETS = {"128": DATA, "512": DATA512}


@dataclass(frozen=True)
class Pair:
    painting: str
    photo: str
    a: str  # variant names: files folder / f"{painting}_{photo}_{variant}{suffix}"
    b: str
    prefer: str  # "a" or "b"
    kind: str  # "proxy vs Magenta", "trained vs baseline", ...
    confidence: str  # "clear" (any painter would agree) or "close" (a preference, not a verdict)
    reason: str
    folder: Path = DATA

    @property
    def set(self) -> str:
        return "512" if self.folder == DATA512 else "128"

    def path(self, variant: str) -> Path:
        return self.folder / f"{self.painting}_{self.photo}_{variant}{'.jpg' if self.set == '512' else '.png'}"


def load_pairs(path: Path = DATA / "labels.csv") -> list[Pair]:
    fields = [f for f in Pair.__dataclass_fields__ if f != "folder"]
    with open(path, newline="") as fh:
        return [Pair(**{k: row[k].strip() for k in fields}, folder=path.parent) for row in csv.DictReader(fh)]


def load_sets(which: str = "all") -> list[Pair]:
    return [p for name, folder in SETS.items() if which in ("all", name) for p in load_pairs(folder / "labels.csv")]


def competitor(variant: str) -> str:
    """What made a picture: ``baseline``, ``network proxy``, ``trained network`` or ``Gatys``."""
    if variant == "magenta":
        return "baseline"
    if variant.startswith("proxy_"):
        return "network proxy"
    if variant == "trained":
        return "trained network"
    return "Gatys"


def score_pictures(pairs: list[Pair], spec=None) -> dict[Path, dict[str, float]]:
    """Every picture of ``pairs`` scored once: style, content, noise and each style part."""
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec

    spec = (spec or JudgeSpec()).with_gram_view()
    judges: dict[tuple[str, str, str], Judge] = {}
    cache: dict[Path, dict[str, float]] = {}
    for p in pairs:
        key = (p.set, p.painting, p.photo)
        for variant in (p.a, p.b):
            path = p.path(variant)
            if path in cache:
                continue
            if key not in judges:
                judges[key] = Judge(spec, load_image(p.path("photo"))[None],
                                    load_image(ROOT / "examples" / f"{p.painting}.jpg"))
            s = judges[key].score(load_image(path)[None])
            cache[path] = {"style": float(s.style[0]), "content": float(s.content[0]), "noise": float(s.noise[0]),
                           **{k: float(v[0]) for k, v in s.parts.items()}}
    return cache


def judge_prefers(sa: dict[str, float], sb: dict[str, float], noise_limit: float) -> str:
    """``"a"`` or ``"b"``: feasibility first, then the smaller style + content (``tuner best``'s rule)."""
    fa, fb = sa["noise"] <= noise_limit, sb["noise"] <= noise_limit
    if fa != fb:
        return "a" if fa else "b"
    return "a" if sa["style"] + sa["content"] <= sb["style"] + sb["content"] else "b"


def judge_pairs(pairs: list[Pair], spec=None, style: Callable[[dict[str, float]], float] | None = None,
                scores: dict[Path, dict[str, float]] | None = None) -> list[dict]:
    """Both sides of every pair scored; ``style`` recombines a picture's parts (default: the judge's own style)."""
    from nst.judge import JudgeSpec

    spec = spec or JudgeSpec()
    scores = scores if scores is not None else score_pictures(pairs, spec)
    if style is None and "style_gram" in next(iter(scores.values()), {}):
        style = recombine(spec.combine, (1 - spec.colour_share - spec.gram_share, spec.gram_share, spec.colour_share))
    out = []
    for p in pairs:
        sa, sb = dict(scores[p.path(p.a)]), dict(scores[p.path(p.b)])
        if style is not None:
            sa["style"], sb["style"] = style(sa), style(sb)
        out.append({"pair": p, "a": sa, "b": sb, "judge": judge_prefers(sa, sb, spec.noise_limit)})
    return out


def agreement(scored: list[dict]) -> float:
    return sum(r["judge"] == r["pair"].prefer for r in scored) / max(1, len(scored))


#: Ways to combine the style parts, for ``--candidates``: ``(combine, (deep, Gram, colour) weights)``
#: as in :class:`nst.judge.JudgeSpec`; fixed before the 512 px set was scored.
CANDIDATES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "mean of the three, 1:1:1 (JudgeSpec.three_views)": ("mean", (1, 1, 1)),
    "median of the three": ("median", (1, 1, 1)),
    "Magenta 2 : Gram 1 : colour 1": ("mean", (2, 1, 1)),
    "Magenta 1 : Gram 1 : colour 2": ("mean", (1, 1, 2)),
    "Magenta 1 : Gram 2 : colour 1": ("mean", (1, 2, 1)),
    "Magenta 2 : colour 1 (version 2, the default)": ("mean", (2, 0, 1)),
    "Magenta 1 : colour 1": ("mean", (1, 0, 1)),
    "Gram 1 : colour 1 (no Magenta)": ("mean", (0, 1, 1)),
    "Magenta alone": ("mean", (1, 0, 0)),
    "Gram alone": ("mean", (0, 1, 0)),
    "colour alone": ("mean", (0, 0, 1)),
}


def recombine(combine: str, weights: tuple[float, float, float]) -> Callable[[dict[str, float]], float]:
    """A picture's style score from its parts, as :meth:`nst.judge.Judge.combine` would give it."""
    names = ("style_deep", "style_gram", "style_colour")

    def style(s: dict[str, float]) -> float:
        if combine == "median":
            return float(np.median([s[n] for n in names]))
        return sum(w * s[n] for n, w in zip(names, weights, strict=True)) / sum(weights)

    return style


def groups(scored: list[dict]) -> dict[str, list[dict]]:
    out = {f"set {s}": [r for r in scored if r["pair"].set == s] for s in SETS}
    out.update({f"kind: {k}": [r for r in scored if r["pair"].kind == k]
                for k in sorted({r["pair"].kind for r in scored}, key=lambda k: (k.startswith("proxy vs M"), k))})
    out.update({f"{c} pairs": [r for r in scored if r["pair"].confidence == c] for c in ("clear", "close")})
    out["all"] = scored
    return {k: v for k, v in out.items() if v}


def fairness(scored: list[dict], part: str) -> list[list]:
    """Per competitor: in pairs against another kind, how often the painter picks it and how often ``part`` does.

    ``part`` alone ranks by its own number (smaller is more painting-like): a part that
    picks a competitor more often than the painter would be giving it an advantage a
    person does not see.
    """
    rows = []
    for kind in ("baseline", "network proxy", "trained network", "Gatys"):
        mine = [r for r in scored if (competitor(r["pair"].a) == kind) != (competitor(r["pair"].b) == kind)]
        if not mine:
            continue
        painter = part_picks = both = 0
        for r in mine:
            p = r["pair"]
            side = "a" if competitor(p.a) == kind else "b"
            other = "b" if side == "a" else "a"
            by_part = side if r[side][part] <= r[other][part] else other
            painter += p.prefer == side
            part_picks += by_part == side
            both += by_part == p.prefer
        n = len(mine)
        rows.append([kind, n, f"{painter / n:.0%}", f"{part_picks / n:.0%}", f"{both / n:.0%}"])
    return rows


def _fmt(s: dict[str, float]) -> str:
    parts = "/".join(f"{s[k]:.2f}" for k in ("style_deep", "style_gram", "style_colour") if k in s)
    return f"{s['style']:.3f}/{s['content']:.3f}/{s['noise']:.2f} ({parts})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("128", "512", "all"), default="all", help="which preference set (default both)")
    ap.add_argument("--network", default="magenta",
                    help="magenta: the default judge; a loss network: a single-network judge on it")
    ap.add_argument("--three-views", action="store_true", help="judge with JudgeSpec.three_views() instead")
    ap.add_argument("--candidates", action="store_true", help="agreement of each way to combine the style parts")
    ap.add_argument("--fairness", action="store_true", help="per style part: how often it picks each competitor")
    ap.add_argument("--sheet", help="write the pairs the judge gets wrong (photo, painter's pick, judge's pick) to this PNG")
    ap.add_argument("--all", action="store_true", help="print every pair, not only the disagreements")
    args = ap.parse_args(argv)

    from bench.common import format_table
    from nst.judge import JudgeSpec

    spec = JudgeSpec.three_views() if args.three_views else JudgeSpec.for_network(args.network)
    pairs = load_sets(args.set)
    scores = score_pictures(pairs, spec)
    scored = judge_pairs(pairs, spec, scores=scores)
    rows, wrong = [], []
    for i, r in enumerate(scored, 1):
        p, ok = r["pair"], r["judge"] == r["pair"].prefer
        if not ok:
            wrong.append(r)
        if args.all or not ok:
            rows.append([i, p.set, p.painting, p.photo, p.kind, p.a, p.b, p.prefer, p.confidence,
                         _fmt(r["a"]), _fmt(r["b"]), "yes" if ok else "NO"])
    print(f"{spec.label} (shares: colour {spec.colour_share:.2f}, Gram {spec.gram_share:.2f}, combine {spec.combine}); "
          "a, b: style/content/noise (style parts: Magenta/Gram/colour)")
    print(format_table(["#", "set", "painting", "photo", "kind", "a", "b", "painter", "confidence",
                        "a", "b", "judge agrees"], rows))
    print()
    print(format_table(["pairs", "count", "judge agrees"],
                       [[k, len(v), f"{agreement(v):.0%} ({sum(r['judge'] == r['pair'].prefer for r in v)})"]
                        for k, v in groups(scored).items()]))
    if args.candidates and "style_gram" in next(iter(scores.values())):
        names = list(groups(scored))
        table = []
        for label, (combine, weights) in CANDIDATES.items():
            g = groups(judge_pairs(pairs, spec, style=recombine(combine, weights), scores=scores))
            table.append([label, *[f"{agreement(g[n]):.0%}" for n in names]])
        print()
        print("style + content, with the style score from the parts as:")
        print(format_table(["style score", *names], table))
    if args.fairness and "style_gram" in next(iter(scores.values())):
        for part, label in (("style_deep", "Magenta view"), ("style_gram", "VGG16 Gram view"),
                            ("style_colour", "colour view"), ("content", "content"), ("style", "style (combined)")):
            print()
            print(f"{label} ({part}) alone, in pairs of a competitor against another kind:")
            print(format_table(["competitor", "pairs", "painter picks it", "part picks it", "part agrees with painter"],
                               fairness(scored, part)))
    if args.sheet and wrong:
        from nst.images import contact_sheet, load_image, save_image

        rows_img = []
        for r in wrong:
            p = r["pair"]
            good, bad = (p.a, p.b) if p.prefer == "a" else (p.b, p.a)
            rows_img.append([load_image(p.path("photo")), load_image(p.path(good)), load_image(p.path(bad))])
        save_image(args.sheet, contact_sheet(rows_img, cell=256))
        print(f"wrote {args.sheet}: one row per disagreement - photo, the painter's pick, the judge's pick")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
