"""Edits to Magenta's shipped transformer graph that ``nst.arbitrary`` makes before running it.

Both work in place on an ``onnx.ModelProto`` and need only ``onnx`` (imported when called)
and NumPy: :func:`float_transformer` turns tf2onnx's int8 export into the same network in
float32, and :func:`free_size` frees the 384x384 input it declares. Why each is needed is in
``nst.arbitrary``'s docstring and in the functions' own.
"""

from __future__ import annotations

import numpy as np


def free_size(model) -> None:
    """Make the transformer's height and width symbolic, so any size runs (see ``nst.arbitrary``)."""
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[-1].dim_value == 3:
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    del model.graph.value_info[:]  # tf2onnx's recorded intermediate shapes would pin 384 again


def float_transformer(model) -> None:
    """Turn the int8 transformer into the same network in float32, in place.

    tf2onnx wrote every weight as an int8 (biases int32) initializer feeding a
    ``DequantizeLinear``, and put a ``QuantizeLinear``/``DequantizeLinear`` pair after
    nearly every layer (sometimes with a ``Reshape`` or ``Transpose`` of the int8 tensor in
    between). Weights become float initializers, ``(q - zero_point) * scale`` with the
    node's per-channel axis; the activation pairs are dropped, each consumer reading the
    float tensor the pair rounded. What remains is the float network Magenta trained
    (``nst.transformer`` rebuilds it in Keras to about 1e-6).

    Why: the int8 activations make the network chaotic at float precision. One float32 step
    on the input flips a rounding after the first layer and instance normalisation spreads
    it, so two correct runtimes (x86 onnxruntime and its WebAssembly build) disagreed by a
    mean of 0.045 on [0, 1] pixels. The float form agrees across them to well within 0.01.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    alias: dict[str, str] = {}  # output of a dropped Q/DQ node -> the float tensor it stood for
    weights: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:  # ONNX nodes are in topological order: aliases resolve in one pass
        inputs = [alias.get(i, i) for i in node.input]
        if node.op_type == "DequantizeLinear" and inputs[0] in init:
            q = numpy_helper.to_array(init[inputs[0]]).astype(np.float32)
            scale = numpy_helper.to_array(init[inputs[1]]).astype(np.float32)
            zero = (numpy_helper.to_array(init[inputs[2]]).astype(np.float32)
                    if len(inputs) > 2 and inputs[2] else np.zeros_like(scale))
            if scale.ndim == 1 and scale.size > 1:  # per channel, along the node's axis (ONNX default 1)
                axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
                shape = [1] * q.ndim
                shape[axis] = scale.size
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            weights[node.output[0]] = ((q - zero) * scale).astype(np.float32)
            continue
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            alias[node.output[0]] = inputs[0]
            continue
        del node.input[:]
        node.input.extend(inputs)
        kept.append(node)
    for out in graph.output:  # an output that was a dropped node's: pass the float tensor through
        if out.name in alias:
            kept.append(helper.make_node("Identity", [alias[out.name]], [out.name]))
    used = {i for n in kept for i in n.input}
    floats = [numpy_helper.from_array(v, name) for name, v in weights.items() if name in used]
    others = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(others + floats)
    left = sorted({n.op_type for n in kept} & {"QuantizeLinear", "DequantizeLinear"})
    if left:  # a graph of another shape than tf2onnx's: say so rather than run half-quantised
        raise ValueError(f"quantisation nodes left after the float conversion: {left}")
