"""Render the pictures of the judge's preference set (see ``labels.csv`` and ``docs/judge.md``).

Usage::

    python tests/data/preferences/make.py                 # every painting in examples/
    python tests/data/preferences/make.py --style wave    # one painting
    # what the committed set holds (2026-12-01):
    python tests/data/preferences/make.py --style wave --variant r100_tv1e-4 --variant r100_tv1e-2 \
        --variant r100_tv1 --variant r10_tv1e-3 --variant r1_tv1e-3 --variant vgg16_r100_tv1e-4
    python tests/data/preferences/make.py --style wave --variant r100_tv1e-4_256 --photos 2
    python tests/data/preferences/make.py --style monet --variant r100_tv1e-4 --variant r10_tv1e-3 \
        --variant vgg16_r100_tv1e-4

For each bundled painting and each of scikit-image's four colour photos (centre crops,
128 px) it writes ``{painting}_{photo}_{variant}.png``:

* ``photo``: the crop itself (the judge's reference);
* ``magenta``: Magenta's arbitrary stylisation (``nst.arbitrary``), the baseline;
* ``r100_tv1e-4``, ``r100_tv1e-2``, ``r100_tv1``, ``r10_tv1e-3``, ``r1_tv1e-3``: Gatys proxy runs (50
  L-BFGS steps, ``vgg16_hed``, average pooling, Gatys et al.'s five blockN_conv1 style
  layers, content block4_conv2) at style ratio R and TV ratio T in the search's own units
  (``tuner.space.to_config``);
* ``r100_tv1e-4_256``: the first of those rendered at 256 px and reduced to 128 px, to see
  whether speckle is a property of the proxy's size;
* ``vgg16_r100_tv1e-4``: the same R and T through ImageNet ``vgg16`` (needs its converted
  weights, ``python -m nst.imagenet fetch``), to see whether speckle comes from the network.

The pictures are committed; this script documents how they were made (TensorFlow's CPU
kernels are not bit-reproducible across machines, so a rerun gives similar, not identical,
pictures).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
GATYS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
#: variant -> (loss network, style ratio R, TV ratio T, render size)
PROXIES = {
    "r100_tv1e-4": ("vgg16_hed", 100.0, 1e-4, 128),
    "r100_tv1e-2": ("vgg16_hed", 100.0, 1e-2, 128),
    "r100_tv1": ("vgg16_hed", 100.0, 1.0, 128),
    "r10_tv1e-3": ("vgg16_hed", 10.0, 1e-3, 128),
    "r1_tv1e-3": ("vgg16_hed", 1.0, 1e-3, 128),
    "r100_tv1e-4_256": ("vgg16_hed", 100.0, 1e-4, 256),
    "vgg16_r100_tv1e-4": ("vgg16", 100.0, 1e-4, 128),
}
SIZE = 128


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", action="append", help="painting stem in examples/ (repeatable; default all)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--photos", type=int, default=4, help="how many of the four photos (default 4)")
    ap.add_argument("--variant", action="append", choices=sorted(PROXIES), help="proxy variants to render (default all)")
    args = ap.parse_args(argv)

    import numpy as np

    from nst import arbitrary
    from nst.gatys import stylize
    from nst.images import load_image, resize, save_image
    from tuner.space import SearchSpace, calibrate, to_config
    from tuner.study import content_paths, load_photos

    stems = args.style or sorted(p.stem for p in (ROOT / "examples").glob("*.jpg"))
    for stem in stems:
        painting = load_image(ROOT / "examples" / f"{stem}.jpg")
        vector = arbitrary.style_vector(painting)
        for size in sorted({s for v, (*_, s) in PROXIES.items() if not args.variant or v in args.variant} | {SIZE}):
            photos = load_photos(content_paths(None, args.photos), size)
            batch = np.stack([p.image for p in photos])
            shares = {n: 1.0 for n in GATYS}
            for variant, (network, ratio, tv, s) in PROXIES.items():
                if s != size or (args.variant and variant not in args.variant):
                    continue
                t0 = time.perf_counter()
                space = SearchSpace((network,), calibrate((network,), batch, painting))
                cfg = to_config(space, network, "avg", "block4_conv2", shares, ratio, tv, 1.0)
                images = stylize(batch, painting, cfg, steps=args.steps).images
                for photo, img in zip(photos, images, strict=True):
                    if size != SIZE:
                        img = resize(img, (SIZE, SIZE))
                    save_image(HERE / f"{stem}_{photo.name}_{variant}.png", img)
                print(f"{stem} {variant}: {time.perf_counter() - t0:.0f} s", flush=True)
            if size == SIZE:
                for photo in photos:
                    save_image(HERE / f"{stem}_{photo.name}_photo.png", photo.image)
                    save_image(HERE / f"{stem}_{photo.name}_magenta.png", arbitrary.stylize(photo.image, vector))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
