"""Loading, validating, resizing and saving images.

All images inside styletune are ``float32`` NumPy arrays of shape ``(H, W, 3)`` with
values in ``[0, 1]``, RGB. Everything a user hands us passes through :func:`load_image`,
which turns every way a file can be unusable into one :class:`~nst.errors.ImageError`
line naming the file, and every legitimate oddity (CMYK, 16 bit, palette with
transparency, EXIF rotation, animation) into a plain RGB picture.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nst.errors import ImageError, StyletuneNote
from nst.files import atomic_writer

#: Smallest side we accept: a 4-block VGG needs at least 16 px to keep one pixel.
MIN_SIDE = 16
#: Largest decoded image we accept (about 14000 x 14000); Pillow's own limit is lower
#: for warnings but we make it an error, with our own message.
MAX_PIXELS = 200_000_000

_SUPPORTED = "JPEG, PNG, WebP, TIFF, BMP or GIF"
_ANIMATION_NOTED: set[str] = set()


def _composite_on_white(im: Image.Image) -> Image.Image:
    """Flatten transparency onto white: a painter's canvas, not black."""
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_float_rgb(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to float32 RGB in [0, 1], keeping 16-bit precision."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        gray = np.clip(arr / max(float(arr.max()), 1e-6), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        im = _composite_on_white(im)
    elif mode != "RGB":
        # CMYK, YCbCr, L, 1, P, RGBX ...: Pillow knows the conversion.
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def load_image(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """Read an image file as float32 RGB ``(H, W, 3)`` in ``[0, 1]``.

    ``max_side`` resizes (down or up) so that the longest side has that many pixels.
    Raises :class:`ImageError` with a one-line message for a missing, empty, corrupt,
    non-image, too small or oversized file.
    """
    p = Path(path)
    name = str(p)
    if not p.exists():
        raise ImageError(f"{name}: no such file; check the path")
    if p.is_dir():
        raise ImageError(f"{name}: is a directory, expected an image file")
    if p.stat().st_size == 0:
        raise ImageError(f"{name}: file is empty; use a {_SUPPORTED} image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(p) as im:
                    w, h = im.size
                    if w * h > MAX_PIXELS:
                        raise ImageError(
                            f"{name}: {w}x{h} pixels is too large to process; "
                            f"downscale it below {MAX_PIXELS // 1_000_000} megapixels"
                        )
                    if getattr(im, "is_animated", False) and name not in _ANIMATION_NOTED:
                        _ANIMATION_NOTED.add(name)
                        warnings.warn(f"{name}: animated image, using its first frame", StyletuneNote, stacklevel=2)
                    im.seek(0)
                    im.load()
                    upright = ImageOps.exif_transpose(im) or im
                    arr = _to_float_rgb(upright)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: claims a size too large to decode safely ({exc.__class__.__name__}); "
                         f"use a picture below {MAX_PIXELS // 1_000_000} megapixels") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a recognised image; use a {_SUPPORTED} file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ImageError(f"{name}: image is corrupt or truncated ({reason}); re-export or re-download it") from None
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: {w}x{h} is too small; each side needs at least {MIN_SIDE} pixels")
    if max_side is not None:
        arr = resize_longest(arr, max_side)
    return arr


def resize_longest(img: np.ndarray, side: int) -> np.ndarray:
    """Resize so the longest side is ``side`` pixels, keeping the aspect ratio."""
    h, w = img.shape[:2]
    scale = side / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return resize(img, new)


def resize(img: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize to exactly ``(width, height)`` with a Lanczos filter (antialiased when shrinking)."""
    if (img.shape[1], img.shape[0]) == tuple(size_wh):
        return img.astype(np.float32, copy=False)
    channels = [Image.fromarray(img[..., c].astype(np.float32)) for c in range(img.shape[2])]
    out = [np.asarray(ch.resize(size_wh, Image.Resampling.LANCZOS)) for ch in channels]
    return np.clip(np.stack(out, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_each(images, hw: tuple[int, int]) -> np.ndarray:
    """``(B, h, w, 3)``: each picture of ``images`` resized to ``hw`` (:func:`resize`); none gives an empty batch."""
    h, w = hw
    if not len(images):
        return np.zeros((0, h, w, 3), np.float32)
    return np.stack([resize(np.asarray(img, np.float32), (w, h)) for img in images])


def center_crop_square(img: np.ndarray, side: int) -> np.ndarray:
    """Resize the shortest side to ``side`` and crop the centre square (for batching photos)."""
    h, w = img.shape[:2]
    scale = side / min(h, w)
    img = resize(img, (max(side, round(w * scale)), max(side, round(h * scale))))
    h, w = img.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return img[top : top + side, left : left + side]


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_output(path: str | os.PathLike[str], *, folder: bool = False, what: str = "output path") -> Path:
    """Refuse an output path that cannot be written, before any work is spent on the result.

    ``folder``: the path is a folder to create or fill, not a file. Checks that a file
    path is not an existing folder, and that the nearest existing ancestor is a writable
    folder (a file where a folder is expected, or a read-only place, is named). ``what``
    names the flag to change in the message.
    """
    p = Path(path)
    if not folder and p.is_dir():
        raise ImageError(f"{p}: is a folder; give a file name for the result, e.g. {p / 'result.png'}")
    if folder and p.exists() and not p.is_dir():
        raise ImageError(f"{p}: is a file; choose another {what}, a folder")
    anchor = next((a for a in (p if folder else p.parent, *(p if folder else p.parent).parents) if a.exists()), Path("."))
    if not anchor.is_dir():
        raise ImageError(f"{anchor} is a file, not a folder, so {p} cannot be written there; choose another {what}")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ImageError(f"{anchor} is not writable; choose another {what}")
    return p


def save_image(path: str | os.PathLike[str], img: np.ndarray) -> Path:
    """Write an image atomically: to a temporary name in the same folder, then rename.

    A reader never sees a half-written file under the real name, even if the process is
    killed mid-write. The format follows the extension (PNG if there is none we know).
    A place that cannot be written (a file where a folder should be, no permission, a
    full disk) is an :class:`ImageError` naming the path.
    """
    p = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        p.suffix.lower(), "PNG"
    )
    try:
        with atomic_writer(p) as fh:
            Image.fromarray(to_uint8(img)).save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    except OSError as exc:
        raise ImageError(f"cannot write {p} ({exc.strerror or exc.__class__.__name__}); choose another output path") from None
    return p


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Content hash of a file, used to recognise the same style image across runs."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contact_sheet(rows: list[list[np.ndarray]], cell: int = 160, gap: int = 4) -> np.ndarray:
    """Tile images into a grid (each fitted into a ``cell`` square on white) for quick viewing."""
    ncols = max(len(r) for r in rows)
    sheet = np.ones((len(rows) * (cell + gap) + gap, ncols * (cell + gap) + gap, 3), np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            small = resize_longest(img, cell)
            h, w = small.shape[:2]
            y = gap + i * (cell + gap) + (cell - h) // 2
            x = gap + j * (cell + gap) + (cell - w) // 2
            sheet[y : y + h, x : x + w] = small
    return sheet


def bundled_photos() -> dict[str, Path]:
    """Colour photos that ship inside scikit-image: the default test photos."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
    return {Path(n).stem: folder / n for n in names if (folder / n).exists()}
