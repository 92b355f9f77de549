"""The judge's normalisation, its measurements against hand-made references, and its record."""

from __future__ import annotations

import numpy as np
import pytest

from nst.errors import ConfigError
from nst.judge import (
    Judge,
    JudgeSpec,
    band_ratio,
    painting_in_frame,
    sliced_distance,
    sorted_projections,
    structure_distance,
)
from tests.conftest import synthetic_painting, synthetic_photo


@pytest.fixture(scope="module")
def judge() -> Judge:
    photos = np.stack([synthetic_photo(48, seed=i) for i in range(2)])
    return Judge(JudgeSpec.for_network("tiny"), photos, synthetic_painting(64))


def test_doing_nothing_scores_one_for_style_and_zero_for_content(judge):
    s = judge.score(judge.photos)
    np.testing.assert_allclose(s.style, 1.0, atol=1e-6)
    np.testing.assert_allclose(s.content, 0.0, atol=1e-6)


def test_the_painting_itself_scores_one_for_content_and_far_better_than_the_photo_for_style(judge):
    frames = np.stack([judge.frame] * len(judge.photos))
    s = judge.score(frames)
    np.testing.assert_allclose(s.content, 1.0, atol=1e-6)
    assert np.all(s.style < 0.35), s.style


def test_a_flat_picture_does_not_keep_the_photos_content(judge):
    flat = np.ones_like(judge.photos) * judge.photos.mean(axis=(1, 2), keepdims=True)
    s = judge.score(flat)
    assert np.all(s.content > 0.8), s.content


def test_content_falls_steadily_as_the_photo_fades_into_the_painting(judge):
    frames = np.stack([judge.frame] * len(judge.photos))
    contents = [judge.score((1 - a) * judge.photos + a * frames).content.mean() for a in (0.0, 0.3, 0.6, 0.9)]
    assert contents == sorted(contents), contents
    assert contents[-1] > 0.5


def test_pixel_speckle_raises_the_noise_score_above_the_limit(judge):
    rng = np.random.default_rng(0)
    clean = judge.score(judge.photos).noise
    speckled = judge.score(np.clip(judge.photos + rng.normal(0, 0.15, judge.photos.shape), 0, 1)).noise
    assert np.all(clean <= 1.0 + 1e-6)
    assert np.all(speckled > judge.spec.noise_limit), speckled


def test_structure_distance_reference_values():
    photo = synthetic_painting(64, seed=3)  # textured: structure everywhere
    assert structure_distance(photo, photo) == pytest.approx(0.0, abs=1e-9)
    assert structure_distance(1.0 - photo, photo) > 1.5  # inverted contrast
    rng = np.random.default_rng(1)
    unrelated = rng.uniform(0, 1, photo.shape).astype(np.float32)
    assert 0.8 < structure_distance(unrelated, photo) < 1.2


def test_sliced_distance_of_a_shifted_distribution_is_the_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 1))
    d = np.ones((1, 1))
    q1, q2 = sorted_projections(x, d, 64), sorted_projections(x + 0.5, d, 64)
    assert sliced_distance(q1, q2) == pytest.approx(0.5, rel=1e-6)
    assert sliced_distance(q1, q1) == 0.0


def test_band_ratio_sees_white_noise_but_not_smooth_pictures():
    smooth = synthetic_photo(64)
    noise = np.random.default_rng(0).uniform(0, 1, smooth.shape)
    assert band_ratio(noise) > 2 * band_ratio(smooth)


def test_painting_in_frame_fills_the_frame():
    framed = painting_in_frame(synthetic_painting(64)[:, :40], (30, 50))
    assert framed.shape == (30, 50, 3)


def test_spec_round_trips_and_refuses_another_judge():
    spec = JudgeSpec.for_network("tiny")
    assert JudgeSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="would not be comparable"):
        JudgeSpec.from_dict({**spec.to_dict(), "version": 99})
    with pytest.raises(ConfigError, match="no layer"):
        JudgeSpec(network="tiny", layers=("block1_conv1",))


def test_results_of_the_wrong_shape_are_refused(judge):
    with pytest.raises(ValueError, match="shape"):
        judge.score(judge.photos[:1])


@pytest.mark.weights
def test_default_judge_on_vgg16_hed_ranks_a_blend_between_photo_and_painting():
    photos = np.stack([synthetic_photo(64, seed=i) for i in range(2)])
    j = Judge(JudgeSpec(), photos, synthetic_painting(96))
    frames = np.stack([j.frame] * 2)
    half = j.score(0.5 * photos + 0.5 * frames)
    assert np.all(half.style < 1.0) and np.all(half.content > 0.0)
