"""Stylise photos of any size with a trained network.

Small photos go through the network in one piece. A photo larger than the memory budget
is cut into overlapping tiles, and two things keep the seams invisible:

1. **Shared normalisation statistics.** Instance normalisation divides each feature map
   by its own mean and spread, so a dark tile and a bright tile would be normalised
   differently and come out in different tones. Every tile is therefore normalised with
   the statistics of the *whole* picture (:func:`picture_stats`), measured in one pass
   over a copy shrunk to fit the budget. When the picture itself fits, these are exactly
   the statistics an untiled pass uses, and the tiled result equals the untiled one.
2. **Margins and a feathered blend.** An output pixel depends on input pixels up to
   :func:`trainer.costs.receptive_radius` away, so the outer ``margin`` of every tile
   (which sees the tile's padding instead of its neighbour's pixels) gets weight 0,
   and across the next ``band`` pixels one tile fades out while its neighbour fades in.
   Tiles start on multiples of the network's stride, so every tile sees the same pixel
   grid as the whole picture would.

``preserve_colors`` is the luminance-only transfer of Gatys, Bethge, Hertzmann &
Shechtman (2016), "Preserving color in neural artistic style transfer": keep the
result's luminance (Y of YIQ) and take the colour (I, Q) from the photo.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from trainer.costs import receptive_radius
from trainer.nets import build_network, size_factor, stats_model

if TYPE_CHECKING:
    from trainer.runs import RunRecord

#: Default memory budget for one pass through the network.
DEFAULT_MEMORY_MB = 1024
#: Rough peak bytes per input pixel during a forward pass, per unit of width: a few full-
#: resolution maps of 32 float32 channels alive at once (measured peaks are 0.5-1 KB).
_BYTES_PER_PIXEL = {"johnson": 1024, "fast": 512, "magenta": 384}  # magenta: 8 full-resolution channels
BAND = 16

_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], np.float32)
_YIQ_INV = np.linalg.inv(_YIQ).astype(np.float32)


def preserve_colors(photo: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """The stylised luminance with the photo's chrominance (both ``(H, W, 3)`` in [0, 1])."""
    y = stylised @ _YIQ[0]
    iq = photo @ _YIQ[1:].T
    yiq = np.concatenate([y[..., None], iq], axis=-1)
    return np.clip(yiq @ _YIQ_INV.T, 0.0, 1.0).astype(np.float32)


def max_pixels(arch: str, width: float, memory_mb: float) -> int:
    """How many pixels one pass may take within ``memory_mb`` (see ``_BYTES_PER_PIXEL``)."""
    per_pixel = _BYTES_PER_PIXEL[arch] * max(1.0, width)
    return max(64 * 64, int(memory_mb * 2**20 / per_pixel))


def _pad_to(img: np.ndarray, factor: int) -> np.ndarray:
    h, w = img.shape[:2]
    ph, pw = (-h) % factor, (-w) % factor
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    return img


def _axis_tiles(length: int, tile: int, margin: int, band: int) -> list[tuple[int, np.ndarray]]:
    """Tile starts along one axis and each tile's 1-D blend weights."""
    if length <= tile:
        return [(0, np.ones(length, np.float32))]
    step = tile - 2 * margin - band
    starts = list(range(0, length - tile, step)) + [length - tile]
    ramp = (np.arange(band, dtype=np.float32) + 0.5) / band
    out = []
    for s in starts:
        w = np.ones(tile, np.float32)
        if s > 0:  # an inner edge on the left/top: ignore the margin, fade in over the band
            w[:margin] = 0.0
            w[margin:margin + band] = ramp
        if s + tile < length:
            w[tile - margin:] = 0.0
            w[tile - margin - band:tile - margin] = ramp[::-1]
        out.append((s, w))
    return out


