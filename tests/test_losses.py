"""Losses against hand-written NumPy references, and their scale invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nst import losses
from nst.images import bundled_photos, center_crop_square, load_image, resize
from nst.lossnets import get_extractor
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _np_gram(f):
    b, h, w, c = f.shape
    flat = f.reshape(b, h * w, c)
    return np.einsum("bnc,bnd->bcd", flat, flat) / (h * w)


def test_gram_matches_reference():
    f = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype(np.float32)
    np.testing.assert_allclose(losses.gram(tf.constant(f)).numpy(), _np_gram(f), rtol=1e-5)


def test_style_layer_loss_matches_reference():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    target = _np_gram(rng.normal(size=(1, 8, 8, 3)).astype(np.float32))
    expected = ((_np_gram(f) - target) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(losses.style_layer_loss(tf.constant(f), tf.constant(target)).numpy(), expected, rtol=1e-5)


def test_content_loss_matches_reference():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 4, 4, 3)).astype(np.float32), rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.content_loss(tf.constant(a), tf.constant(b)).numpy(),
                               ((a - b) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_total_variation_matches_reference():
    x = np.random.default_rng(3).uniform(size=(1, 5, 6, 3)).astype(np.float32)
    expected = np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()
    np.testing.assert_allclose(losses.total_variation(tf.constant(x)).numpy(), [expected], rtol=1e-5)
    flat = np.full((1, 5, 6, 3), 0.3, np.float32)
    assert losses.total_variation(tf.constant(flat)).numpy()[0] == 0.0


def test_total_is_weighted_sum_of_terms():
    ex = get_extractor("tiny", TINY_CONFIG.layers, "avg")
    img = tf.constant(synthetic_photo(32)[None])
    other = tf.constant(synthetic_photo(32, seed=5)[None])
    feats = ex(img)
    grams = losses.style_targets(ex(tf.constant(synthetic_painting(32)[None])), TINY_CONFIG.active_style_layers)
    total, terms = losses.config_loss(feats, img, ex(other)["conv2"], grams, TINY_CONFIG)
    c = TINY_CONFIG
    manual = (c.content_weight * terms["content"] + c.style_weight * sum(
        w * terms[f"style:{n}"] for n, w in c.style_layers) + c.tv_weight * terms["tv"])
    np.testing.assert_allclose(total.numpy(), manual.numpy(), rtol=1e-5)
    assert set(terms) == {"content", "style", "tv", "style:conv1", "style:conv2", "style:conv3"}


def _terms_at(size: int, extractor, config, photo, result, style):
    photo, result, style = (resize(x, (size, size)) for x in (photo, result, style))
    grams = losses.style_targets(extractor(tf.constant(style[None])), config.active_style_layers)
    target = extractor(tf.constant(photo[None]))[config.content_layer]
    _, terms = losses.config_loss(extractor(tf.constant(result[None])), tf.constant(result[None]), target, grams, config)
    return {k: float(v.numpy()[0]) for k, v in terms.items()}


def test_content_and_style_terms_are_scale_free_on_the_same_picture():
    """The same config on the same real pictures at 128 and 256 px gives terms within 10%."""
    photos = bundled_photos()
    photo = center_crop_square(load_image(photos["astronaut"]), 256)
    result = center_crop_square(load_image(photos["coffee"]), 256)
    style = center_crop_square(load_image(EXAMPLES / "monet.jpg"), 256)
    ex = get_extractor("tiny", TINY_CONFIG.layers, "avg")
    small = _terms_at(128, ex, TINY_CONFIG, photo, result, style)
    large = _terms_at(256, ex, TINY_CONFIG, photo, result, style)
    for name in ("content", "style"):
        assert large[name] == pytest.approx(small[name], rel=0.10), name


def test_total_variation_measures_pixel_speckle_at_any_size():
    """TV is a per-pixel mean: speckle costs the same at 64 and 256 px (smooth shapes cost less when finer)."""
    rng = np.random.default_rng(0)
    for size in (64, 256):
        speckle = rng.uniform(0.4, 0.6, size=(1, size, size, 3)).astype(np.float32)
        assert losses.total_variation(tf.constant(speckle)).numpy()[0] == pytest.approx(2 * 0.2 / 3, rel=0.05)
