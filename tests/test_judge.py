"""The judge: each score against a reference computed another way, its record, and the refusal to mix judges.

Most tests bind the judge with a stand-in for Magenta's style predictor (``_mean_colour``:
an image's mean RGB, whose distances can be worked out by hand) and the ``tiny`` network
in place of ImageNet VGG16 for the Gram view (:data:`SPEC`), or with a single-network judge
on ``tiny``; the tests that run the real networks are marked ``weights``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nst.errors import ConfigError
from nst.judge import COMBINES, GRAM_LAYERS, JUDGE_VERSION, MAGENTA, Judge, JudgeSpec, available, describe
from nst.measures import band_ratio, painting_in_frame, sliced_distance, sorted_projections, structure_distance
from tests.conftest import synthetic_painting, synthetic_photo

#: The three-view judge with the tiny network in the Gram view: no weights needed.
SPEC = JudgeSpec(gram_network="tiny", gram_layers=("conv1", "conv2", "conv3"), gram_share=1 / 3)


def _mean_colour(image: np.ndarray) -> np.ndarray:
    """A stand-in style encoder whose distances are known: linear in the pixels."""
    return np.asarray(image, np.float64).reshape(-1, 3).mean(axis=0)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.stack([synthetic_photo(48, seed=i) for i in range(2)])


@pytest.fixture(scope="module")
def judge(photos) -> Judge:
    return Judge(SPEC, photos, synthetic_painting(64), encoder=_mean_colour)


@pytest.fixture(scope="module")
def tiny_judge(photos) -> Judge:
    return Judge(JudgeSpec.for_network("tiny"), photos, synthetic_painting(64))


def _blend(judge: Judge, a: float) -> np.ndarray:
    return (1 - a) * judge.photos + a * np.stack([judge.frame] * len(judge.photos))


# -- style -------------------------------------------------------------------------------

def test_the_deep_style_part_is_the_encoder_distance_over_the_photos(judge):
    """With a linear encoder, a blend ``(1 - a) photo + a painting`` is ``1 - a`` of the way: an exact reference."""
    for a in (0.25, 0.5, 0.9):
        deep = judge.score(_blend(judge, a)).parts["style_deep"]
        np.testing.assert_allclose(deep, 1 - a, rtol=1e-4)


def test_the_painting_vector_comes_from_the_painting_cropped_to_the_frame(photos):
    """Left and right halves of a painting differ in colour; the square frame sees the middle."""
    painting = np.zeros((40, 120, 3), np.float32)
    painting[:, :60, 0] = 1.0  # red left half, blue right half
    painting[:, 60:, 2] = 1.0
    seen: list[np.ndarray] = []

    def encoder(img: np.ndarray) -> np.ndarray:
        seen.append(img)
        return _mean_colour(img)

    j = Judge(SPEC, photos, painting, encoder=encoder)
    frame = seen[0]
    assert frame.shape == (48, 48, 3)
    np.testing.assert_allclose(_mean_colour(frame), [0.5, 0.0, 0.5], atol=0.05)
    np.testing.assert_allclose(j.frame, frame)


def test_each_photo_is_compared_with_its_own_reference(judge):
    """Scoring photo 1 in photo 0's place must not give 'doing nothing' scores: catches a mixed-up order."""
    swapped = judge.photos[::-1].copy()
    s = judge.score(swapped)
    expected = [np.linalg.norm(_mean_colour(judge.photos[1 - i]) - _mean_colour(judge.frame))
                / np.linalg.norm(_mean_colour(judge.photos[i]) - _mean_colour(judge.frame)) for i in range(2)]
    np.testing.assert_allclose(s.parts["style_deep"], expected, rtol=1e-4)
    assert np.all(s.content > 0.3), s.content


def test_colour_part_is_the_sliced_lab_distance_over_the_photos(judge):
    """The colour part against the distance worked out here with skimage's Lab and fresh directions."""
    from skimage.color import rgb2lab

    from nst.measures import unit_directions

    dirs = np.concatenate([np.eye(3), unit_directions(3, 13, judge.spec.seed)], axis=1)
    painting_q = sorted_projections(rgb2lab(judge.painting).reshape(-1, 3), dirs, 64)
    result = _blend(judge, 0.5)
    got = judge.score(result).parts["style_colour"]
    for i in range(2):
        num = sliced_distance(sorted_projections(rgb2lab(result[i]).reshape(-1, 3), dirs, 64), painting_q)
        den = sliced_distance(sorted_projections(rgb2lab(judge.photos[i]).reshape(-1, 3), dirs, 64), painting_q)
        assert got[i] == pytest.approx(num / den, rel=1e-4)
    assert np.all((got > 0.05) & (got < 0.95)), got


