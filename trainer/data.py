"""Training photos: find them, check them, and feed them to the network with ``tf.data``.

Johnson et al. (2016) trained on the 80k images of MS-COCO resized to 256x256; any large
folder of everyday photos works the same way, and ``--data`` takes any folder tree.

Two stages:

1. :func:`scan_photos` walks the tree once, opens every file with an image extension
   (JPEG at 1/8 scale, which still reads all its data, so a truncated file is caught) and
   sorts each into *usable* or *skipped with a reason*. A broken file costs a line in the
   summary, not the run.
2. :func:`training_dataset` decodes in parallel with TensorFlow's own decoders (Pillow,
   through :func:`nst.images.load_image`, only for what they cannot read: TIFF, WebP,
   CMYK, transparency, rotated JPEGs), resizes the shortest side to the crop size (or
   to ``scale_side``, so a crop is a piece of a picture of that side and the network
   learns strokes at that picture's scale), takes a random crop, batches and prefetches.

The order is a pure function of ``(seed, step)``: epoch ``e`` visits the files in a
permutation seeded by ``(seed, e)`` and the crop of item ``i`` is seeded by
``(seed, i)``. So a run resumed at step ``s`` sees exactly the batches it would have
seen, and its weights match an uninterrupted run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nst.errors import StyletuneError
from nst.images import MIN_SIDE

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Formats and modes TensorFlow's decoders read exactly as Pillow would.
_TF_FORMATS = {"JPEG", "PNG", "GIF", "BMP"}
_TF_MODES = {"RGB", "L"}


class DataError(StyletuneError):
    """A training-data folder that cannot be used."""


@dataclass
class Scan:
    """The result of :func:`scan_photos`."""

    root: str
    files: list[str] = field(default_factory=list)
    needs_pillow: list[bool] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: int = 0  # files without an image extension

    def summary(self) -> dict:
        return {"root": self.root, "usable": len(self.files), "skipped": len(self.skipped),
                "ignored_non_images": self.ignored, "skipped_examples": self.skipped[:20],
                "decoded_with_pillow": int(sum(self.needs_pillow))}

    def describe(self) -> str:
        text = f"{len(self.files)} photos in {self.root}"
        if self.skipped:
            first, why = self.skipped[0]
            text += f"; skipped {len(self.skipped)} unreadable (e.g. {first}: {why})"
        if self.ignored:
            text += f"; ignored {self.ignored} non-image files"
        return text


def _check_one(path: str) -> tuple[bool, str]:
    """``(needs_pillow, "")`` for a usable photo, or raise with the reason it is not."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            fmt, mode = im.format, im.mode
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                raise ValueError(f"{w}x{h} is smaller than {MIN_SIDE} px")
            orientation = im.getexif().get(0x0112, 1) if fmt == "JPEG" else 1
            transparent = "transparency" in im.info
            if fmt == "JPEG":
                im.draft("RGB", (max(1, w // 8), max(1, h // 8)))
            im.load()
    native = fmt in _TF_FORMATS and mode in _TF_MODES and orientation in (1, None) and not transparent
    return (not native), ""


def scan_photos(root: str | os.PathLike[str], *, progress: bool = True, workers: int = 8) -> Scan:
    """Find every usable photo under ``root`` (recursively, sorted, symlinked folders not followed)."""
    from tqdm import tqdm

    base = Path(root).absolute()
    if not base.exists():
        raise DataError(f"{root}: no such folder; give --data a folder of photos (e.g. COCO train2017)")
    if not base.is_dir():
        raise DataError(f"{root}: is a file; give --data the folder that holds the photos")
    scan = Scan(root=str(base))
    candidates: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTS:
                candidates.append(os.path.join(dirpath, name))
            else:
                scan.ignored += 1

    def check(path: str) -> tuple[str, bool | None, str]:
        try:
            pillow, _ = _check_one(path)
            return path, pillow, ""
        except Exception as exc:  # every way a file can be broken is a reason to skip it
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            return path, None, reason[:120]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(check, candidates), total=len(candidates), desc="checking photos",
                            unit="file", disable=not progress or len(candidates) < 200, leave=False))
    for path, pillow, reason in results:
        if pillow is None:
            scan.skipped.append((path, reason))
        else:
            scan.files.append(path)
            scan.needs_pillow.append(pillow)
    if not scan.files:
        detail = (f"{len(scan.skipped)} image files could not be read (e.g. {scan.skipped[0][0]}: {scan.skipped[0][1]})"
                  if scan.skipped else f"found no {'/'.join(sorted(e[1:] for e in IMAGE_EXTS))} files")
        raise DataError(f"{root}: no usable training photos; {detail}")
    return scan


# -- tf.data ---------------------------------------------------------------------------------


def _pillow_decode(path) -> np.ndarray:
    from nst.images import load_image

    if isinstance(path, np.ndarray):  # eager calls hand over a 0-d object array
        path = path.item()
    if isinstance(path, bytes):
        path = path.decode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image(path).astype(np.float32)


def decode(path, needs_pillow):
    """A photo as float32 RGB in [0, 1]: TensorFlow's decoder, or Pillow for what it cannot read."""
    import tensorflow as tf

    def native():
        data = tf.io.read_file(path)
        return tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.float32)

    def pillow():
        return tf.numpy_function(_pillow_decode, [path], tf.float32, stateful=False)

    img = tf.cond(needs_pillow, pillow, native)
    img = tf.ensure_shape(img, [None, None, 3])
    return img


