"""Write a Keras image network as an ONNX graph, layer by layer, with ``onnx.helper``.

Why our own writer: the browser export runs on onnxruntime-web, which reads ONNX, and
the usual converter (tf2onnx) lags behind the TensorFlow and Keras versions styletune
uses. The networks in :mod:`trainer.nets` are made of a dozen plain layer types, each of
which is one to four standard ONNX operators, so a small table of converters is less
code to trust than a pinned second TensorFlow.

How it works: the functional model's own graph (its nodes, in dependency order) is
walked once; every node's layer is looked up in the table of :mod:`trainer.onnx_layers` by class, in method
resolution order, so a subclass of a known layer (say a conditional instance norm built
on :class:`~nst.layers.InstanceNorm`) is covered without a new entry. Tensors flow
through the ONNX graph as NCHW, ONNX's layout for convolutions; the graph's input and
output are NHWC ``(1, H, W, 3)`` like the Keras model's, with one transpose at each end.
Height and width stay symbolic, so one file serves every picture size that is a
multiple of the network's stride.

A layer without a converter is a one-line :class:`OnnxExportError` naming it; nothing
is guessed. Every export is checked by :func:`verify` against the Keras model before it
is kept (see :mod:`trainer.export`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainer.onnx_layers import Converter, OnnxExportError, OnnxGraph, converters

#: ONNX operator set written; onnxruntime (Python) and onnxruntime-web both run it.
OPSET = 17


def _find(table: dict[type, Converter], layer: Any) -> Converter:
    for cls in type(layer).__mro__:
        if cls in table:
            return table[cls]
    raise OnnxExportError(f"layer {layer.name} ({type(layer).__name__}) has no ONNX converter; "
                          "add one to trainer/onnx_layers.py or export as savedmodel/tflite")


def _walk(g: OnnxGraph, model: Any, input_names: list[str], table: dict[type, Converter]) -> list[str]:
    """Convert every node of a functional ``model``; returns the ONNX names of its outputs.

    Keras offers no public walk over a functional graph, so this follows the model's own
    ``_nodes_by_depth`` the way ``Functional._run_through_graph`` does (deepest first).
    Nested functional models are walked recursively.
    """
    from keras.src.backend.common.keras_tensor import KerasTensor

    names: dict[int, str] = {id(t): n for t, n in zip(model.inputs, input_names, strict=True)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if layer is None or node.is_input:
                continue
            if any(id(t) not in names for t in node.input_tensors):
                continue  # a node of another model that shares this layer

            def name_of(value: Any) -> Any:
                return names[id(value)] if isinstance(value, KerasTensor) else value

            args = [name_of(a) for a in node.arguments.args]
            flat_args = [a for a in args if isinstance(a, str)]
            if len(args) == 1 and isinstance(node.arguments.args[0], list):  # merge layers take one list
                flat_args = [name_of(a) for a in node.arguments.args[0]]
            kwargs = {k: name_of(v) if isinstance(v, KerasTensor) else v for k, v in node.arguments.kwargs.items()}
            if hasattr(layer, "_nodes_by_depth"):  # a nested functional model
                outputs = _walk(g, layer, flat_args, table)
            else:
                outputs = [_find(table, layer)(g, layer, flat_args, kwargs)]
            if len(outputs) != len(node.outputs):
                raise OnnxExportError(f"layer {layer.name}: {len(node.outputs)} outputs, converter gave {len(outputs)}")
            for t, n in zip(node.outputs, outputs, strict=True):
                names[id(t)] = n
    missing = [t.name for t in model.outputs if id(t) not in names]
    if missing:
        raise OnnxExportError(f"output {missing[0]} of {model.name} is not reachable from its inputs; cannot export")
    return [names[id(t)] for t in model.outputs]


def to_onnx(model: Any, *, name: str = "styletune") -> bytes:
    """The ONNX bytes of a single-input, single-output image network (NHWC in, NHWC out)."""
    import onnx
    from onnx import TensorProto, helper

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise OnnxExportError("only networks with one picture in and one picture out can be exported to ONNX "
                              "(export the plain network, not the fixed-statistics one)")
    channels_in = int(model.inputs[0].shape[-1])
    channels_out = int(model.outputs[0].shape[-1])
    g = OnnxGraph()
    nchw = g.op("Transpose", ["image"], "to_nchw", perm=[0, 3, 1, 2])
    (out,) = _walk(g, model, [nchw], converters())
    g.nodes.append(helper.make_node("Transpose", [out], ["stylized"], name="to_nhwc", perm=[0, 2, 3, 1]))
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, "height", "width", channels_in])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, [1, "height", "width", channels_out])],
        initializer=g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="styletune")
    proto.ir_version = 8  # readable by every onnxruntime since 1.14, including onnxruntime-web
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def run_onnx(data: bytes, image: np.ndarray) -> np.ndarray:
    """Run ONNX bytes on one ``(H, W, 3)`` picture with onnxruntime (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"image": image[None].astype(np.float32)})[0][0])
