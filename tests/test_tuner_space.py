"""The search space: suggest -> valid StyleConfig, recipes translated exactly, calibration sane."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from nst.config import RECIPES, StyleConfig
from tests.conftest import synthetic_painting, synthetic_photo
from tuner.space import (
    W_HI,
    W_LO,
    SearchSpace,
    SpaceError,
    available_networks,
    calibrate,
    recipe_params,
    suggest,
    to_config,
)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    photos = np.stack([synthetic_photo(32, seed=i) for i in range(2)])
    return SearchSpace(("tiny",), calibrate(["tiny"], photos, synthetic_painting(64)))


def _effective(cfg: StyleConfig) -> dict[str, float]:
    """Weights relative to the content weight: what the optimiser actually balances."""
    out = {f"style:{n}": cfg.style_weight * w / cfg.content_weight for n, w in cfg.style_layers if w > 0}
    out["tv"] = cfg.tv_weight / cfg.content_weight
    return out


def test_calibration_is_positive_and_finite_for_every_layer_and_pooling(space):
    for pooling in ("avg", "max"):
        cal = space.calibration["tiny"][pooling]
        assert set(cal.style) == {"conv1", "conv2", "conv3"}
        assert all(v > 0 and math.isfinite(v) for v in [*cal.style.values(), *cal.content.values(), cal.tv])


def test_random_suggestions_are_valid_configs_that_switch_layers_off(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_sizes = set()
    for _ in range(30):
        trial = study.ask()
        cfg = suggest(trial, space)
        assert isinstance(cfg, StyleConfig) and cfg.network == "tiny"
        assert cfg.content_weight == 1.0 and cfg.init == "content"
        shares = {n: trial.params[f"tiny.w.{n}"] for n in ("conv1", "conv2", "conv3")}
        expected = [n for n, v in shares.items() if v >= 0.1] or [max(shares, key=shares.get)]
        assert [n for n, _ in cfg.style_layers] == expected
        seen_sizes.add(len(cfg.style_layers))
        study.tell(trial, 0.0)
    assert len(seen_sizes) > 1  # layers do get switched off and on


def test_equal_shares_weight_each_layer_by_its_starting_magnitude(space):
    cal = space.calibration["tiny"]["avg"]
    cfg = to_config(space, "tiny", "avg", "conv2", {"conv1": 1.0, "conv2": 1.0, "conv3": 1.0}, 2.0, 0.1, 1.0)
    # Each layer's term at the start (weight x magnitude) is the same third of R x content energy.
    for name, w in cfg.style_layers:
        assert cfg.style_weight * w * cal.style[name] == pytest.approx(2.0 * cal.content["conv2"] / 3)
    assert cfg.tv_weight * cal.tv == pytest.approx(0.1 * cal.content["conv2"])


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_translate_to_parameters_that_rebuild_the_same_loss(space, name):
    from nst.config import adapt_config

    params, notes = recipe_params(RECIPES[name], space)
    assert any("tiny" in n for n in notes)  # the network swap is reported
    trial = optuna.trial.FixedTrial(params)
    rebuilt = suggest(trial, space)
    original = adapt_config(RECIPES[name], "tiny")
    want, got = _effective(original), _effective(rebuilt)
    clipped = " ".join(notes)
    for key, value in got.items():
        if key == "tv" and ("tv ratio" in clipped or original.tv_weight == 0):
            continue
        if "style ratio" in clipped and key.startswith("style:"):
            continue
        assert value == pytest.approx(want[key], rel=1e-6), key
    dropped = set(want) - set(got)
    assert all(k.startswith("style:") for k in dropped)


def test_the_largest_recipe_layer_sits_at_the_top_of_the_share_range(space):
    params, _ = recipe_params(StyleConfig(network="tiny", content_layer="conv2",
                                          style_layers=(("conv1", 1.0), ("conv2", 1.0))), space)
    shares = [params[f"tiny.w.{n}"] for n in ("conv1", "conv2", "conv3")]
    assert max(shares) == pytest.approx(W_HI)
    assert params["tiny.w.conv3"] == W_LO  # not in the recipe: off


def test_space_round_trips_through_json(space):
    import json

    again = SearchSpace.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again.networks == space.networks
    assert again.calibration["tiny"]["max"] == space.calibration["tiny"]["max"]


def test_default_networks_leave_out_the_test_only_networks_without_a_word():
    names, skipped = available_networks()
    assert "tiny" not in names and "random" not in names
    assert "tiny" not in skipped and "random" not in skipped  # not a "skipped" line in the user's search log
    assert available_networks(["tiny"]) == (("tiny",), {})


def test_unavailable_networks_are_refused_with_the_reason(monkeypatch):
    import tuner.space as sp

    monkeypatch.setattr(sp, "weights_available", lambda name: (False, f"{name}.h5 not in /nowhere"))
    with pytest.raises(SpaceError, match="vgg19.h5 not in /nowhere"):
        available_networks(["vgg19"])


def _flat_space(networks: tuple[str, ...]) -> SearchSpace:
    """A space with every magnitude 1: enough to test where recipes go, without running a network."""
    from nst.lossnets import get_spec
    from tuner.space import Calibration

    def flat(net: str) -> Calibration:
        spec = get_spec(net)
        return Calibration({n: 1.0 for n in spec.content_layers}, {n: 1.0 for n in spec.style_layers}, 1.0)

    return SearchSpace(networks, {n: {"avg": flat(n), "max": flat(n)} for n in networks})


def test_recipes_move_to_the_searched_network_most_like_their_own():
    both = _flat_space(("vgg16_hed", "vgg16"))
    params, notes = recipe_params(RECIPES["tf_tutorial"], both)  # VGG19 ImageNet -> ImageNet VGG16, not HED
    assert params["network"] == "vgg16" and "vgg19 -> vgg16" in notes
    params, notes = recipe_params(RECIPES["johnson"], both)  # already searched: stays
    assert params["network"] == "vgg16" and not any("->" in n for n in notes)
    params, notes = recipe_params(RECIPES["johnson"], _flat_space(("vgg16_hed",)))
    assert params["network"] == "vgg16_hed" and "vgg16 -> vgg16_hed" in notes


def test_both_vgg16s_are_searched_by_default_once_imagenet_is_converted(tmp_path, monkeypatch):
    from nst import imagenet

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("STYLETUNE_CACHE", str(tmp_path / "cache"))
    names, skipped = available_networks()
    assert names == ("vgg16_hed",) and "nst.imagenet fetch" in skipped["vgg16"]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / imagenet.CACHE_NAME).write_bytes(b"")
    names, skipped = available_networks()
    assert names == ("vgg16_hed", "vgg16") and "vgg16" not in skipped


@pytest.mark.weights
def test_published_recipes_keep_all_their_layers_on_imagenet_vgg16_but_not_on_hed():
    """Real calibration (bundled painting and photos): on vgg16 no recipe layer is switched off.

    On HED, whose deep layers drifted, Johnson's block4_conv3 starts below 1/100000 of its
    strongest term and is switched off; that is the contrast docs/networks.md shows.
    """
    from pathlib import Path

    from nst.images import bundled_photos, center_crop_square, load_image
    from nst.lossnets import weights_available

    if not weights_available("vgg16")[0]:
        pytest.skip("vgg16 ImageNet weights not set up; run `python -m nst.imagenet fetch`")
    photos = np.stack([center_crop_square(load_image(p), 96) for p in list(bundled_photos().values())[:3]])
    painting = load_image(Path(__file__).parent.parent / "examples" / "wave.jpg")
    space = SearchSpace(("vgg16_hed", "vgg16"), calibrate(("vgg16_hed", "vgg16"), photos, painting))
    for name, recipe in RECIPES.items():
        params, notes = recipe_params(recipe, space)
        assert params["network"] == "vgg16", name
        assert not any("switched off" in n for n in notes), (name, notes)
        on = [k for k, v in params.items() if k.startswith("vgg16.w.") and v >= 0.1]
        assert len(on) == len(recipe.style_layers), name
    hed_only = SearchSpace(("vgg16_hed",), {"vgg16_hed": space.calibration["vgg16_hed"]})
    _, notes = recipe_params(RECIPES["johnson"], hed_only)
    assert any("block4_conv3" in n and "switched off" in n for n in notes)