class Stylizer:
    """A trained network ready to stylise arrays of any size.

    ``memory_mb`` bounds one pass; bigger pictures are tiled (see module docstring).
    """

    def __init__(self, model, arch: str, width: float = 1.0, *, photo_skip: bool = False,
                 memory_mb: float = DEFAULT_MEMORY_MB):
        import tensorflow as tf

        self.model = model
        self.arch = arch
        self.width = width
        self.photo_skip = photo_skip
        self.factor = size_factor(arch)
        self.max_pixels = max_pixels(arch, width, memory_mb)
        self.margin = self.factor * math.ceil(receptive_radius(arch) / self.factor)
        self._fixed = None
        self._stats = None
        image_spec = tf.TensorSpec([1, None, None, 3], tf.float32)
        self._run = tf.function(lambda x: model(x, training=False), input_signature=[image_spec])

    # -- pieces --------------------------------------------------------------------------------
    def _fixed_model(self):
        if self._fixed is None:
            import tensorflow as tf

            fixed = build_network(self.arch, self.width, fixed_stats=True, photo_skip=self.photo_skip)
            fixed.set_weights(self.model.get_weights())
            # One trace for every tile and picture size: height and width are left open.
            specs = [tf.TensorSpec([1, None, None, 3], tf.float32)]
            specs += [tf.TensorSpec([1, 1, 1, int(i.shape[-1])], tf.float32) for i in fixed.inputs[1:]]
            self._fixed = tf.function(lambda *xs: fixed(list(xs), training=False), input_signature=specs)
            stats = stats_model(self.model)
            self._stats = tf.function(lambda x: stats(x, training=False), input_signature=specs[:1])
        return self._fixed

    def picture_stats(self, img: np.ndarray) -> list:
        """Normalisation statistics of a whole (padded) picture, from a copy shrunk to fit the budget."""
        from nst.images import resize

        self._fixed_model()
        h, w = img.shape[:2]
        if h * w > self.max_pixels:
            scale = math.sqrt(self.max_pixels / (h * w))
            nh = max(self.factor, int(h * scale) // self.factor * self.factor)
            nw = max(self.factor, int(w * scale) // self.factor * self.factor)
            img = resize(img, (nw, nh))
        return list(self._stats(img[None].astype(np.float32)))

    def tile_size(self) -> int:
        side = int(math.sqrt(self.max_pixels)) // self.factor * self.factor
        need = 2 * self.margin + BAND + self.factor
        if side < need:
            from nst.errors import StyletuneError

            raise StyletuneError(f"the memory budget allows {side} px tiles, but this network needs at least {need} px; "
                                 "raise --memory-mb")
        return side

    def tiles(self, shape: tuple[int, int], tile: int) -> Iterator[tuple[int, int, np.ndarray]]:
        for top, wy in _axis_tiles(shape[0], tile, self.margin, BAND):
            for left, wx in _axis_tiles(shape[1], tile, self.margin, BAND):
                yield top, left, wy[:, None] * wx[None, :]

    def tiled(self, img: np.ndarray, tile: int | None = None, stats: list | None = None, progress=None) -> np.ndarray:
        """Stylise a padded picture tile by tile with shared statistics (see module docstring)."""
        fixed = self._fixed_model()
        tile = tile or self.tile_size()
        if tile % self.factor or tile < 2 * self.margin + BAND + self.factor:
            raise ValueError(f"tile must be a multiple of {self.factor} and at least {2 * self.margin + BAND + self.factor}")
        stats = stats if stats is not None else self.picture_stats(img)
        h, w = img.shape[:2]
        acc = np.zeros((h, w, 3), np.float32)
        weight = np.zeros((h, w, 1), np.float32)
        for top, left, wt in self.tiles((h, w), tile):
            piece = img[top:top + tile, left:left + tile]
            out = fixed(piece[None].astype(np.float32), *stats)[0].numpy()
            th, tw = piece.shape[:2]
            acc[top:top + th, left:left + tw] += out * wt[:th, :tw, None]
            weight[top:top + th, left:left + tw] += wt[:th, :tw, None]
            if progress is not None:
                progress()
        return acc / np.maximum(weight, 1e-12)

    def n_tiles(self, height: int, width: int) -> int:
        h, w = height + (-height) % self.factor, width + (-width) % self.factor
        if h * w <= self.max_pixels:
            return 1
        t = self.tile_size()
        return len(_axis_tiles(h, t, self.margin, BAND)) * len(_axis_tiles(w, t, self.margin, BAND))

    # -- the whole thing -----------------------------------------------------------------------
    def __call__(self, img: np.ndarray, *, preserve: bool = False, progress=None) -> np.ndarray:
        """Stylise one ``(H, W, 3)`` picture in [0, 1]; returns the same size."""
        h, w = img.shape[:2]
        padded = _pad_to(img.astype(np.float32), self.factor)
        if padded.shape[0] * padded.shape[1] <= self.max_pixels:
            out = self._run(padded[None])[0].numpy()
        else:
            out = self.tiled(padded, progress=progress)
        out = np.clip(out[:h, :w], 0.0, 1.0)
        return preserve_colors(img, out) if preserve else out


def load_stylizer(run_ref: str, runs_dir: str, *, step: int | None = None,
                  memory_mb: float = DEFAULT_MEMORY_MB) -> tuple[Stylizer, RunRecord, int]:
    """The network of a run folder at its newest (or a given) checkpoint, the run's record and that checkpoint's step.

    The architecture is rebuilt from ``run.json`` by this package and only arrays are
    read from the checkpoint, so a run folder from elsewhere cannot run code here.
    """
    from trainer.runs import RunError, RunFolder, run_path

    run = RunFolder(run_path(run_ref, runs_dir))
    info = run.read_info()
    net = info.network
    skip = bool(net.get("photo_skip", False))
    model = build_network(net["arch"], float(net["width"]), photo_skip=skip)
    saved, weights, _ = run.load_checkpoint(step)
    if len(weights) != len(model.get_weights()) or any(
            w.shape != v.shape for w, v in zip(weights, model.get_weights(), strict=True)):
        raise RunError(f"{run.path}: checkpoint does not fit a {net['arch']} network of width {net['width']}")
    model.set_weights(weights)
    stylizer = Stylizer(model, net["arch"], float(net["width"]), photo_skip=skip, memory_mb=memory_mb)
    return stylizer, info, saved
