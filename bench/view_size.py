"""View size: does a network proxy's look survive being painted at 512 and 1024 px?

A trial is tuned and shown at 128 px; people paint 512-2048 px photos. This bench tunes a
network proxy exactly as a study does (Magenta's transformer with the painting folded in,
photo blend on, ``--steps`` Adam steps of the default loss on the test photos at 128 px;
:func:`nst.netproxy.tune_network`), then paints each test photo

* at 128 px: the proxy render, what the gallery shows today (the reference);
* natively at 512 and 1024 px: what ``trainer stylize`` gives today;
* with :func:`nst.viewsize.paint_at_scale` at 512 and 1024 px, for every ``--work``
  side and every detail method;
* with Magenta's arbitrary model at its 384 px working side (``tuner preview``), at 512 px:
  the off-the-shelf reference, measured in the same run.

Every render is scored on a common view (long side ``--view``, default 256) by the
default judge bound to the photos at that view, and its stroke wavelength is measured
(:func:`nst.strokes.stroke_wavelength` as a fraction of the long side: ``λ`` of the
picture, ``λ res`` of the edges it adds over the photo painted, and ``λ res`` over the
proxy render's). The table gives means over the photos and each
render's difference to the 128 px proxy render (the target: within +-0.10 on
style and content). A contact sheet per painting, a row per photo (proxy 128 enlarged |
native 512 | ours 512 | ours 1024, a 1:1 crop | native 1024, a 1:1 crop | preview 512;
"ours" is ``--sheet-work``, default the proxy size, with ``--sheet-detail``), goes to
``--sheets`` (default ``docs/images``).

Test photos are 1024 px squares cut from the large originals of the Debian photo set
(``trainer.sample_data``'s packages, kept at short side 1024 in ``--photo-dir``; made on
first use, about 25 s).

Usage::

    python -m bench.view_size                                  # monet + starry_night, 3 photos
    python -m bench.view_size --paintings examples/monet.jpg --work 128 256 --out /tmp/vs
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ("landscapes/lomiri-aitzgorri_by_Aitzol_Berasategi.jpg", "animals/gcompris-erase-kitten.jpg",
                  "landscapes/lomiri-Bridge_by_Sander_Klootwijk.jpg")
DEFAULT_PAINTINGS = ("examples/monet.jpg", "examples/starry_night.jpg")
PROXY = 128
SIZES = (512, 1024)


def large_photo_set(folder: Path, side: int = 1024) -> None:
    """The Debian photo set with originals of short side >= ``side`` kept at ``side`` (trainer.sample_data's packages)."""
    import tempfile

    from trainer.debs import default_cache, fetch_debs, unpack
    from trainer.sample_data import PACKAGES, PICKS, assemble

    needed = [p.name for p in PACKAGES if any(k.package == p.name for k in PICKS)]
    debs = fetch_debs(needed, default_cache())
    with tempfile.TemporaryDirectory(prefix="styletune-large-") as tmp:
        roots = {name: unpack(deb, Path(tmp) / name) for name, deb in debs.items()}
        assemble(folder, roots, PICKS, packages=PACKAGES, min_side=side, max_side=side)


def load_photos(folder: Path, names: Sequence[str], side: int) -> tuple[list[str], np.ndarray]:
    from nst.images import center_crop_square, load_image

    if not all((folder / n).is_file() for n in names):
        print(f"making the large photo set in {folder} ...", file=sys.stderr)
        large_photo_set(folder, side)
    return [Path(n).stem for n in names], np.stack([center_crop_square(load_image(folder / n), side) for n in names])


def tuned_network(painting: np.ndarray, photos128: np.ndarray, steps: int):
    """The network proxy's tuned Keras model: tune_network's own compiled model after its run."""
    from nst.config import default_config
    from nst.lossnets import get_extractor
    from nst.netproxy import _compiled, tune_network

    config = default_config()
    extractor = get_extractor(config.network, config.layers, config.pooling)
    result = tune_network(photos128, painting, config, steps=steps, blend=True, extractor=extractor)
    net = _compiled(painting, extractor, config.content_layer, tuple(config.active_style_layers), photos128.shape,
                    True)
    return net.model, result.images, config


def keras_painter(model) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    run = tf.function(lambda x: model(x, training=False),
                      input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    return lambda img: np.clip(run(np.asarray(img, np.float32)[None])[0].numpy(), 0.0, 1.0)


def crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return img[top:top + side, left:left + side]


def save_jpeg(path: Path, img: np.ndarray, quality: int = 85) -> None:
    from PIL import Image

    from nst.images import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(img)).save(path, quality=quality, optimize=True)


def measure_painting(painting_path: Path, names: list[str], photos: np.ndarray, args) -> list[list]:
    from nst import arbitrary
    from nst.images import contact_sheet, load_image, resize_longest
    from nst.judge import Judge, JudgeSpec
    from nst.strokes import stroke_wavelength
    from nst.viewsize import paint_at_scale

    painting = load_image(painting_path, max_side=512)
    at = {s: np.stack([resize_longest(p, s) for p in photos]) for s in (PROXY, *SIZES, args.view)}
    started = time.perf_counter()
    model, _, config = tuned_network(painting, at[PROXY], args.steps)
    print(f"{painting_path.stem}: tuned {config.network} proxy, {args.steps} steps in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    paint = keras_painter(model)
    renders: dict[tuple[str, int, int, str], np.ndarray] = {}
    seconds: dict[tuple[str, int, int, str], float] = {}

    def render(key, fn, size):
        t = time.perf_counter()
        renders[key] = np.stack([fn(p) for p in at[size]])
        seconds[key] = (time.perf_counter() - t) / len(photos)

    render(("proxy", PROXY, PROXY, "-"), paint, PROXY)
    for size in SIZES:
        render(("native", size, size, "-"), paint, size)
        for work in args.work:
            for detail in args.details:
                render(("ours", size, work, detail),
                       lambda p, w=work, d=detail: paint_at_scale(paint, p, w, detail=d), size)
    vector = arbitrary.style_vector(painting)
    render(("preview", 512, arbitrary.CONTENT_SIZE, "-"), lambda p: arbitrary.stylize(p, vector), 512)

    judge = Judge(JudgeSpec(), at[args.view], painting)
    rows, ref = [], None
    for key, imgs in renders.items():
        view = np.stack([resize_longest(i, args.view) for i in imgs])
        means = judge.score(view).means()
        lam = float(np.mean([stroke_wavelength(i) for i in imgs]))
        lam_res = float(np.mean([stroke_wavelength(i, p) for i, p in zip(imgs, at[key[1]], strict=True)]))
        if ref is None:
            ref = (means["style"], means["content"], lam_res)
        kind, size, work, detail = key
        rows.append([painting_path.stem, kind, size, work, detail, means["style"], means["content"], means["noise"],
                     means["style"] - ref[0], means["content"] - ref[1], lam, lam_res, lam_res / ref[2],
                     seconds[key]])
    if args.out:
        for key, imgs in renders.items():
            for name, img in zip(names, imgs, strict=True):
                save_jpeg(args.out / painting_path.stem / f"{name}_{'_'.join(map(str, key))}.jpg", img, 92)
    if args.sheets:
        ours = ("ours", 512, args.sheet_work, args.sheet_detail)
        ours1k = ("ours", 1024, args.sheet_work, args.sheet_detail)
        cell = args.cell
        sheet_rows = [[renders[("proxy", PROXY, PROXY, "-")][i], renders[("native", 512, 512, "-")][i],
                       renders[ours][i], crop(renders[ours1k][i], cell), crop(renders[("native", 1024, 1024, "-")][i], cell),
                       renders[("preview", 512, arbitrary.CONTENT_SIZE, "-")][i]] for i in range(len(photos))]
        save_jpeg(args.sheets / f"view_size_{painting_path.stem}.jpg", contact_sheet(sheet_rows, cell=cell), 80)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from nst.viewsize import DETAILS

    parser = argparse.ArgumentParser(prog="python -m bench.view_size", description=__doc__.split("\n")[0])
    parser.add_argument("--paintings", nargs="+", type=Path, default=[ROOT / p for p in DEFAULT_PAINTINGS])
    parser.add_argument("--photo-dir", type=Path, default=ROOT / "studies" / "photos_1024",
                        help="the large photo set (made here on first use)")
    parser.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS), help="files under --photo-dir")
    parser.add_argument("--steps", type=int, default=40, help="proxy tuning steps (default 40)")
    parser.add_argument("--work", nargs="+", type=int, default=[128, 256, 384], help="work sides to measure")
    parser.add_argument("--details", nargs="+", choices=DETAILS, default=list(DETAILS))
    parser.add_argument("--view", type=int, default=256, help="common view the judge scores at (default 256)")
    parser.add_argument("--out", type=Path, default=None, help="also write every render here")
    parser.add_argument("--sheets", type=Path, default=ROOT / "docs" / "images", help="where the contact sheets go")
    parser.add_argument("--sheet-work", type=int, default=PROXY, help="work side of the sheet's \"ours\" columns")
    parser.add_argument("--sheet-detail", choices=DETAILS, default="guided")
    parser.add_argument("--cell", type=int, default=256, help="sheet cell side; the 1024 px columns are 1:1 crops of it")
    args = parser.parse_args(argv)
    if args.sheet_work not in args.work or args.sheet_detail not in args.details:
        parser.error("--sheet-work and --sheet-detail must be among --work and --details")

    from bench.common import format_table

    names, photos = load_photos(args.photo_dir, args.photos, max(SIZES))
    rows = []
    for painting in args.paintings:
        rows += measure_painting(painting, names, photos, args)
    print(format_table(["painting", "render", "px", "work", "detail", "style", "content", "noise", "Δstyle",
                        "Δcontent", "λ", "λ res", "λ res / proxy", "s/photo"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
