"""What the judge's numbers mean: reference pictures and a few recipes, scored.

Usage::

    python bench/judge_calibration.py                        # examples/monet.jpg, 3 photos, 128 px, recipes too
    python bench/judge_calibration.py --no-recipes           # the reference pictures only (seconds)
    python bench/judge_calibration.py --network vgg16_hed    # the same table with the version-1 style network
    python bench/judge_calibration.py --fairness             # does Magenta's result sit on its own style vector?

Rows: the photos themselves (style 1 and content 0 by construction), the painting cropped to
each photo (content 1 by construction), a flat picture of each photo's mean colour, the
photos with Gaussian pixel noise (sigma 0.08), Magenta's arbitrary stylisation (the
baseline, ``nst.arbitrary``), and Gatys proxy runs (50 L-BFGS steps) of the published
recipes mapped onto ``vgg16_hed`` plus one strong-style setting without TV. Means over the
photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_test_photo_args, format_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_test_photo_args(ap, str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--network", default="magenta", help="the judge's style network (default magenta)")
    ap.add_argument("--no-recipes", action="store_true", help="skip the Gatys runs")
    ap.add_argument("--fairness", action="store_true",
                    help="instead: style-vector distances of painting crops, Magenta's results and the photos")
    args = ap.parse_args(argv)
    if args.fairness:
        return fairness(args.photos, args.size)

    import numpy as np

    from nst import arbitrary
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec
    from tuner.study import content_paths, load_photos

    photos = np.stack([p.image for p in load_photos(content_paths(None, args.photos), args.size)])
    painting = load_image(args.style)
    judge = Judge(JudgeSpec.for_network(args.network), photos, painting)
    print(f"judge: {judge.spec.label}; painting {Path(args.style).name}; {args.photos} photos at {args.size} px")
    rng = np.random.default_rng(0)
    vector = arbitrary.style_vector(painting)
    pictures = {
        "the photos themselves": photos,
        "the painting, cropped to each photo": np.stack([judge.frame] * len(photos)),
        "a flat image (each photo's mean colour)": np.ones_like(photos) * photos.mean(axis=(1, 2), keepdims=True),
        "the photos + Gaussian noise (sigma 0.08)": np.clip(photos + rng.normal(0, 0.08, photos.shape), 0, 1),
        "Magenta's arbitrary stylisation (the baseline)": np.stack([arbitrary.stylize(p, vector) for p in photos]),
    }
    if not args.no_recipes:
        from nst.config import RECIPES, StyleConfig, adapt_config
        from nst.gatys import stylize

        configs = {
            "TensorFlow-tutorial recipe": adapt_config(RECIPES["tf_tutorial"], "vgg16_hed"),
            "Johnson et al. recipe": adapt_config(RECIPES["johnson"], "vgg16_hed"),
            "strong style, equal shares, TV weight 0": StyleConfig(style_weight=1.0, tv_weight=0.0),
        }
        for name, cfg in configs.items():
            pictures[name + f" ({cfg.network})"] = stylize(photos, painting, cfg, steps=args.steps).images
    rows = []
    names = {"style_deep": "Magenta" if judge.spec.network == "magenta" else judge.spec.network,
             "style_gram": f"Gram ({judge.spec.gram_network})", "style_colour": "colour"}
    for name, images in pictures.items():
        scored = judge.score(images)
        s = scored.means()
        rows.append([name, f"{s['style']:.3f}", *[f"{float(np.mean(v)):.3f}" for v in scored.parts.values()],
                     f"{s['content']:.3f}", f"{s['noise']:.2f}"])
    print(format_table(["picture", "style", *[f"style: {names[k]}" for k in scored.parts], "content", "noise"], rows))
    return 0


def fairness(count: int, size: int) -> int:
    """Distances to the painting's style vector (the judge's reference) for every bundled painting.

    Magenta's transformer is conditioned on the painting's style vector, and the judge
    compares the result's vector with that painting's. If the transformer had learnt to
    reproduce the vector, its results would sit as close to it as the painting's own other
    parts do. Rows: other square crops of the painting at the judge's scale (five, evenly
    spaced along the long side; the centre one is the reference itself, distance 0),
    Magenta's results on the photos, and the photos.
    """
    import numpy as np

    from nst import arbitrary
    from nst.images import load_image
    from nst.judge import painting_in_frame
    from tuner.study import content_paths, load_photos

    photos = [p.image for p in load_photos(content_paths(None, count), size)]
    rows = []
    for path in sorted((ROOT / "examples").glob("*.jpg")):
        painting = load_image(path)
        ref = arbitrary.style_vector(painting_in_frame(painting, (size, size)))
        h, w = painting.shape[:2]
        long_hw = (size, round(size * w / h)) if w >= h else (round(size * h / w), size)
        strip = painting_in_frame(painting, long_hw)
        ys = np.linspace(0, strip.shape[0] - size, 5).astype(int)
        xs = np.linspace(0, strip.shape[1] - size, 5).astype(int)
        crops = [np.linalg.norm(arbitrary.style_vector(strip[y:y + size, x:x + size]) - ref)
                 for y, x in zip(ys, xs, strict=True)]
        vector = arbitrary.style_vector(painting)
        magenta = [np.linalg.norm(arbitrary.style_vector(arbitrary.stylize(p, vector)) - ref) for p in photos]
        plain = [np.linalg.norm(arbitrary.style_vector(p) - ref) for p in photos]
        rows.append([path.stem, " ".join(f"{d:.2f}" for d in crops), " ".join(f"{d:.2f}" for d in magenta),
                     " ".join(f"{d:.2f}" for d in plain)])
    print(format_table(["painting", "other crops of the painting", "Magenta's results", "the photos"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
