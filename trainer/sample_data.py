"""A small training set made on the spot, for trying ``trainer fit`` without downloading COCO.

Real training wants tens of thousands of everyday photos (Johnson et al. used MS-COCO's
80k). This makes a few hundred JPEG crops, at random positions, scales and flips, from
the photos that ship inside scikit-image, so a demo, a test or a benchmark has data on
any machine. By default it leaves out the four photos styletune previews on (astronaut,
chelsea, coffee, rocket), so previews show pictures the network never trained on.

Usage::

    python -m trainer.sample_data studies/sample_photos --count 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

#: scikit-image's bundled pictures that are photographs (colour or grey), minus the preview set.
SOURCES = ("motorcycle_left.png", "motorcycle_right.png", "camera.png", "grass.png", "gravel.png", "brick.png",
           "moon.png", "coins.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "page.png")
PREVIEW_SET = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def make_sample_photos(folder: str | Path, count: int = 300, *, seed: int = 0, include_previews: bool = False,
                       min_side: int = 128, max_side: int = 400) -> list[Path]:
    """Write ``count`` random crops (JPEG) into ``folder`` and return their paths."""
    import skimage.data

    from nst.images import load_image, resize, save_image

    base = Path(skimage.data.__file__).parent
    names = SOURCES + (PREVIEW_SET if include_previews else ())
    pictures = [load_image(base / n) for n in names if (base / n).exists()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        img = pictures[int(rng.integers(len(pictures)))]
        h, w = img.shape[:2]
        side = int(rng.integers(min(max(96, min(h, w) // 4), min(h, w)), min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[top:top + side, left:left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        target = int(rng.integers(min_side, max_side + 1))
        crop = resize(np.ascontiguousarray(crop), (target, target))
        out.append(save_image(Path(folder) / f"sample_{i:04d}.jpg", crop))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.sample_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--include-previews", action="store_true", help="also crop the four preview photos")
    args = parser.parse_args(argv)
    paths = make_sample_photos(args.folder, args.count, seed=args.seed, include_previews=args.include_previews)
    print(f"wrote {len(paths)} photos to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
