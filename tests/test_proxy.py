"""The network proxy: Magenta's transformer, painting folded in, normalisation tuned on the test photos."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nst import netproxy as proxy
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo


def _batch(n=2, size=48):
    return np.stack([synthetic_photo(size, seed=i) for i in range(n)]).astype(np.float32)


@pytest.fixture(scope="module")
def start_pictures():
    """What the proxy paints before any step: Magenta's transformer with the painting folded in."""
    model = proxy._pretrained_model(synthetic_painting())
    return np.clip(model(_batch()).numpy(), 0.0, 1.0)


def test_tuning_lowers_the_trial_loss_and_moves_away_from_the_start(start_pictures):
    result = proxy.tune_network(_batch(), synthetic_painting(), TINY_CONFIG, steps=12, lr=5e-2)
    assert result.ok and result.iterations == 12 and result.reason == "reached 12 steps"
    assert result.history[-1] < 0.8 * result.history[0]
    assert result.images.shape == (2, 48, 48, 3)
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    assert set(result.terms) >= {"content", "style", "tv"} and result.terms["style"].shape == (2,)
    moved = float(np.abs(result.images - start_pictures).mean())
    assert moved > 0.005, "twelve steps at a large learning rate must change the pictures"


def test_the_loss_decides_where_it_goes(start_pictures):
    """More content weight keeps the pictures nearer the photo than more style weight does."""
    photos = _batch()
    content_heavy = replace(TINY_CONFIG, content_weight=1e4, style_weight=1e-2)
    style_heavy = replace(TINY_CONFIG, content_weight=1e-2, style_weight=1e4)
    a = proxy.tune_network(photos, synthetic_painting(), content_heavy, steps=15, lr=5e-2).images
    b = proxy.tune_network(photos, synthetic_painting(), style_heavy, steps=15, lr=5e-2).images
    assert np.abs(a - photos).mean() < np.abs(b - photos).mean()


def test_only_the_normalisation_layers_learn():
    model = proxy._pretrained_model(synthetic_painting())
    names = {v.path for v in model.trainable_variables}
    assert names and all("norm" in n for n in names), names
    assert len(model.trainable_variables) == 2 * 13  # gamma and beta of 13 normalisation layers


def test_the_photo_blend_learns_alongside_the_normalisation_and_serves_a_content_heavy_loss():
    model = proxy._pretrained_model(synthetic_painting(), blend=True)
    assert len(model.trainable_variables) == 2 * 13 + 1
    photos = _batch()
    content_heavy = replace(TINY_CONFIG, content_weight=1e3, style_weight=1e-3)
    plain = proxy.tune_network(photos, synthetic_painting(), content_heavy, steps=15, lr=5e-2).images
    blended = proxy.tune_network(photos, synthetic_painting(), content_heavy, steps=15, lr=5e-2, blend=True).images
    assert np.abs(blended - photos).mean() < np.abs(plain - photos).mean()  # three numbers buy the photo's colours back


def test_callbacks_see_every_step_and_can_stop_it():
    seen_loss, seen_images = [], []

    def on_loss(step, loss, terms):
        seen_loss.append((step, loss, sorted(terms)))

    def on_images(step, images):
        seen_images.append((step, images.shape))
        return step == 3

    result = proxy.tune_network(_batch(), synthetic_painting(), TINY_CONFIG, steps=10, callback=on_loss,
                                image_callback=on_images)
    assert result.status == "stopped" and result.iterations == 3
    assert [s for s, _, _ in seen_loss] == [1, 2, 3] and [s for s, _ in seen_images] == [1, 2, 3]
    assert {"content", "style", "tv"} <= set(seen_loss[0][2])


def test_a_loss_that_blows_up_fails_softly_with_the_last_finite_pictures():
    huge = replace(TINY_CONFIG, style_weight=1e38, content_weight=1e38)
    result = proxy.tune_network(_batch(), synthetic_painting(), huge, steps=5)
    assert result.status == "failed" and "step" in result.reason
    assert np.isfinite(result.images).all()


@pytest.mark.parametrize("shape", [(2, 50, 48, 3), (48, 48, 3), (2, 48, 48, 1)])
def test_pictures_the_network_cannot_take_are_refused(shape):
    with pytest.raises(ValueError):
        proxy.tune_network(np.zeros(shape, np.float32), synthetic_painting(), TINY_CONFIG, steps=1)


def test_a_reused_network_starts_again_from_magentas_weights():
    """Trials with the same layers share one compiled network; each must start from step 0, not the last trial's end."""
    photos, painting = _batch(), synthetic_painting()
    first = proxy.tune_network(photos, painting, TINY_CONFIG, steps=6, lr=5e-2)
    proxy.tune_network(photos, painting, replace(TINY_CONFIG, style_weight=1.0), steps=6, lr=1e-1)
    again = proxy.tune_network(photos, painting, TINY_CONFIG, steps=6, lr=5e-2)
    np.testing.assert_allclose(again.images, first.images, atol=1e-5)
    np.testing.assert_allclose(again.history, first.history, rtol=1e-5)


