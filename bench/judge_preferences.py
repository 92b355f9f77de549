"""How often does the judge pick the picture a painter would pick? The preference set, scored.

Usage::

    python bench/judge_preferences.py                              # the default judge (Magenta style network)
    python bench/judge_preferences.py --network vgg16_hed          # the version-1 judge's style network, for comparison
    python bench/judge_preferences.py --sheet docs/images/judge_disagreements.png

``tests/data/preferences/labels.csv`` lists pairs of 128 px results of the same photo and
painting (made by ``tests/data/preferences/make.py``), each labelled by looking with the one
a painter would prefer and why. The judge prefers, as ``tuner best`` does: a result within
the noise limit over one above it; between two feasible results (or two infeasible ones),
the smaller ``style + content``. The agreement is the share of pairs where the two agree.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "preferences"


@dataclass(frozen=True)
class Pair:
    painting: str
    photo: str
    a: str  # variant names: files DATA / f"{painting}_{photo}_{variant}.png"
    b: str
    prefer: str  # "a" or "b"
    kind: str  # "proxy vs Magenta", "proxy vs proxy", "TV weight", "loss network", ...
    confidence: str  # "clear" (any painter would agree) or "close" (a preference, not a verdict)
    reason: str

    def path(self, variant: str) -> Path:
        return DATA / f"{self.painting}_{self.photo}_{variant}.png"


def load_pairs(path: Path = DATA / "labels.csv") -> list[Pair]:
    with open(path, newline="") as fh:
        return [Pair(**{k: row[k].strip() for k in Pair.__dataclass_fields__}) for row in csv.DictReader(fh)]


def judge_pairs(pairs: list[Pair], spec=None) -> list[dict]:
    """Score both sides of every pair with ``spec`` (default: the current default judge)."""
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec

    spec = spec or JudgeSpec()
    judges: dict[tuple[str, str], Judge] = {}
    cache: dict[Path, dict[str, float]] = {}

    def score(pair: Pair, variant: str) -> dict[str, float]:
        path = pair.path(variant)
        if path not in cache:
            key = (pair.painting, pair.photo)
            if key not in judges:
                photo = load_image(pair.path("photo"))
                judges[key] = Judge(spec, photo[None], load_image(ROOT / "examples" / f"{pair.painting}.jpg"))
            s = judges[key].score(load_image(path)[None])
            cache[path] = {"style": float(s.style[0]), "content": float(s.content[0]), "noise": float(s.noise[0])}
        return cache[path]

    out = []
    for p in pairs:
        sa, sb = score(p, p.a), score(p, p.b)
        out.append({"pair": p, "a": sa, "b": sb, "judge": judge_prefers(sa, sb, spec.noise_limit)})
    return out


def judge_prefers(sa: dict[str, float], sb: dict[str, float], noise_limit: float) -> str:
    """``"a"`` or ``"b"``: feasibility first, then the smaller style + content (``tuner best``'s rule)."""
    fa, fb = sa["noise"] <= noise_limit, sb["noise"] <= noise_limit
    if fa != fb:
        return "a" if fa else "b"
    return "a" if sa["style"] + sa["content"] <= sb["style"] + sb["content"] else "b"


def agreement(scored: list[dict]) -> float:
    return sum(r["judge"] == r["pair"].prefer for r in scored) / max(1, len(scored))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="magenta", help="the judge's style network (default magenta)")
    ap.add_argument("--sheet", help="write the pairs the judge gets wrong (painter's pick left) to this PNG")
    ap.add_argument("--all", action="store_true", help="print every pair, not only the disagreements")
    args = ap.parse_args(argv)

    from bench.common import format_table
    from nst.judge import JudgeSpec

    pairs = load_pairs()
    scored = judge_pairs(pairs, JudgeSpec.for_network(args.network))
    rows, wrong = [], []
    for i, r in enumerate(scored, 1):
        p, ok = r["pair"], r["judge"] == r["pair"].prefer
        if not ok:
            wrong.append(r)
        if args.all or not ok:
            rows.append([i, p.painting, p.photo, p.kind, p.a, p.b, p.prefer,
                         "{style:.3f}/{content:.3f}/{noise:.2f}".format(**r["a"]),
                         "{style:.3f}/{content:.3f}/{noise:.2f}".format(**r["b"]), "yes" if ok else "NO"])
    print(format_table(["#", "painting", "photo", "kind", "a", "b", "painter", "a: style/content/noise",
                        "b: style/content/noise", "judge agrees"], rows))
    groups = {f"kind: {k}": [r for r in scored if r["pair"].kind == k] for k in sorted({r["pair"].kind for r in scored})}
    groups.update({f"{c} pairs": [r for r in scored if r["pair"].confidence == c] for c in ("clear", "close")})
    groups.update({f"painting: {k}": [r for r in scored if r["pair"].painting == k]
                   for k in sorted({r["pair"].painting for r in scored})})
    groups["all"] = scored
    print()
    print(format_table(["pairs", "count", "judge agrees"],
                       [[k, len(v), f"{agreement(v):.0%}"] for k, v in groups.items() if v]))
    if args.sheet and wrong:
        from nst.images import contact_sheet, load_image, save_image

        rows_img = []
        for r in wrong:
            p = r["pair"]
            good, bad = (p.a, p.b) if p.prefer == "a" else (p.b, p.a)
            rows_img.append([load_image(p.path("photo")), load_image(p.path(good)), load_image(p.path(bad))])
        save_image(args.sheet, contact_sheet(rows_img, cell=128))
        print(f"wrote {args.sheet}: one row per disagreement - photo, the painter's pick, the judge's pick")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
