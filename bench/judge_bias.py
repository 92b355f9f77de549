"""Does the judge favour trials that copy its own network settings? A controlled comparison.

Usage::

    python bench/judge_bias.py                       # default proxy: 3 photos, 128 px, 50 steps
    python bench/judge_bias.py --ratio 10 --ratio 100

The judge (``nst.judge``) measures style with ``vgg16_hed``, *max* pooling and the layers
``block1_conv2, block2_conv2, block3_conv3, block4_conv3``. A trial whose loss uses exactly
those could be expected to look better to it than it looks to a person. Here the same
search parameters (style ratio R, TV ratio T, style scale 1, content layer block4_conv2,
equal layer shares) are run with different pooling and style layers, and judged:

* ``judge's own``: max pooling, the judge's four layers - the suspected favourite;
* ``gatys``: average pooling, blockN_conv1 for N = 1..5 (Gatys et al. 2016);
* ``gatys-max``: the same layers with max pooling;
* ``shallow`` / ``deep``: average pooling, block1-2 only / block3-5 only;
* ``random-weight VGG16``: a different network altogether (VGG16's shape, seeded random
  weights, block1-3), the one other network with weights on an offline machine.

If the judge simply rewarded its own settings, ``judge's own`` would dominate every other
row (lower style *and* content score). The table marks the rows that no other row
dominates. ImageNet networks (VGG19, InceptionV3) cannot be compared on an offline machine;
see ``docs/judge.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import format_table, machine_summary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GATYS_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
#: name -> (loss network, pooling, style layers)
VARIANTS = {
    "judge's own": ("vgg16_hed", "max", ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")),
    "gatys": ("vgg16_hed", "avg", GATYS_LAYERS),
    "gatys-max": ("vgg16_hed", "max", GATYS_LAYERS),
    "shallow": ("vgg16_hed", "avg", ("block1_conv1", "block2_conv1")),
    "deep": ("vgg16_hed", "avg", ("block3_conv1", "block4_conv1", "block5_conv1")),
    # Another network: VGG16's architecture with seeded random weights. Random convolutional
    # features are known to carry texture statistics (Ustyuzhaninov et al. 2017, "What does
    # it take to generate natural textures?"); the judge has never seen this network.
    "random-weight VGG16": ("random", "avg", ("block1_conv1", "block2_conv1", "block3_conv1")),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratio", type=float, action="append", help="style ratio R (repeatable; default 30)")
    ap.add_argument("--tv", type=float, default=1e-3, help="TV ratio T (default 1e-3)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--style", default=str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--sheet", help="write a contact sheet of the results (rows = variants) to this PNG")
    args = ap.parse_args(argv)

    import numpy as np

    from nst.gatys import stylize
    from nst.images import contact_sheet, load_image, save_image
    from nst.judge import Judge, JudgeSpec
    from nst.lossnets import get_spec
    from tuner.space import SearchSpace, calibrate, to_config
    from tuner.study import content_paths, load_photos

    print(machine_summary())
    photos = load_photos(content_paths(None, args.photos), args.size)
    batch = np.stack([p.image for p in photos])
    painting = load_image(args.style)
    networks = sorted({v[0] for v in VARIANTS.values()})
    space = SearchSpace(tuple(networks), calibrate(networks, batch, painting))
    judge = Judge(JudgeSpec(), batch, painting)
    rows, sheet = [], [list(batch)]
    for ratio in args.ratio or [30.0]:
        results = {}
        for name, (network, pooling, layers) in VARIANTS.items():
            shares = {n: (1.0 if n in layers else 1e-3) for n in get_spec(network).style_layers}
            cfg = to_config(space, network, pooling, "block4_conv2", shares, ratio, args.tv, 1.0)
            t0 = time.perf_counter()
            r = stylize(batch, painting, cfg, steps=args.steps)
            s = judge.score(r.images).means()
            sheet.append(list(r.images))
            results[name] = (s["style"], s["content"], s["noise"], time.perf_counter() - t0)
            print(f"R {ratio:g} {name}: style {s['style']:.3f} content {s['content']:.3f} noise {s['noise']:.2f}",
                  flush=True)
        for name, (st, co, no, sec) in results.items():
            dominated_by = [o for o, v in results.items()
                            if o != name and v[0] <= st and v[1] <= co and (v[0], v[1]) != (st, co)]
            rows.append([ratio, name, round(st, 3), round(co, 3), round(no, 2),
                         "front" if not dominated_by else "dominated by " + ", ".join(dominated_by), round(sec)])
    if args.sheet:
        save_image(args.sheet, contact_sheet(sheet, cell=args.size))
    print()
    print(format_table(["R", "variant", "style", "content", "noise", "Pareto", "s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
