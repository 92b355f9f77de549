"""One converter per Keras layer type, from the layer to standard ONNX operators, for :mod:`trainer.onnx_export`.

Each converter takes the graph under construction (:class:`OnnxGraph`), the layer, the
ONNX names of its inputs (NCHW tensors) and its call's keyword arguments, adds one to
four nodes and returns the name of its output. :func:`converters` is the table the
writer looks layers up in, by class along the method resolution order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nst.errors import StyletuneError


class OnnxExportError(StyletuneError):
    """A network that contains a layer this writer cannot express in ONNX."""


class OnnxGraph:
    """The ONNX graph under construction: nodes, weights, and fresh names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, hint: str, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


Converter = Callable[[OnnxGraph, Any, list[str], dict[str, Any]], str]


# -- activations ------------------------------------------------------------------------------


def _activation(g: OnnxGraph, fn: Any, x: str, hint: str) -> str:
    """Apply a Keras activation (a function or its name) to ``x``."""
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
    if name in ("linear", None):
        return x
    if name == "relu":
        return g.op("Relu", [x], hint)
    if name == "sigmoid":
        return g.op("Sigmoid", [x], hint)
    if name == "tanh":
        return g.op("Tanh", [x], hint)
    if name in ("silu", "swish"):
        return g.op("Mul", [x, g.op("Sigmoid", [x], hint)], hint)
    if name == "elu":
        return g.op("Elu", [x], hint, alpha=1.0)
    if name == "softplus":
        return g.op("Softplus", [x], hint)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], hint, alpha=0.2)
    raise OnnxExportError(f"activation {name!r} has no ONNX converter; use relu, sigmoid, tanh, silu, elu or linear")


