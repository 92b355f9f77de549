"""The judge's measurements (:mod:`nst.judge`), plain NumPy and SciPy on pictures in [0, 1].

Contrast-structure distance of luminance over a few octaves (the content score), the
ratio of the finest frequency band to the next (the noise score), and the sliced
Wasserstein distance between two sets of samples read from sorted random projections
(the colour part of the style score, and the deep part with a loss network).
"""

from __future__ import annotations

import numpy as np

_REC601 = np.array([0.299, 0.587, 0.114], np.float32)


def luminance(images: np.ndarray) -> np.ndarray:
    return images @ _REC601


def _downsample2(img: np.ndarray) -> np.ndarray:
    """2x2 box average (odd edges dropped): the pyramid step of multi-scale SSIM."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    img = img[:h, :w]
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def structure_distance(result: np.ndarray, photo: np.ndarray, scales: int = 3, sigma: float = 1.5) -> float:
    """``1 - cs``: contrast-structure similarity of luminance over ``scales`` octaves.

    ``cs = (2 cov + C) / (var_x + var_y + C)`` with Gaussian windows and ``C = 0.01^2``
    (SSIM's smaller constant, so the faint structure of a 128 px photo counts), averaged per scale with weights equal to the photo's local standard
    deviation, then averaged over scales. 0 when identical, about 1 when unrelated, up to
    2 when inverted. A flat result scores about 1, not 0 (the plain structure term would
    reward a flat image).
    """
    from scipy.ndimage import gaussian_filter

    c2 = 0.01**2
    x, y = luminance(result).astype(np.float64), luminance(photo).astype(np.float64)
    values = []
    for s in range(scales):
        if s:
            x, y = _downsample2(x), _downsample2(y)
        if min(x.shape) < 8:
            break
        mx, my = gaussian_filter(x, sigma), gaussian_filter(y, sigma)
        vx = np.maximum(gaussian_filter(x * x, sigma) - mx * mx, 0.0)
        vy = np.maximum(gaussian_filter(y * y, sigma) - my * my, 0.0)
        cov = gaussian_filter(x * y, sigma) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        weight = np.sqrt(vy) + 1e-6
        values.append(float(np.sum(weight * cs) / np.sum(weight)))
    return 1.0 - float(np.mean(values))


def band_ratio(image: np.ndarray) -> float:
    """Finest-band energy over the next band's (difference-of-Gaussians), averaged over RGB.

    About constant for pictures with a natural falling spectrum; pixel speckle raises it.
    """
    from scipy.ndimage import gaussian_filter

    ratios = []
    for c in range(image.shape[-1]):
        ch = image[..., c].astype(np.float64)
        g1, g2 = gaussian_filter(ch, 1.0), gaussian_filter(ch, 2.0)
        fine = np.mean(np.abs(ch - g1))
        mid = np.mean(np.abs(g1 - g2))
        ratios.append((fine + 1e-4) / (mid + 1e-4))
    return float(np.mean(ratios))


def unit_directions(dim: int, count: int, seed: int) -> np.ndarray:
    """Fixed random unit directions ``(dim, count)`` (same seed → same judge)."""
    rng = np.random.default_rng([seed, dim, count])
    p = rng.normal(size=(dim, count))
    return p / np.linalg.norm(p, axis=0, keepdims=True)


def sorted_projections(samples: np.ndarray, directions: np.ndarray, quantiles: int) -> np.ndarray:
    """``(quantiles, K)``: the distribution of each projection, read at evenly spaced levels.

    Level ``(k + 1/2) / quantiles`` of the sorted projections (nearest rank), so two sample
    sets of different sizes compare at the same points of their distributions.
    """
    proj = np.sort(samples.astype(np.float32) @ directions.astype(np.float32), axis=0)
    n = proj.shape[0]
    ranks = np.minimum(((np.arange(quantiles) + 0.5) / quantiles * n).astype(int), n - 1)
    return proj[ranks].astype(np.float64)


def sliced_distance(q_a: np.ndarray, q_b: np.ndarray) -> float:
    """Sliced 2-Wasserstein distance from two :func:`sorted_projections` tables."""
    return float(np.sqrt(np.mean((q_a - q_b) ** 2)))


def lab_pixels(images: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(images, 0.0, 1.0)).reshape(-1, 3)


def painting_in_frame(painting: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The painting resized and centre-cropped to fill a ``(h, w)`` frame."""
    from nst.images import resize

    h, w = hw
    ph, pw = painting.shape[:2]
    scale = max(h / ph, w / pw)
    big = resize(painting, (max(w, round(pw * scale)), max(h, round(ph * scale))))
    top, left = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[top : top + h, left : left + w]