def test_the_gram_part_is_the_gram_matrix_distance_over_the_photos(judge):
    """Against Gram matrices computed here from the network's features, layer by layer."""
    import tensorflow as tf

    def grams(images):
        out = judge.gram_extractor(tf.constant(images, tf.float32))
        return {n: np.einsum("bnc,bnd->bcd", *[out[n].numpy().reshape(len(images), -1, out[n].shape[-1])] * 2)
                / (out[n].shape[1] * out[n].shape[2]) for n in SPEC.gram_layers}

    result = _blend(judge, 0.5)
    g_r, g_p, g_0 = grams(result), grams(judge.painting[None]), grams(judge.photos)
    expected = np.mean([np.sqrt(np.mean((g_r[n] - g_p[n]) ** 2, axis=(1, 2)))
                        / np.sqrt(np.mean((g_0[n] - g_p[n]) ** 2, axis=(1, 2))) for n in SPEC.gram_layers], axis=0)
    np.testing.assert_allclose(judge.score(result).parts["style_gram"], expected, rtol=1e-3)
    np.testing.assert_allclose(judge.score(judge.photos).parts["style_gram"], 1.0, rtol=1e-5)


def test_each_style_part_is_reported_and_the_style_is_their_mean(judge):
    """The three views are all in ``parts``, each in [0, 2] for pictures between photo and painting."""
    for result in (judge.photos, _blend(judge, 0.3), _blend(judge, 0.5), _blend(judge, 0.9)):
        s = judge.score(result)
        assert set(s.parts) == {"style_deep", "style_gram", "style_colour"}
        for name, v in s.parts.items():
            assert v.shape == (2,) and np.all((v >= 0) & (v <= 2)), (name, v)
        np.testing.assert_allclose(s.style, np.mean(list(s.parts.values()), axis=0))
    photo = judge.score(judge.photos)
    for name, v in photo.parts.items():
        np.testing.assert_allclose(v, 1.0, rtol=1e-5, err_msg=name)  # doing nothing scores 1 in every view


def test_the_median_ignores_one_view_that_disagrees_and_the_mean_is_weighted(photos):
    from dataclasses import replace

    j = Judge(replace(SPEC, combine="median"), photos, synthetic_painting(64), encoder=_mean_colour)
    parts = {"style_deep": np.array([0.2]), "style_gram": np.array([0.9]), "style_colour": np.array([0.3])}
    assert j.combine(parts)[0] == pytest.approx(0.3)
    weighted = Judge(replace(SPEC, gram_share=0.25, colour_share=0.25), photos, synthetic_painting(64),
                     encoder=_mean_colour)
    assert weighted.combine(parts)[0] == pytest.approx((0.4 + 0.9 + 0.3) / 4)
    reported = Judge(replace(SPEC, gram_share=0.0), photos, synthetic_painting(64), encoder=_mean_colour)
    assert reported.combine(parts)[0] == pytest.approx(2 / 3 * 0.2 + 1 / 3 * 0.3)  # reported, not weighed


def test_a_single_network_judge_weighs_deep_and_colour_two_to_one(tiny_judge, photos):
    s = tiny_judge.score(_blend(tiny_judge, 0.5))
    assert set(s.parts) == {"style_deep", "style_colour"}
    np.testing.assert_allclose(s.style, 2 / 3 * s.parts["style_deep"] + 1 / 3 * s.parts["style_colour"])


def test_style_falls_as_the_photo_fades_into_the_painting_on_a_loss_network_too(tiny_judge):
    styles = [tiny_judge.score(_blend(tiny_judge, a)).style.mean() for a in (0.0, 0.4, 0.8, 1.0)]
    assert styles == sorted(styles, reverse=True), styles
    assert styles[-1] < 0.35 * styles[0]


# -- content -------------------------------------------------------------------------------

def test_content_of_a_shifted_photo_is_lost_in_proportion_to_the_shift(judge):
    """A photo moved by a few pixels keeps its look but not its structure in place."""
    small = judge.score(np.roll(judge.photos, 1, axis=2)).content
    large = judge.score(np.roll(judge.photos, 6, axis=2)).content
    assert np.all(small > 0.02) and np.all(large > small), (small, large)


