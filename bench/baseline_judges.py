"""Does the default judge favour the off-the-shelf baseline? Its style score under two judges, beside a Gatys render.

Usage::

    python bench/baseline_judges.py                                   # monet and wave, 3 photos at 128 px
    python bench/baseline_judges.py --styles examples/starry_night.jpg --size 128 --steps 50

The default judge (``magenta``) measures style as a distance between style vectors of
Magenta's style-prediction network, and the baseline (:func:`tuner.baseline.compute_baseline`)
is Magenta's transformer steered by the painting's vector in that same space. A judge on
another network (``vgg16_hed``: sliced Wasserstein distances of its features) has no such
tie. The reference is a Gatys render with the default StyleConfig on the same photos, the
kind of result a study's trials are: if the baseline's style score relative to the
render's is much better under ``magenta`` than under ``vgg16_hed``, the default judge
favours the baseline by construction. Content scores need no network (SSIM structure),
so they agree between the judges and are printed once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/baseline_judges.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, machine_summary  # noqa: E402
from nst.cliutil import OneLineParser, int_in, run_main  # noqa: E402


def _bench(args: argparse.Namespace) -> int:
    import numpy as np

    from nst import arbitrary
    from nst.config import StyleConfig
    from nst.gatys import stylize as gatys
    from nst.images import bundled_photos, center_crop_square, load_image
    from nst.judge import Judge, JudgeSpec

    photos = np.stack([center_crop_square(load_image(p), args.size) for p in list(bundled_photos().values())[:3]])
    judges = {"magenta": JudgeSpec(), "vgg16_hed": JudgeSpec.for_network("vgg16_hed")}
    print(machine_summary())
    print(f"photos: {len(photos)} bundled at {args.size} px; Gatys: default StyleConfig, {args.steps} L-BFGS steps")
    rows = []
    for style in args.styles:
        painting = load_image(style)
        vector = arbitrary.style_vector(painting)
        pictures = {
            "baseline (Magenta)": np.stack([arbitrary.stylize(p, vector) for p in photos]),
            "Gatys default": gatys(photos, painting, StyleConfig(), steps=args.steps).images,
        }
        scores = {name: {j: Judge(spec, photos, painting).score(imgs).means() for j, spec in judges.items()}
                  for name, imgs in pictures.items()}
        for name in pictures:
            s = scores[name]
            rows.append([Path(style).stem, name, f"{s['magenta']['style']:.3f}", f"{s['vgg16_hed']['style']:.3f}",
                         f"{s['magenta']['content']:.3f}"])
        gap = {j: scores["baseline (Magenta)"][j]["style"] - scores["Gatys default"][j]["style"] for j in judges}
        rows.append([Path(style).stem, "baseline - Gatys", f"{gap['magenta']:+.3f}", f"{gap['vgg16_hed']:+.3f}", ""])
    print(format_table(["painting", "picture", "style (magenta judge)", "style (vgg16_hed judge)", "content"], rows))
    print("style and content: 0 ideal, 1 no better than the unchanged photo; a more negative 'baseline - Gatys' "
          "under magenta than under vgg16_hed means the default judge favours the baseline")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="baseline_judges", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="+", default=["examples/monet.jpg", "examples/wave.jpg"], help="paintings")
    parser.add_argument("--size", type=int_in(64, 512, "--size"), default=128, help="proxy size (default 128)")
    parser.add_argument("--steps", type=int_in(5, 1000, "--steps"), default=50, help="Gatys steps (default 50)")
    parser.set_defaults(func=_bench)
    return run_main("baseline_judges", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
