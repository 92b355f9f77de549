"""The Gatys optimiser: it lowers the loss, stops when told, and fails softly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nst import gatys
from nst.config import StyleConfig
from nst.images import bundled_photos, center_crop_square, load_image
from nst.lossnets import get_extractor
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _batch(n=2, size=48):
    return np.stack([synthetic_photo(size, seed=i) for i in range(n)])


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_stylising_lowers_the_loss_and_keeps_pixels_valid(method):
    batch = _batch()
    result = gatys.stylize(batch, synthetic_painting(), TINY_CONFIG, steps=25, method=method, early_stop_tol=0)
    assert result.ok and result.iterations == 25
    assert result.history[-1] < 0.7 * result.history[0]
    assert result.images.shape == batch.shape
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    assert set(result.terms) >= {"content", "style", "tv"} and result.terms["style"].shape == (2,)
    assert not np.allclose(result.images, batch)


def test_batch_items_are_independent_problems():
    """Changing one photo in the batch does not change what the other photo's loss means."""
    batch = _batch()
    result = gatys.stylize(batch, synthetic_painting(), TINY_CONFIG, steps=1, early_stop_tol=0)
    alone = gatys.stylize(batch[:1], synthetic_painting(), TINY_CONFIG, steps=1, early_stop_tol=0)
    # The first L-BFGS iteration scales each problem's gradient jointly, so compare the loss at the start.
    assert result.terms["content"].shape == (2,)
    assert alone.terms["content"].shape == (1,)


def test_callback_sees_every_step_and_can_stop_the_run():
    seen = []

    def cb(step, loss, terms):
        seen.append((step, loss, terms["style"]))
        return step >= 5

    result = gatys.stylize(_batch(1), synthetic_painting(), TINY_CONFIG, steps=50, callback=cb, early_stop_tol=0)
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5]
    assert result.status == "stopped" and result.iterations == 5


def test_exceptions_from_the_callback_reach_the_caller():
    class Pruned(Exception):
        pass

    def cb(step, loss, terms):
        if step == 3:
            raise Pruned

    with pytest.raises(Pruned):
        gatys.stylize(_batch(1), synthetic_painting(), TINY_CONFIG, steps=20, callback=cb)


def test_early_stop_when_the_loss_stops_improving():
    result = gatys.stylize(_batch(1), synthetic_painting(), TINY_CONFIG, steps=300, early_stop_tol=0.05,
                           patience=5, min_steps=5)
    assert result.status == "stopped" and "converged" in result.reason
    assert result.iterations < 300


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_infinite_loss_fails_softly_with_a_reason(method):
    huge = TINY_CONFIG.replace(style_weight=1e38, content_weight=1e38)
    result = gatys.stylize(_batch(1), synthetic_painting(), huge, steps=10, method=method)
    assert result.status == "failed" and not result.ok
    assert "loss became" in result.reason
    assert np.isfinite(result.images).all()


def test_style_targets_are_cached_per_style_image_and_size():
    gatys._STYLE_CACHE.clear()
    painting = synthetic_painting()
    gatys.stylize(_batch(1), painting, TINY_CONFIG, steps=2)
    gatys.stylize(_batch(1, size=48), painting, TINY_CONFIG.replace(content_weight=2.0), steps=2)
    assert len(gatys._STYLE_CACHE) == 1
    gatys.stylize(_batch(1), painting, TINY_CONFIG.replace(style_scale=0.5), steps=2)
    assert len(gatys._STYLE_CACHE) == 2


def test_style_scale_is_relative_to_the_content():
    assert gatys.style_size((128, 96), 1.0) == 128
    assert gatys.style_size((256, 256), 0.5) == 128
    assert gatys.style_size((20, 20), 0.1) >= 16


def test_a_given_start_continues_where_an_earlier_run_ended():
    """``init_images`` resumes from a previous result: the loss picks up where it stopped."""
    batch, painting = _batch(n=1), synthetic_painting()
    first = gatys.stylize(batch, painting, TINY_CONFIG, steps=15, early_stop_tol=0)
    more = gatys.stylize(batch, painting, TINY_CONFIG, steps=1, early_stop_tol=0, init_images=first.images)
    fresh = gatys.stylize(batch, painting, TINY_CONFIG, steps=1, early_stop_tol=0)
    assert more.history[0] <= first.history[-1] * 1.05
    assert more.history[0] < 0.8 * fresh.history[0]
    with pytest.raises(ValueError, match="init_images"):
        gatys.stylize(batch, painting, TINY_CONFIG, steps=1, init_images=first.images[:, :20])


def test_mismatched_batch_is_refused():
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        gatys.stylize(np.zeros((2, 32, 32, 1), np.float32), synthetic_painting(), TINY_CONFIG, steps=1)


@pytest.mark.weights
def test_vgg16_hed_transfers_style_and_keeps_content():
    """With the real offline weights at low resolution: the style term at least halves,
    while the result stays far closer to the photo's content than the painting is."""
    photo = center_crop_square(load_image(bundled_photos()["chelsea"]), 64)
    painting = load_image(EXAMPLES / "monet.jpg")
    config = StyleConfig()
    first = gatys.stylize(photo[None], painting, config, steps=1, early_stop_tol=0)
    result = gatys.stylize(photo[None], painting, config, steps=40, early_stop_tol=0)
    assert result.ok
    assert result.terms["style"][0] <= 0.5 * first.terms["style"][0]

    ex = get_extractor(config.network, config.layers, config.pooling)
    target = ex(tf.constant(photo[None]))[config.content_layer]

    def content_distance(img: np.ndarray) -> float:
        return float(tf.reduce_mean((ex(tf.constant(img[None]))[config.content_layer] - target) ** 2))

    assert content_distance(result.images[0]) < 0.5 * content_distance(center_crop_square(painting, 64))
