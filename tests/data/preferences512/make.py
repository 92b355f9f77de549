"""Render the 512 px preference set: this product's own outputs (see ``labels.csv`` and ``docs/judge.md``).

Usage::

    python -m trainer.sample_data studies/photos            # the training photos (once)
    python tests/data/preferences512/make.py                # every painting: pictures + unlabelled pairs
    python tests/data/preferences512/make.py --style wave   # one painting
    python tests/data/preferences512/make.py --sheets /tmp/pairs   # side-by-side PNGs to label by eye

For each painting of ``examples/`` and its three test photos (:data:`PHOTOS`; square centre
crops at 512 px, the view size), it writes ``{painting}_{photo}_{variant}.jpg`` (JPEG
quality 85):

* ``photo``: the crop itself (the judge's reference);
* ``magenta``: the baseline, ``nst.arbitrary.stylize(photo, style_vector(painting))``;
* ``proxy_default``, ``proxy_style10``, ``proxy_style01``, ``proxy_shallow``: network-proxy
  trials (``nst.netproxy.tune_network``, 30 steps, photo blend on, the three photos at
  128 px as the batch) with :func:`nst.config.default_config` and three variants (style
  weight x10, x0.1; only the block1-2 style layers), each painting the 512 px photo as the
  gallery and ``trainer stylize`` do (``nst.viewsize.paint_at_scale`` at 128 px);
* ``trained``: a trained network: ``trainer fit --config default.json --network magenta
  --tune norm --photo-skip --steps 50`` on ``studies/photos``, then ``trainer stylize``;
* ``gatys``: the Gatys proxy (``nst.gatys.stylize``, 40 L-BFGS steps, default config) at
  256 px, enlarged to 512 px as the gallery enlarges a picture (``nst.viewsize.enlarge``).

Pairs (:func:`pairs_for`), four per photo: trained network vs baseline, a proxy trial vs
baseline, two proxy trials, Gatys vs a network (the trained one, or the default trial).
The order inside each pair is drawn with ``numpy.random.default_rng(SEED)``, before
anything is labelled or scored; ``labels.csv`` is written with empty labels (existing
labels are kept) and filled in by looking at the side-by-side sheets.

The pictures are committed; this script documents how they were made (TensorFlow's CPU
kernels are not bit-reproducible across machines, so a rerun gives similar pictures).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SIZE = 512
PROXY = 128
SEED = 512
#: painting -> its three test photos: scikit-image names, or paths under studies/photos
PHOTOS = {
    "monet": ("astronaut", "buildings/palapeli-castle-maintenon", "landscapes/lomiri-aitzgorri_by_Aitzol_Berasategi"),
    "starry_night": ("chelsea", "people/matplotlib-grace_hopper", "landscapes/kphotoalbum-snow"),
    "wave": ("coffee", "animals/gcompris-erase-penguin", "objects/palapeli-citrus-fruits"),
    "shipwreck": ("astronaut", "buildings/gcompris-explore_monuments-montStMichel",
                  "animals/lomiri-friends_by_Aitzol_Berasategi"),
}
TRIALS = ("proxy_default", "proxy_style10", "proxy_style01", "proxy_shallow")
FIELDS = ("painting", "photo", "a", "b", "prefer", "kind", "confidence", "reason")


def photo_name(source: str) -> str:
    return Path(source).name.split("-")[-1].split("_by_")[0].split("_")[0].lower() if "/" in source else source


def load_photo(source: str):
    import numpy as np
    import skimage.data

    from nst.images import load_image, resize

    img = (getattr(skimage.data, source)().astype(np.float32) / 255.0 if "/" not in source
           else load_image(ROOT / "studies" / "photos" / f"{source}.jpg"))
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(img[top : top + s, left : left + s, :3], (SIZE, SIZE))


def trial_configs():
    from nst.config import default_config

    base = default_config()
    shallow = tuple((n, 1.0 if n in ("block1_conv1", "block2_conv1") else 0.0) for n, _ in base.style_layers)
    return {
        "proxy_default": base,
        "proxy_style10": replace(base, style_weight=base.style_weight * 10),
        "proxy_style01": replace(base, style_weight=base.style_weight * 0.1),
        "proxy_shallow": replace(base, style_layers=shallow),
    }


def pairs_for(painting: str, photos: list[str]) -> list[tuple[str, str, str]]:
    """``(photo, variant, variant, kind)`` rows, before the order is randomised."""
    out = []
    for i, photo in enumerate(photos):
        out.append((photo, "trained", "magenta", "trained vs baseline"))
        out.append((photo, TRIALS[i], "magenta", "proxy vs baseline"))
        out.append((photo, TRIALS[i], TRIALS[(i + 1) % len(TRIALS)], "proxy vs proxy"))
        out.append((photo, "gatys", "trained" if i % 2 == 0 else "proxy_default", "Gatys vs network"))
    return out


def save_jpeg(path: Path, img) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype("uint8")).save(path, quality=85)


def train_network(stem: str, runs: Path) -> Path:
    """``trainer fit`` with the default config on ``studies/photos`` (magenta, norm only, photo blend, 50 steps)."""
    from nst.config import default_config

    runs.mkdir(parents=True, exist_ok=True)
    cfg = runs / "default.json"
    cfg.write_text(default_config().to_json())
    name = f"{stem}-pref512"
    if not (runs / name).exists():
        subprocess.run([sys.executable, "-c", "from trainer.cli import main; main()", "fit", "--config", str(cfg),
                        "--style", str(ROOT / "examples" / f"{stem}.jpg"), "--data", str(ROOT / "studies" / "photos"),
                        "--network", "magenta", "--tune", "norm", "--photo-skip", "--steps", "50",
                        "--preview-every", "1000", "--checkpoint-every", "50", "--runs-dir", str(runs),
                        "--name", name, "-q"], check=True, cwd=ROOT)
    return runs / name


def stylize_trained(run: Path, photos: dict[str, object], tmp: Path) -> dict[str, object]:
    from nst.images import load_image, save_image

    tmp.mkdir(parents=True, exist_ok=True)
    for name, img in photos.items():
        save_image(tmp / f"{name}.png", img)
    out = tmp / "out"
    subprocess.run([sys.executable, "-c", "from trainer.cli import main; main()", "stylize", str(run),
                    *[str(tmp / f"{n}.png") for n in photos], "-o", str(out), "-q"], check=True, cwd=ROOT)
    return {name: load_image(next(out.glob(f"{name}*"))) for name in photos}


def render(stem: str, runs: Path) -> None:
    import numpy as np

    from nst import arbitrary, gatys, netproxy
    from nst.config import default_config
    from nst.images import load_image, resize
    from nst.viewsize import enlarge

    painting = load_image(ROOT / "examples" / f"{stem}.jpg")
    photos = {photo_name(s): load_photo(s) for s in PHOTOS[stem]}
    names = list(photos)
    out: dict[str, dict[str, np.ndarray]] = {n: {"photo": photos[n]} for n in names}
    t0 = time.perf_counter()
    vector = arbitrary.style_vector(painting)
    for n in names:
        out[n]["magenta"] = arbitrary.stylize(photos[n], vector)
    small = np.stack([resize(photos[n], (PROXY, PROXY)) for n in names])
    for variant, cfg in trial_configs().items():
        result = netproxy.tune_network(small, painting, cfg, steps=30, blend=True,
                                       view=[photos[n] for n in names])
        if not result.ok:
            raise RuntimeError(f"{stem} {variant}: {result.reason}")
        for n, img in zip(names, result.view_images, strict=True):
            out[n][variant] = img
        print(f"{stem} {variant}: {time.perf_counter() - t0:.0f} s", flush=True)
    mid = np.stack([resize(photos[n], (256, 256)) for n in names])
    g = gatys.stylize(mid, painting, default_config(), steps=40)
    for n, img, s in zip(names, g.images, mid, strict=True):
        out[n]["gatys"] = enlarge(img, photos[n], s)
    print(f"{stem} gatys: {time.perf_counter() - t0:.0f} s", flush=True)
    trained = stylize_trained(train_network(stem, runs), photos, runs / f"{stem}-photos")
    for n in names:
        out[n]["trained"] = trained[n]
    print(f"{stem} trained: {time.perf_counter() - t0:.0f} s", flush=True)
    for n in names:
        for variant, img in out[n].items():
            save_jpeg(HERE / f"{stem}_{n}_{variant}.jpg", img)


def write_pairs(path: Path) -> None:
    """All pairs, order inside each drawn with :data:`SEED`; labels already written are kept."""
    import numpy as np

    old = {}
    if path.exists():
        with open(path, newline="") as fh:
            old = {(r["painting"], r["photo"], frozenset((r["a"], r["b"]))): r for r in csv.DictReader(fh)}
    rng = np.random.default_rng(SEED)
    rows = []
    for stem in PHOTOS:
        for photo, x, y, kind in pairs_for(stem, [photo_name(s) for s in PHOTOS[stem]]):
            a, b = (y, x) if rng.random() < 0.5 else (x, y)
            row = old.get((stem, photo, frozenset((a, b)))) or {
                "painting": stem, "photo": photo, "a": a, "b": b, "prefer": "", "kind": kind, "confidence": "",
                "reason": ""}
            rows.append(row)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)


def sheets(labels: Path, folder: Path) -> None:
    """One side-by-side PNG per pair: A left, B right at full size; photo and painting below."""
    import numpy as np

    from nst.images import load_image, resize, resize_longest, save_image

    folder.mkdir(parents=True, exist_ok=True)
    with open(labels, newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh), 1):
            if not (HERE / f"{r['painting']}_{r['photo']}_photo.jpg").exists() or (folder / f"pair{i:02d}.png").exists():
                continue  # not rendered yet, or its sheet is made
            a, b, photo = (load_image(HERE / f"{r['painting']}_{r['photo']}_{v}.jpg") for v in (r["a"], r["b"], "photo"))
            paint = resize_longest(load_image(ROOT / "examples" / f"{r['painting']}.jpg"), 256)
            sheet = np.ones((SIZE + 8 + 256, 2 * SIZE + 8, 3), np.float32)
            sheet[:SIZE, :SIZE], sheet[:SIZE, SIZE + 8 :] = a, b
            sheet[SIZE + 8 :, :256] = resize(photo, (256, 256))
            sheet[SIZE + 8 : SIZE + 8 + paint.shape[0], 264 : 264 + paint.shape[1]] = paint
            save_image(folder / f"pair{i:02d}.png", sheet)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", action="append", choices=sorted(PHOTOS), help="painting (repeatable; default all)")
    ap.add_argument("--runs-dir", default="/tmp/preferences512-runs", help="where the trained networks go")
    ap.add_argument("--pairs-only", action="store_true", help="only (re)write labels.csv's pairs")
    ap.add_argument("--sheets", help="write one side-by-side PNG per pair into this folder")
    args = ap.parse_args(argv)
    if not args.pairs_only and not args.sheets:
        for stem in args.style or list(PHOTOS):
            render(stem, Path(args.runs_dir))
    write_pairs(HERE / "labels.csv")
    if args.sheets:
        sheets(HERE / "labels.csv", Path(args.sheets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