def _keras_activation(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    return _activation(g, layer.activation, args[0], layer.name)


def _relu(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    x = args[0]
    slope = float(layer.negative_slope or 0.0)
    threshold = float(layer.threshold or 0.0)
    if threshold != 0.0:
        raise OnnxExportError(f"layer {layer.name}: ReLU with a threshold has no ONNX converter")
    y = g.op("LeakyRelu", [x], layer.name, alpha=slope) if slope else g.op("Relu", [x], layer.name)
    if layer.max_value is not None:
        y = g.op("Clip", [y, "", g.const(float(layer.max_value), "max")], layer.name)
    return y


# -- convolutions -----------------------------------------------------------------------------


def _conv_attrs(layer: Any) -> dict[str, Any]:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise OnnxExportError(f"layer {layer.name}: only channels_last convolutions are supported")
    attrs: dict[str, Any] = {"strides": list(layer.strides), "dilations": list(layer.dilation_rate)}
    if layer.padding == "same":
        # TensorFlow's SAME puts the odd pixel of padding at the end, as ONNX's SAME_UPPER does.
        attrs["auto_pad"] = "SAME_UPPER"
    elif layer.padding != "valid":
        raise OnnxExportError(f"layer {layer.name}: padding {layer.padding!r} is not supported")
    return attrs


def _weights(layer: Any) -> dict[str, np.ndarray]:
    return {w.path.split("/")[-1]: np.asarray(w.numpy()) for w in layer.weights}


def _conv2d(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    w = _weights(layer)
    kernel = w["kernel"].transpose(3, 2, 0, 1)  # (kh, kw, cin/groups, cout) -> (cout, cin/groups, kh, kw)
    inputs = [args[0], g.const(kernel, f"{layer.name}_kernel")]
    if layer.use_bias:
        inputs.append(g.const(w["bias"], f"{layer.name}_bias"))
    y = g.op("Conv", inputs, layer.name, group=int(getattr(layer, "groups", 1)), **_conv_attrs(layer))
    return _activation(g, layer.activation, y, layer.name)


def _depthwise(g: OnnxGraph, x: str, kernel: np.ndarray, layer: Any, bias: np.ndarray | None) -> str:
    kh, kw, cin, mult = kernel.shape
    # (kh, kw, cin, mult) -> (cin * mult, 1, kh, kw): output channel c*mult + m reads input channel c, as in TF.
    onnx_kernel = kernel.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
    inputs = [x, g.const(onnx_kernel, f"{layer.name}_depthwise")]
    if bias is not None:
        inputs.append(g.const(bias, f"{layer.name}_bias"))
    return g.op("Conv", inputs, layer.name, group=int(cin), **_conv_attrs(layer))


def _depthwise_conv2d(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    w = _weights(layer)
    y = _depthwise(g, args[0], w["kernel"], layer, w["bias"] if layer.use_bias else None)
    return _activation(g, layer.activation, y, layer.name)


def _separable_conv2d(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    w = _weights(layer)
    y = _depthwise(g, args[0], w["depthwise_kernel"], layer, None)
    pointwise = w["pointwise_kernel"].transpose(3, 2, 0, 1)
    inputs = [y, g.const(pointwise, f"{layer.name}_pointwise")]
    if layer.use_bias:
        inputs.append(g.const(w["bias"], f"{layer.name}_bias"))
    y = g.op("Conv", inputs, layer.name)
    return _activation(g, layer.activation, y, layer.name)


def _conv2d_transpose(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    w = _weights(layer)
    if getattr(layer, "output_padding", None) is not None:
        raise OnnxExportError(f"layer {layer.name}: Conv2DTranspose with output_padding is not supported")
    kernel = w["kernel"].transpose(3, 2, 0, 1)  # (kh, kw, cout, cin) -> (cin, cout, kh, kw)
    inputs = [args[0], g.const(kernel, f"{layer.name}_kernel")]
    if layer.use_bias:
        inputs.append(g.const(w["bias"], f"{layer.name}_bias"))
    attrs = _conv_attrs(layer)
    if attrs.pop("auto_pad", None):
        # TensorFlow's SAME transposed convolution gives in * stride pixels and crops the
        # kernel's overhang with the smaller half at the start (it is the gradient of a SAME
        # convolution). Explicit pads say exactly that; ONNX's auto_pad for ConvTranspose
        # has been read both ways by runtimes.
        pads_begin, pads_end = [], []
        for k, s, d in zip(layer.kernel_size, layer.strides, layer.dilation_rate, strict=True):
            total = max((k - 1) * d + 1 - s, 0)
            pads_begin.append(total // 2)
            pads_end.append(total - total // 2)
        attrs["pads"] = pads_begin + pads_end
    y = g.op("ConvTranspose", inputs, layer.name, **attrs)
    return _activation(g, layer.activation, y, layer.name)


# -- normalisation ----------------------------------------------------------------------------


def _instance_norm(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    """``InstanceNorm``: ONNX's InstanceNormalization is the same formula, ``(x - mean) / sqrt(var + eps)``."""
    if kwargs.get("mean") is not None or kwargs.get("variance") is not None:
        raise OnnxExportError(f"layer {layer.name}: normalisation with outside statistics (tiling) is not exported; "
                              "export the plain network")
    w = _weights(layer)
    return g.op("InstanceNormalization", [args[0], g.const(w["gamma"], f"{layer.name}_gamma"),
                                          g.const(w["beta"], f"{layer.name}_beta")],
                layer.name, epsilon=float(layer.epsilon))


def _batch_norm(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    """Inference-mode batch normalisation, folded into one scale and shift per channel."""
    if layer.axis not in (-1, 3, [3], [-1]):
        raise OnnxExportError(f"layer {layer.name}: BatchNormalization over axis {layer.axis} is not supported")
    w = _weights(layer)
    c = w["moving_mean"].shape[0]
    gamma = w.get("gamma", np.ones(c, np.float32))
    beta = w.get("beta", np.zeros(c, np.float32))
    scale = gamma / np.sqrt(w["moving_variance"] + layer.epsilon)
    shift = beta - w["moving_mean"] * scale
    y = g.op("Mul", [args[0], g.const(scale.reshape(1, c, 1, 1), f"{layer.name}_scale")], layer.name)
    return g.op("Add", [y, g.const(shift.reshape(1, c, 1, 1), f"{layer.name}_shift")], layer.name)


# -- resampling and padding -------------------------------------------------------------------


def _resize(g: OnnxGraph, x: str, factor: tuple[int, int], interpolation: str, hint: str) -> str:
    scales = g.const([1.0, 1.0, float(factor[0]), float(factor[1])], f"{hint}_scales")
    if interpolation == "nearest":
        # tf.image.resize's nearest at an integer factor k takes source pixel floor(i / k).
        return g.op("Resize", [x, "", scales], hint, mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor")
    if interpolation == "bilinear":
        # TF2 resizes with half-pixel centres and clamps at the borders, as ONNX's half_pixel does.
        return g.op("Resize", [x, "", scales], hint, mode="linear", coordinate_transformation_mode="half_pixel")
    raise OnnxExportError(f"layer {hint}: {interpolation!r} resizing has no ONNX converter; use nearest or bilinear")


def _upsample2x(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    return _resize(g, args[0], (2, 2), layer.interpolation, layer.name)


def _upsampling2d(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    return _resize(g, args[0], tuple(layer.size), layer.interpolation, layer.name)


def _pool(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any], op_type: str) -> str:
    attrs: dict[str, Any] = {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides)}
    if layer.padding == "same":
        attrs["auto_pad"] = "SAME_UPPER"  # average: padded pixels are left out of the mean, as in TF
    return g.op(op_type, [args[0]], layer.name, **attrs)


def _pad(g: OnnxGraph, x: str, top: int, bottom: int, left: int, right: int, mode: str, hint: str) -> str:
    pads = g.const([0, 0, top, left, 0, 0, bottom, right], f"{hint}_pads", np.int64)
    return g.op("Pad", [x, pads], hint, mode=mode)


def _reflection_pad(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    p = int(layer.pad)
    return _pad(g, args[0], p, p, p, p, "reflect", layer.name)


def _zero_padding(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    (top, bottom), (left, right) = layer.padding
    return _pad(g, args[0], top, bottom, left, right, "constant", layer.name)


# -- elementwise ------------------------------------------------------------------------------


def _logit(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    eps = float(layer.epsilon)
    p = g.op("Clip", [args[0], g.const(eps, "lo"), g.const(1.0 - eps, "hi")], layer.name)
    q = g.op("Sub", [g.const(1.0, "one"), p], layer.name)
    return g.op("Sub", [g.op("Log", [p], layer.name), g.op("Log", [q], layer.name)], layer.name)


def _merge(op_type: str) -> Converter:
    def convert(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
        y = args[0]
        for other in args[1:]:
            y = g.op(op_type, [y, other], layer.name)
        return y

    return convert


def _average(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    total = _merge("Add")(g, layer, args, kwargs)
    return g.op("Mul", [total, g.const(1.0 / len(args), "inv_n")], layer.name)


def _concatenate(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    if layer.axis not in (-1, 3):
        raise OnnxExportError(f"layer {layer.name}: only channel concatenation is supported")
    return g.op("Concat", args, layer.name, axis=1)


def _rescaling(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    y = g.op("Mul", [args[0], g.const(float(np.asarray(layer.scale)), "scale")], layer.name)
    return g.op("Add", [y, g.const(float(np.asarray(layer.offset)), "offset")], layer.name)


def _photo_blend(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    photo, painted = args
    a = g.const(np.asarray(layer.a.numpy()).reshape(1, -1, 1, 1), f"{layer.name}_a")
    diff = g.op("Sub", [photo, painted], layer.name)
    return g.op("Add", [painted, g.op("Mul", [diff, a], layer.name)], layer.name)


def _identity(g: OnnxGraph, layer: Any, args: list[str], kwargs: dict[str, Any]) -> str:
    return args[0]


def converters() -> dict[type, Converter]:
    """Layer class -> converter. Subclasses are found through the class's MRO."""
    import keras

    from nst import layers as nets

    L = keras.layers
    table: dict[type, Converter] = {
        L.Conv2D: _conv2d, L.DepthwiseConv2D: _depthwise_conv2d, L.SeparableConv2D: _separable_conv2d,
        L.Conv2DTranspose: _conv2d_transpose,
        L.ReLU: _relu, L.Activation: _keras_activation,
        L.BatchNormalization: _batch_norm,
        L.UpSampling2D: _upsampling2d, L.ZeroPadding2D: _zero_padding,
        L.AveragePooling2D: lambda g, layer, a, k: _pool(g, layer, a, k, "AveragePool"),
        L.MaxPooling2D: lambda g, layer, a, k: _pool(g, layer, a, k, "MaxPool"),
        L.Add: _merge("Add"), L.Subtract: _merge("Sub"), L.Multiply: _merge("Mul"), L.Maximum: _merge("Max"),
        L.Minimum: _merge("Min"), L.Average: _average, L.Concatenate: _concatenate,
        L.Rescaling: _rescaling, L.Dropout: _identity, L.Identity: _identity,
        nets.InstanceNorm: _instance_norm, nets.ReflectionPad: _reflection_pad, nets.Upsample2x: _upsample2x,
        nets.Logit: _logit, nets.PhotoBlend: _photo_blend,
    }
    return table