def test_training_a_network_proxy_trial_takes_the_proxys_rate_unless_typed():
    from trainer.recipe import PROXY_MATCHED_STEPS, RECIPES, proxy_matched_settings

    cpu = RECIPES["cpu"].settings()
    network = {"kind": "network", "lr": 0.03, "steps": 40}
    assert proxy_matched_settings(network, cpu, {}) == {"lr": 0.03, "steps": 40}  # the proxy's own optimisation
    assert proxy_matched_settings(network, cpu, {"lr": 1e-3}) == {"steps": 40}
    assert proxy_matched_settings({"kind": "network", "lr": 0.03}, cpu, {})["steps"] == PROXY_MATCHED_STEPS
    assert proxy_matched_settings(network, cpu, {"lr": 1e-3, "steps": 9}) == {}
    assert proxy_matched_settings({"kind": "gatys"}, cpu, {}) == {}
    assert proxy_matched_settings(None, cpu, {}) == {}
    assert proxy_matched_settings(network, RECIPES["paper"].settings(), {}) == {}  # johnson from scratch: not the proxy's network
    blended = {**network, "blend": True}  # a study made with the photo blend gives its runs the blend
    assert proxy_matched_settings(blended, cpu, {}) == {"lr": 0.03, "steps": 40, "photo_skip": True}
    assert "photo_skip" not in proxy_matched_settings(blended, cpu, {"photo_skip": True})  # typed: left alone


def test_more_steps_than_the_proxy_spread_the_proxys_rate_over_them():
    from trainer.recipe import RECIPES, describe_match, proxy_matched_settings

    cpu = RECIPES["cpu"].settings()
    network = {"kind": "network", "lr": 0.02, "steps": 50}
    # 200 steps cover the proxy's 50 steps at 0.02: a quarter of the rate (measured: 200 steps at the full rate drift)
    assert proxy_matched_settings(network, cpu, {"steps": 200}) == {"lr": 0.005}
    assert proxy_matched_settings(network, cpu, {"steps": 50})["lr"] == 0.02
    assert proxy_matched_settings(network, cpu, {"steps": 20})["lr"] == 0.02  # fewer steps never raise the rate
    assert proxy_matched_settings(network, cpu, {"steps": 200, "lr": 0.02}) == {}  # a typed rate wins
    line = describe_match({"lr": 0.005}, network)
    assert "lr 0.005" in line and "0.02 over 50 steps" in line
    assert describe_match({"lr": 0.02, "steps": 50}, network).endswith("lr 0.02, steps 50 (--lr/--steps override)")


def test_crops_are_pieces_of_each_photo_at_seeded_places():
    photos = _batch(n=2, size=64)
    sets = proxy.crop_batches(photos, 16, 3, seed=5)
    assert len(sets) == 3 and all(s.shape == (2, 16, 16, 3) for s in sets)
    for s in sets:
        for i, piece in enumerate(s):  # each crop is found in its own photo
            found = any(np.array_equal(piece, photos[i, y:y + 16, x:x + 16]) for y in range(49) for x in range(49))
            assert found
    again = proxy.crop_batches(photos, 16, 3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(sets, again, strict=True))
    assert not np.array_equal(sets[0], sets[1]), "the sets must look at different places"


def test_tuning_at_the_paint_side_learns_on_crops_and_paints_the_whole_photos():
    """The study's paint side: crops for the steps, whole photos painted at the paint side for the pictures."""
    photos = _batch(n=2, size=64)
    seen: list[tuple[int, tuple[int, ...]]] = []
    view = [synthetic_photo(96, seed=7).astype(np.float32)]
    result = proxy.tune_network(photos, synthetic_painting(), TINY_CONFIG, steps=9, lr=5e-2, crop=32,
                                image_steps=(3, 6), image_callback=lambda k, im: seen.append((k, im.shape)),
                                view=view)
    assert result.ok and result.iterations == 9
    assert result.history[-1] < result.history[0]
    # pictures only where asked (painting whole photos costs more than a step), always at the end
    assert seen == [(3, (2, 64, 64, 3)), (6, (2, 64, 64, 3))]
    assert result.images.shape == (2, 64, 64, 3)
    # the whole photos, painted by the tuned network at their own (paint) size
    net = list(proxy._COMPILED.values())[-1]
    assert np.abs(result.images - np.stack([proxy.paint(net.model, p) for p in photos])).max() < 1e-4
    # a larger photo is painted at the paint side and enlarged, as trainer stylize paints it
    from nst.viewsize import paint_at_scale

    assert result.view_images[0].shape == (96, 96, 3)
    assert np.abs(result.view_images[0] - paint_at_scale(lambda x: proxy.paint(net.model, x), view[0], 64)).max() < 1e-4


@pytest.mark.parametrize("crop", [30, 80])
def test_a_crop_the_photos_cannot_give_is_refused(crop):
    with pytest.raises(ValueError, match="crop"):
        proxy.tune_network(_batch(n=1, size=64), synthetic_painting(), TINY_CONFIG, steps=1, crop=crop)
