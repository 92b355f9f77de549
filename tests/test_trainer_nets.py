"""The transformation networks: shapes, the fast variant's cost, shared-statistics normalisation, receptive field."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nst.layers import moments
from tests.conftest import synthetic_photo
from trainer.costs import count_params, forward_flops, receptive_radius
from trainer.nets import (
    ARCHS,
    build_network,
    size_factor,
    stats_model,
)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_is_an_image_the_size_of_the_input(arch):
    model = build_network(arch, 0.125)
    x = synthetic_photo(40, width=64)[None]
    y = model(x).numpy()
    assert y.shape == x.shape
    assert y.min() > 0.0 and y.max() < 1.0  # sigmoid output: a picture in [0, 1]


def test_width_scales_channels_and_parameters():
    small, big = build_network("johnson", 0.25), build_network("johnson", 0.5)
    assert 3.0 < count_params(big) / count_params(small) < 4.2  # conv parameters grow with width squared


def test_same_seed_same_weights_and_different_seed_different():
    a, b, c = (build_network("fast", 0.125, seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.get_weights(), c.get_weights(), strict=True))


def test_fast_network_does_a_small_fraction_of_the_work():
    johnson, fast = build_network("johnson", 1.0), build_network("fast", 1.0)
    ratio = forward_flops(johnson, 256, 256) / forward_flops(fast, 256, 256)
    # A quarter of the pixels alone gives 4x; separable convolutions give most of the rest.
    assert ratio > 10


def test_half_resolution_input_is_exactly_bilinear():
    """The fast network's 2x2 average equals bilinear resizing to half size (half-pixel centres)."""
    x = tf.random.stateless_uniform([1, 24, 40, 3], seed=(1, 2))
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    bilinear = tf.image.resize(x, [12, 20], method="bilinear", antialias=False)
    np.testing.assert_allclose(pooled.numpy(), bilinear.numpy(), atol=1e-6)


def test_two_stage_moments_equal_plain_moments():
    x = tf.random.stateless_normal([2, 30, 50, 5], seed=(3, 4)) * 3 + 1
    mean, var = moments(x)
    ref_mean, ref_var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    np.testing.assert_allclose(mean.numpy(), ref_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.numpy(), ref_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_fixed_statistics_model_reproduces_the_plain_model(arch):
    model = build_network(arch, 0.125, seed=5)
    fixed = build_network(arch, 0.125, fixed_stats=True)
    fixed.set_weights(model.get_weights())
    x = tf.constant(synthetic_photo(48, seed=3, width=64)[None])
    stats = stats_model(model)(x)
    np.testing.assert_allclose(fixed([x, *stats]).numpy(), model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_receptive_radius_bounds_how_far_a_pixel_reaches(arch):
    """With the normalisation statistics held fixed, changing one pixel only changes outputs within the radius."""
    model = build_network(arch, 0.125, seed=7)
    fixed = build_network(arch, 0.125, fixed_stats=True)
    fixed.set_weights(model.get_weights())
    r = receptive_radius(arch)
    side = 2 * r + 8 * size_factor(arch) + 16
    side += (-side) % size_factor(arch)
    x = synthetic_photo(side, seed=1)
    stats = stats_model(model)(tf.constant(x[None]))
    y0 = fixed([tf.constant(x[None]), *stats]).numpy()[0]
    c = side // 2
    x2 = x.copy()
    x2[c, c] = 1.0 - x2[c, c]
    y1 = fixed([tf.constant(x2[None]), *stats]).numpy()[0]
    changed = np.argwhere(np.abs(y1 - y0).max(axis=-1) > 0)
    assert len(changed) > 0
    reach = np.abs(changed - c).max()
    assert reach <= r
    assert reach >= r - 2 * size_factor(arch)  # and it is tight, not a loose guess


@pytest.mark.parametrize("arch", [a for a in ARCHS if a != "magenta"])  # magenta starts from Magenta's result
def test_photo_skip_starts_from_the_photo(arch):
    """With the skip, the untrained network returns the photo (the counterpart of init='content')."""
    x = synthetic_photo(48, seed=2, width=64)[None]
    skip = build_network(arch, 0.125, photo_skip=True)
    np.testing.assert_allclose(skip(x).numpy(), np.clip(x, 1e-3, 1 - 1e-3), atol=1e-5)
    plain = build_network(arch, 0.125)
    assert np.abs(plain(x).numpy() - x).mean() > 0.05
