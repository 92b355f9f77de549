"""nst.viewsize and nst.strokes on synthetic pictures with tiny stand-in "networks" (no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from nst.images import resize
from nst.strokes import stroke_wavelength
from nst.viewsize import (
    DETAILS,
    ENLARGE_DETAILS,
    box_mean,
    enlarge,
    guided_slope,
    luminance,
    paint_at_scale,
    work_shape,
)


def waves(n: int, cycles: float, m: int | None = None) -> np.ndarray:
    """A grey wavy pattern with ``cycles`` periods across the long side, any size: the same picture at every size."""
    m = m or n
    side = max(n, m)
    y, x = np.mgrid[0:n, 0:m] / side
    img = 0.5 + 0.25 * np.sin(2 * np.pi * cycles * x + 3 * np.sin(4 * np.pi * y)) + 0.2 * np.sin(2.6 * np.pi * cycles * y)
    return np.repeat(np.clip(img, 0, 1)[..., None], 3, axis=-1).astype(np.float32)


def edges(n: int, m: int | None = None) -> np.ndarray:
    """A photo with sharp edges: coloured squares on a checkerboard of 8 px cells."""
    m = m or n
    y, x = np.mgrid[0:n, 0:m]
    check = ((y // 8 + x // 8) % 2).astype(np.float32)
    return np.stack([0.2 + 0.6 * check, 0.3 + 0.4 * check, 0.7 - 0.5 * check], axis=-1)


def warm(img: np.ndarray) -> np.ndarray:
    """A colour map "network": a per-pixel recolouring that keeps the luminance structure."""
    return np.clip(img[..., [2, 0, 1]] * 0.8 + np.array([0.2, 0.05, 0.0], np.float32), 0, 1)


class Recorder:
    def __init__(self, fn=warm):
        self.fn, self.shapes = fn, []

    def __call__(self, img: np.ndarray) -> np.ndarray:
        self.shapes.append(img.shape)
        return self.fn(img)


@pytest.mark.parametrize("detail", DETAILS)
def test_output_has_the_photos_size_and_range(detail):
    photo = edges(150, 200)
    out = paint_at_scale(warm, photo, 64, detail=detail)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_paints_at_the_work_side_rounded_to_the_multiple():
    paint = Recorder()
    paint_at_scale(paint, edges(150, 200), 64, detail="plain")
    assert paint.shapes == [(48, 64, 3)]
    assert work_shape(150, 200, 64) == (48, 64)
    assert work_shape(1000, 30, 128, 8) == (128, 8)


def test_a_photo_no_larger_than_the_work_side_is_painted_directly():
    photo = edges(62, 50)
    paint = Recorder()
    out = paint_at_scale(paint, photo, 64)
    assert paint.shapes == [(64, 52, 3)]  # reflected out to multiples of 4, as trainer stylize pads
    np.testing.assert_allclose(out, warm(photo), atol=1e-6)


def test_identity_network_with_highpass_gives_the_photo_back_on_grey():
    photo = edges(128)[..., :1].repeat(3, axis=-1)
    out = paint_at_scale(lambda x: x, photo, 32, detail="highpass")
    plain = paint_at_scale(lambda x: x, photo, 32, detail="plain")
    assert np.abs(out - photo).mean() < 0.25 * np.abs(plain - photo).mean()


@pytest.mark.parametrize("detail,share", [("guided", 0.6), ("repaint", 0.6), ("pyramid", 0.6),
                                          ("highpass", 0.9)])  # highpass: the photo's contrast, not the painting's
def test_detail_puts_back_edges_a_plain_upsample_loses(detail, share):
    photo = edges(192)
    target = warm(photo)  # what the colour map gives at full size: sharp edges
    plain = paint_at_scale(warm, photo, 48, detail="plain")
    restored = paint_at_scale(warm, photo, 48, detail=detail)
    # on luminance: highpass restores the photo's luminance detail, the same in every channel
    assert np.abs(luminance(restored - target)).mean() < share * np.abs(luminance(plain - target)).mean()


def test_guided_adds_no_photo_detail_where_the_painting_ignores_the_photo():
    photo = edges(192)

    def flat(img):  # paints over everything: one colour
        return np.full_like(img, 0.4)

    out = paint_at_scale(flat, photo, 48, detail="guided")
    np.testing.assert_allclose(out, 0.4, atol=1e-3)
    assert np.abs(paint_at_scale(flat, photo, 48, detail="highpass") - 0.4).max() > 0.1


def test_guided_slope_is_one_for_a_copy_and_zero_for_a_constant():
    g = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    assert np.allclose(guided_slope(g, g[..., None], eps=1e-8), 1.0, atol=1e-3)
    assert np.allclose(guided_slope(g, np.full((40, 40, 1), 0.3, np.float32)), 0.0, atol=1e-6)


def test_box_mean_matches_a_direct_mean():
    x = np.random.default_rng(0).random((20, 30, 2)).astype(np.float32)
    padded = np.pad(x, ((2, 2), (2, 2), (0, 0)), mode="edge")
    assert np.allclose(box_mean(x, 2)[7, 11], padded[7:12, 11:16].mean(axis=(0, 1)), atol=1e-6)


@pytest.mark.parametrize("detail", ENLARGE_DETAILS)
def test_enlarging_a_stored_work_size_painting_equals_painting_at_scale(detail):
    photo = edges(150, 200)
    small = resize(photo, (64, 48))  # what a proxy painted at 64 px
    np.testing.assert_allclose(enlarge(warm(small), photo, detail=detail),
                               paint_at_scale(warm, photo, 64, detail=detail), atol=1e-6)
    with pytest.raises(ValueError, match="enlarge"):
        enlarge(warm(small), photo, detail="repaint")


def test_rejects_an_unknown_detail_and_a_network_that_changes_the_size():
    with pytest.raises(ValueError, match="detail"):
        paint_at_scale(warm, edges(64), 32, detail="sharpen")
    with pytest.raises(ValueError, match="shape"):
        paint_at_scale(lambda x: x[:-4], edges(64), 32)


# -- stroke scale ------------------------------------------------------------------------------

@pytest.mark.parametrize("cycles", [6.0, 12.0, 24.0])
def test_stroke_wavelength_is_the_same_for_a_pattern_at_any_size(cycles):
    values = [stroke_wavelength(waves(n, cycles)) for n in (128, 200, 512)]
    assert max(values) / min(values) < 1.03
    assert values[0] == pytest.approx(1.0 / cycles, rel=0.25)  # the pattern's wobble spreads its frequency


def test_stroke_wavelength_is_smaller_for_finer_strokes():
    coarse, fine = stroke_wavelength(waves(256, 8)), stroke_wavelength(waves(256, 24))
    assert fine < 0.5 * coarse


def test_stroke_wavelength_of_added_strokes_ignores_the_photo_and_blur():
    photo = waves(256, 6)
    strokes = waves(256, 24) - 0.5
    painted = np.clip(photo + 0.5 * strokes, 0, 1)
    assert stroke_wavelength(painted, photo) == pytest.approx(1 / 24 * 1.0, rel=0.2)
    blurred = resize(resize(painted, (32, 32)), (256, 256))  # lost its fine strokes: nothing finer is added
    assert np.isnan(stroke_wavelength(blurred, photo)) or stroke_wavelength(blurred, photo) > 1 / 24


def test_stroke_wavelength_keeps_its_value_for_a_non_square_picture():
    assert stroke_wavelength(waves(96, 10, 128)) == pytest.approx(stroke_wavelength(waves(480, 10, 640)), rel=0.03)