def fit_shortest(img, size: int):
    """Resize (antialiased) so the shortest side is ``size``: a crop then sees most of the photo."""
    import tensorflow as tf

    hw = tf.cast(tf.shape(img)[:2], tf.float32)
    scale = size / tf.reduce_min(hw)
    new = tf.maximum(tf.cast(tf.math.ceil(hw * scale), tf.int32), size)
    return tf.clip_by_value(tf.image.resize(img, new, method="bilinear", antialias=True), 0.0, 1.0)


def center_crop(img, size: int):
    import tensorflow as tf

    hw = tf.shape(img)[:2]
    top, left = (hw[0] - size) // 2, (hw[1] - size) // 2
    return tf.ensure_shape(img[top:top + size, left:left + size], [size, size, 3])


def fixed_crop(path, needs_pillow, size: int, scale_side: int = 0):
    """The deterministic crop used when content features are precomputed (see :mod:`trainer.features`).

    The centre ``size`` crop of the photo resized so its shortest side is ``scale_side``
    (0: ``size``), the same picture scale the random crops of :func:`training_dataset` see.
    """
    return center_crop(fit_shortest(decode(path, needs_pillow), scale_side or size), size)


def _file_order(n: int, seed: int, start: int):
    """Dataset of ``(item, file index)`` from item ``start`` on, epoch after epoch."""
    import tensorflow as tf

    first_epoch, offset = divmod(start, n)

    def epoch(e):
        keys = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(seed, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    files = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(offset)
    return tf.data.Dataset.zip(tf.data.Dataset.range(start, 2**62), files)


def training_dataset(files: Sequence[str], needs_pillow: Sequence[bool], *, size: int, batch: int, seed: int = 0,
                     start_step: int = 0, features: Sequence[str] | None = None,
                     feature_shape: Sequence[int] | None = None, scale_side: int = 0):
    """Endless batches ``(B, size, size, 3)`` starting at ``start_step`` (see module docstring).

    Each crop is cut from the photo resized so its shortest side is ``scale_side``, or
    ``size`` when it is 0 (:attr:`trainer.settings.Settings.scale_side`).

    With ``features`` (one cached file per photo, from :mod:`trainer.features`) each
    element is ``(photos, content_targets)``, and crops are the fixed centre crops the
    features were computed from.
    """
    import tensorflow as tf

    paths = tf.constant(list(files))
    pillow = tf.constant([bool(p) for p in needs_pillow])
    feats = tf.constant(list(features)) if features is not None else None
    auto = tf.data.AUTOTUNE

    def load(item, idx):
        path, slow = tf.gather(paths, idx), tf.gather(pillow, idx)
        if feats is not None:
            raw = tf.io.decode_raw(tf.io.read_file(tf.gather(feats, idx)), tf.float16)
            target = tf.cast(tf.reshape(raw, feature_shape), tf.float32)
            return fixed_crop(path, slow, size, scale_side), target
        img = fit_shortest(decode(path, slow), scale_side or size)
        crop_seed = tf.stack([tf.constant(seed, tf.int64), item])
        return tf.image.stateless_random_crop(img, [size, size, 3], seed=crop_seed)

    ds = _file_order(len(files), seed, start_step * batch)
    ds = ds.map(load, num_parallel_calls=auto, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)  # a file that changed after the scan: drop it, keep training
    ds = ds.batch(batch, drop_remainder=True)
    return ds.prefetch(auto)