def test_content_falls_steadily_as_the_photo_fades_into_the_painting(judge):
    contents = [judge.score(_blend(judge, a)).content.mean() for a in (0.0, 0.3, 0.6, 0.9)]
    assert contents == sorted(contents), contents
    assert contents[-1] > 0.5


def test_a_flat_picture_does_not_keep_the_photos_content(judge):
    flat = np.ones_like(judge.photos) * judge.photos.mean(axis=(1, 2), keepdims=True)
    s = judge.score(flat)
    assert np.all(s.content > 0.8), s.content


def test_structure_distance_reference_values():
    photo = synthetic_painting(64, seed=3)  # textured: structure everywhere
    assert structure_distance(photo, photo) == pytest.approx(0.0, abs=1e-9)
    assert structure_distance(1.0 - photo, photo) > 1.5  # inverted contrast
    rng = np.random.default_rng(1)
    unrelated = rng.uniform(0, 1, photo.shape).astype(np.float32)
    assert 0.8 < structure_distance(unrelated, photo) < 1.2


# -- noise ---------------------------------------------------------------------------------

def test_pixel_speckle_raises_the_noise_score_above_the_limit(judge):
    rng = np.random.default_rng(0)
    clean = judge.score(judge.photos).noise
    speckled = judge.score(np.clip(judge.photos + rng.normal(0, 0.15, judge.photos.shape), 0, 1)).noise
    assert np.all(clean <= 1.0 + 1e-6)
    assert np.all(speckled > judge.spec.noise_limit), speckled


def test_band_ratio_sees_white_noise_but_not_smooth_pictures():
    smooth = synthetic_photo(64)
    noise = np.random.default_rng(0).uniform(0, 1, smooth.shape)
    assert band_ratio(noise) > 2 * band_ratio(smooth)


# -- pieces ----------------------------------------------------------------------------------

def test_sliced_distance_of_a_shifted_distribution_is_the_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 1))
    d = np.ones((1, 1))
    q1, q2 = sorted_projections(x, d, 64), sorted_projections(x + 0.5, d, 64)
    assert sliced_distance(q1, q2) == pytest.approx(0.5, rel=1e-6)
    assert sliced_distance(q1, q1) == 0.0


def test_painting_in_frame_fills_the_frame():
    framed = painting_in_frame(synthetic_painting(64)[:, :40], (30, 50))
    assert framed.shape == (30, 50, 3)


def test_results_of_the_wrong_shape_are_refused(judge):
    with pytest.raises(ValueError, match="shape"):
        judge.score(judge.photos[:1])


# -- the record, and the refusal to mix judges -------------------------------------------

def test_the_default_judge_goes_through_magenta_and_round_trips():
    spec = JudgeSpec()
    assert spec.network == MAGENTA and spec.layers == () and spec.version == JUDGE_VERSION == 2
    assert spec.gram_network == "" and spec.label == "judge styletune-judge v2 on magenta"
    assert spec.to_dict() == V2_RECORD, "the default is stored exactly as version 2 stored it"
    assert JudgeSpec.from_dict(V2_RECORD) == spec
    assert JudgeSpec.for_network(MAGENTA) == spec
    tiny = JudgeSpec.for_network("tiny")
    assert JudgeSpec.from_dict(tiny.to_dict()) == tiny and available(tiny) == (True, "")
    three = JudgeSpec.three_views()
    assert three.gram_network == "vgg16" and three.gram_layers == GRAM_LAYERS and three.gram_share == 1 / 3
    assert three.label == "judge styletune-judge v2 on magenta+vgg16"
    assert JudgeSpec.from_dict(three.to_dict()) == three
    assert spec.with_gram_view().gram_share == 0 and spec.with_gram_view().gram_network == "vgg16"
    assert "median" in COMBINES
    with pytest.raises(ConfigError, match="combine"):
        JudgeSpec(combine="max")
    with pytest.raises(ConfigError, match="share"):
        JudgeSpec(colour_share=0.8, gram_share=0.3)
    with pytest.raises(ConfigError, match="gram_share needs"):
        JudgeSpec(gram_share=0.3)
    with pytest.raises(ConfigError, match="Gram network vgg16 has no layer"):
        JudgeSpec(gram_network="vgg16", gram_layers=("conv1",))
    with pytest.raises(ConfigError, match="no layers to choose"):
        JudgeSpec(layers=("block1_conv1",))
    with pytest.raises(ConfigError, match="no layer"):
        JudgeSpec(network="tiny", layers=("block1_conv1",))


