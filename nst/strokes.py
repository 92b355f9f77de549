"""How big a picture's strokes are, relative to the picture: one number per picture.

A look shown at 128 px and delivered at 1024 px is the same look only if its strokes
cover the same share of the picture. :func:`stroke_wavelength` measures that share: the
typical wavelength of the luminance edges, as a fraction of the picture's long side, so
the same picture at 128 px and at 1024 px gives the same number and finer strokes a
smaller one.

How: the picture is resized to a common view (long side :data:`VIEW`), its luminance
windowed (Hann) and Fourier transformed, and the power spectrum ``P(f)`` averaged over
rings of equal frequency ``f`` in cycles per long side. Natural pictures have
``P(f) ~ f^-2`` (Field 1987, "Relations between the statistics of natural images and
the response properties of cortical cells"; van der Schaaf & van Hateren 1996), so the
*gradient* spectrum ``f^2 P(f)`` is about flat for a photo, and strokes show up as the
band where it rises. Its power-weighted mean frequency ``f_c`` over ``band`` is the
typical edge frequency; the statistic is ``1 / f_c``. The band runs from 4 cycles per
long side (the picture's layout, not its strokes) to 96 (three quarters of the view's
limit, below the resampling filter's roll-off), so strokes 4-8 times finer than a
128 px render's still register.

``reference`` (the photo, at the size the result was painted at) turns it into the
wavelength of the edges the *style added*: only the gradient energy above the photo's,
``f^2 max(P_result(f) - P_photo(f), 0)``, counts. Photo detail a render keeps or restores
then weighs nothing, and detail it lost (blur) does not count as a stroke either.
"""

from __future__ import annotations

import numpy as np

#: Long side of the common view every picture is measured at.
VIEW = 256
#: Frequencies measured, in cycles per long side (see the module docstring).
BAND = (4.0, 96.0)

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _view(img: np.ndarray, side: int) -> np.ndarray:
    from nst.images import resize_longest

    img = np.asarray(img, np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return resize_longest(img, side) @ _LUMA


def radial_spectrum(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(f, P)``: ring-averaged power of a grey picture (H, W), ``f`` in cycles per long side (1, 2, ...)."""
    g = np.asarray(gray, np.float64)
    h, w = g.shape
    g = (g - g.mean()) * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(g)) ** 2
    side = max(h, w)
    fy = np.fft.fftfreq(h) * side
    fx = np.fft.fftfreq(w) * side
    radius = np.hypot(fy[:, None], fx[None, :])
    ring = np.rint(radius).astype(int)
    n = int(side // 2)
    counts = np.bincount(ring.ravel(), minlength=n + 1)[1:n + 1]
    sums = np.bincount(ring.ravel(), weights=power.ravel(), minlength=n + 1)[1:n + 1]
    return np.arange(1, n + 1, dtype=np.float64), sums / np.maximum(counts, 1)


def stroke_wavelength(image: np.ndarray, reference: np.ndarray | None = None, *, view: int = VIEW,
                      band: tuple[float, float] = BAND) -> float:
    """Typical wavelength of the picture's edges (those it adds to ``reference``), as a fraction of its long side.

    See the module docstring. ``image`` and ``reference`` are (H, W, 3) or (H, W) in
    [0, 1], any size, each measured at ``view``. Returns ``nan`` for a flat picture
    (or one that adds nothing to ``reference``).
    """
    f, p = radial_spectrum(_view(image, view))
    if reference is not None:
        fr, pr = radial_spectrum(_view(reference, view))
        p = np.maximum(p - np.interp(f, fr, pr), 0.0)
    keep = (f >= band[0]) & (f <= band[1])
    energy = f[keep] ** 2 * p[keep]
    total = energy.sum()
    if not total > 0:
        return float("nan")
    return float(total / (f[keep] * energy).sum())
