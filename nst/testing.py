"""Synthetic pictures and a tiny loss configuration, for tests and benchmarks (as ``optuna.testing``).

Deterministic per seed and small (32-64 px), so mechanics tests and benchmarks need no
photo files and no pretrained weights: ``TINY_CONFIG`` uses the ``tiny`` network, three
random convolutions.
"""

from __future__ import annotations

import numpy as np

from nst.config import StyleConfig


def synthetic_photo(size: int = 48, seed: int = 0, width: int | None = None) -> np.ndarray:
    """A smooth 'photo': a colour gradient with a few soft discs, deterministic per seed."""
    rng = np.random.default_rng(seed)
    h, w = size, width or size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin((xx + yy) / (w / 3))], axis=-1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(size / 8, size / 3)
        mask = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None]
        img = img * (1 - mask) + rng.uniform(0, 1, 3).astype(np.float32) * mask
    return np.clip(img, 0, 1).astype(np.float32)


def synthetic_painting(size: int = 64, seed: int = 1) -> np.ndarray:
    """A 'painting' with strong texture: diagonal coloured strokes plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin((xx * 0.9 + yy * 0.5) / 2.0)
    img = np.stack([stripes, 0.3 + 0.4 * stripes[::-1], 1 - stripes], axis=-1)
    img += rng.normal(0, 0.08, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


TINY_CONFIG = StyleConfig(
    network="tiny",
    pooling="avg",
    content_layer="conv2",
    style_layers=(("conv1", 1.0), ("conv2", 1.0), ("conv3", 1.0)),
    content_weight=1.0,
    style_weight=1e-2,
    tv_weight=1.0,
)