V1_RECORD = {"network": "vgg16_hed", "pooling": "max",
             "layers": ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3"], "projections": 64,
             "quantiles": 64, "colour_share": 1 / 3, "ssim_scales": 3, "noise_limit": 1.5, "seed": 0,
             "name": "styletune-judge", "version": 1}


#: What a version-2 study has stored since version 2 (and what the default judge still stores).
V2_RECORD = {"network": "magenta", "pooling": "max", "layers": [], "projections": 64, "quantiles": 64,
             "colour_share": 1 / 3, "ssim_scales": 3, "noise_limit": 1.5, "seed": 0, "name": "styletune-judge",
             "version": 2}


def test_a_version_1_record_is_described_as_stored_but_not_rebuilt():
    assert describe(V1_RECORD) == "judge styletune-judge v1 on vgg16_hed"
    with pytest.raises(ConfigError, match="would not be comparable"):
        JudgeSpec.from_dict(V1_RECORD)


def test_resuming_a_study_of_another_judge_version_is_refused_in_one_line():
    from tuner.study import StudyMismatch, check_same

    wanted = {"judge": JudgeSpec().to_dict()}
    with pytest.raises(StudyMismatch) as err:
        check_same({"judge": V1_RECORD}, wanted, "wave")
    msg = str(err.value)
    assert "\n" not in msg and "v1 on vgg16_hed" in msg and "v2 on magenta" in msg and "--study" in msg
    check_same({"judge": JudgeSpec().to_dict()}, wanted, "wave")  # the same judge passes


def test_an_old_study_stays_readable_and_its_resumption_is_refused(tmp_path, capsys):
    """End to end on the tiny network: a study whose record says judge v1 (as made by styletune before
    this version) is shown with its stored scores, and ``tuner search`` on it exits 2 with one line."""
    import optuna

    from nst.images import save_image
    from tuner import reader
    from tuner.cli import main

    save_image(tmp_path / "painting.png", synthetic_painting(64))
    save_image(tmp_path / "photos" / "p0.png", synthetic_photo(40))
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["search", "--style", str(tmp_path / "painting.png"), "--content", str(tmp_path / "photos"),
            "--size", "32", "--steps", "4", "--trials", "1", "--networks", "tiny", "--judge-network", "tiny",
            "--noise-limit", "10", "--seed", "1", "-q", "--no-early-stop", "--storage", url]
    assert main(args) == 0
    study = optuna.load_study(study_name="painting", storage=reader.open_storage(url))
    record = reader.study_record(study)
    record["judge"] = {**record["judge"], "version": 1}  # what a study made by the previous judge holds
    study.set_user_attr(reader.STUDY_ATTR, record)
    scores = [t.user_attrs["scores"] for t in study.get_trials() if t.state.name == "COMPLETE"]
    capsys.readouterr()

    assert main(["show", "painting", "--storage", url, "--no-baseline"]) == 0
    shown = capsys.readouterr().out
    assert "v1" in shown and f"{scores[0]['style']:.3f}" in shown

    assert main([*args[:args.index("--trials") + 1], "2", *args[args.index("--trials") + 2:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scored by judge styletune-judge v1 on tiny" in err and "not comparable" in err
    after = optuna.load_study(study_name="painting", storage=reader.open_storage(url))
    assert len(after.get_trials()) == len(study.get_trials())  # nothing was added


# -- the real predictor --------------------------------------------------------------------

@pytest.mark.weights
def test_the_judge_ranks_a_blend_between_photo_and_painting_in_every_view(photos):
    j = Judge(JudgeSpec().with_gram_view(), photos, synthetic_painting(96))
    half, most = j.score(_blend(j, 0.5)), j.score(_blend(j, 0.9))
    assert np.all(half.style < 1.0) and np.all(most.style < half.style), (half.style, most.style)
    assert np.all(half.content > 0.0)
    assert set(half.parts) == {"style_deep", "style_gram", "style_colour"}
    for name in half.parts:
        assert np.all((half.parts[name] >= 0) & (half.parts[name] <= 2)), (name, half.parts[name])
        assert np.all(most.parts[name] < half.parts[name]), (name, half.parts[name], most.parts[name])
