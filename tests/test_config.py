"""StyleConfig: validated, frozen, JSON round-trip, clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nst.config import NETWORK_DEFAULTS, RECIPES, StyleConfig, adapt_config, default_config
from nst.errors import ConfigError


def test_default_is_offline_and_pretrained():
    cfg = StyleConfig()
    assert cfg.network == "vgg16_hed"  # never random weights by default


@pytest.mark.parametrize("cfg", [StyleConfig(), *RECIPES.values()], ids=["default", *RECIPES])
def test_json_round_trip_is_exact(cfg):
    back = StyleConfig.from_json(cfg.to_json())
    assert back == cfg
    assert json.loads(back.to_json()) == json.loads(cfg.to_json())


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        StyleConfig().style_weight = 3.0  # type: ignore[misc]


def test_layers_are_in_depth_order_and_skip_switched_off():
    cfg = StyleConfig(style_layers={"block3_conv1": 1.0, "block1_conv1": 0.5, "block5_conv1": 0.0},
                      content_layer="block4_conv2")
    assert cfg.layers == ("block1_conv1", "block3_conv1", "block4_conv2")
    assert cfg.active_style_layers == ("block3_conv1", "block1_conv1")


BAD = {
    "unknown network": ({"network": "resnet50"}, "unknown loss network"),
    "unknown content layer": ({"content_layer": "block9_conv1"}, "cannot use 'block9_conv1' as content layer"),
    "unknown style layer": ({"style_layers": {"fc7": 1.0}}, "cannot use 'fc7' as style layer"),
    "negative weight": ({"style_weight": -1.0}, "style_weight must be a finite number"),
    "nan weight": ({"tv_weight": float("nan")}, "tv_weight must be a finite number"),
    "all layers off": ({"style_layers": {"block1_conv1": 0.0}}, "at least one must be positive"),
    "bad pooling": ({"pooling": "min"}, "pooling must be"),
    "style scale": ({"style_scale": 100.0}, "style_scale must be between"),
    "bad init": ({"init": "zeros"}, "init must be one of"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_values_are_named(case):
    changes, expected = BAD[case]
    with pytest.raises(ConfigError, match=expected):
        StyleConfig(**changes)


JSON_BAD = {
    "not json": ("{network: vgg16", "not valid JSON"),
    "not an object": ("[1, 2]", "must be a JSON object"),
    "unknown key": (json.dumps({**StyleConfig().to_dict(), "learning_rate": 1}), "unknown key 'learning_rate'"),
    "missing field": (json.dumps({k: v for k, v in StyleConfig().to_dict().items() if k != "tv_weight"}),
                      "missing 'tv_weight'"),
    "string weight": (json.dumps({**StyleConfig().to_dict(), "style_weight": "high"}), "must be a number"),
    "impossible value": (json.dumps({**StyleConfig().to_dict(), "content_weight": -5}), "content_weight must be"),
    "future version": (json.dumps({**StyleConfig().to_dict(), "version": 99}), "version 99 is not supported"),
}


@pytest.mark.parametrize("case", list(JSON_BAD))
def test_bad_json_configs_are_refused_clearly(case, tmp_path):
    text, expected = JSON_BAD[case]
    path = tmp_path / "cfg.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as info:
        StyleConfig.load(str(path))
    assert str(path) in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no such config file"):
        StyleConfig.load("/nonexistent/cfg.json")


def test_adapt_vgg19_recipe_to_vgg16_keeps_blocks():
    cfg = adapt_config(RECIPES["tf_tutorial"], "vgg16_hed")
    assert cfg.network == "vgg16_hed"
    assert cfg.content_layer == "block5_conv2"
    assert [n for n, _ in cfg.style_layers] == [f"block{i}_conv1" for i in range(1, 6)]


def test_adapt_to_inception_uses_its_catalogue():
    cfg = adapt_config(StyleConfig(), "inception_v3")
    assert cfg.content_layer.startswith("mixed")
    assert all(n.startswith("mixed") for n, _ in cfg.style_layers)
    assert sum(w for _, w in cfg.style_layers) == pytest.approx(sum(w for _, w in StyleConfig().style_layers))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_on_imagenet_vgg16_keep_every_layer(name):
    """Mapped onto ``vgg16`` every published recipe keeps all its style layers, weights and content layer."""
    recipe = RECIPES[name]
    cfg = adapt_config(recipe, "vgg16")
    assert cfg.network == "vgg16"
    assert len(cfg.style_layers) == len(recipe.style_layers)
    assert [w for _, w in cfg.style_layers] == [w for _, w in recipe.style_layers]
    assert all(w > 0 for _, w in cfg.style_layers)
    if recipe.network == "vgg19":  # same block, last-or-same convolution
        assert [n for n, _ in cfg.style_layers] == [f"block{i}_conv1" for i in range(1, 6)]
        assert cfg.content_layer == "block5_conv2"
    else:
        assert cfg == recipe


def test_the_default_is_calibrated_per_network():
    """``--network vgg16`` on the default gives vgg16's calibrated default; other configs keep their weights."""
    hed, imagenet = default_config("vgg16_hed"), default_config("vgg16")
    assert hed == StyleConfig()
    assert imagenet.network == "vgg16" and imagenet.style_layers == hed.style_layers
    assert (imagenet.style_weight, imagenet.tv_weight) == (NETWORK_DEFAULTS["vgg16"]["style_weight"],
                                                          NETWORK_DEFAULTS["vgg16"]["tv_weight"])
    assert (imagenet.style_weight, imagenet.tv_weight) != (hed.style_weight, hed.tv_weight)
    assert adapt_config(StyleConfig(), "vgg16") == imagenet
    assert adapt_config(imagenet, "vgg16_hed") == hed  # and back
    edited = StyleConfig(style_weight=0.5)
    assert adapt_config(edited, "vgg16").style_weight == 0.5  # a user's own weights are carried over as they are
    assert default_config("random").style_weight == hed.style_weight  # no calibration: the default's weights


def test_the_default_network_is_imagenet_vgg16_when_its_weights_are_here(tmp_path, monkeypatch):
    from nst import imagenet
    from nst.config import default_network

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("STYLETUNE_CACHE", str(tmp_path / "cache"))
    assert default_network() == "vgg16_hed" and default_config() == StyleConfig()  # offline fallback
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / imagenet.CACHE_NAME).write_bytes(b"")
    assert default_network() == "vgg16" and default_config() == default_config("vgg16")
    assert StyleConfig().network == "vgg16_hed"  # the field defaults never depend on the machine
