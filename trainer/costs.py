"""What a transformation network of :mod:`trainer.nets` costs and sees.

Parameters and FLOPs (counted from the layer shapes, or by TensorFlow's profiler on a
traced call) are recorded in every run folder and benchmark; the receptive radius is
how far an output pixel reaches, which :mod:`trainer.stylize` needs as its tile margin.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def _layer_plan(arch: str) -> list[tuple[str, int]]:
    """The spatial operations from input to output, as ``(kind, kernel)`` (residual skips add no reach)."""
    from trainer.nets import N_RESIDUAL

    # magenta has johnson's layout (its last upsampling has factor 1, a no-op).
    plan: list[tuple[str, int]] = [("pool2", 2)] if arch == "fast" else []
    plan += [("conv", 9), ("conv_s2", 3), ("conv_s2", 3)]
    plan += [("conv", 3)] * (2 * N_RESIDUAL)
    plan += [("up_nearest", 0), ("conv", 3), ("up_nearest", 0), ("conv", 3), ("conv", 9)]
    if arch == "fast":
        plan.append(("up_bilinear", 0))
    return plan


def receptive_radius(arch: str) -> int:
    """How far (in input pixels) an output pixel can see: tiles need at least this margin.

    Found by carrying the interval of input positions an output pixel depends on back
    through every layer (a 3x3 stride-2 convolution maps output ``j`` to inputs
    ``2j-1 .. 2j+1``; nearest upsampling maps ``i`` to ``i // 2``; ...), for outputs at
    every offset of the stride grid, and taking the worst case. The resampling steps make
    it a few pixels more than the textbook sum of ``(k - 1) / 2 x stride``.
    """
    from trainer.nets import check_arch

    plan = _layer_plan(check_arch(arch))
    worst = 0
    for i in range(64, 128):  # every residue modulo the total stride, away from the borders
        lo, hi = i, i
        for kind, k in reversed(plan):
            if kind == "conv":
                lo, hi = lo - k // 2, hi + k // 2
            elif kind == "conv_s2":
                lo, hi = 2 * lo - k // 2, 2 * hi - k // 2 + k - 1
            elif kind == "up_nearest":
                lo, hi = lo // 2, hi // 2
            elif kind == "up_bilinear":
                lo, hi = math.floor((lo - 0.5) / 2), math.floor((hi - 0.5) / 2) + 1
            elif kind == "pool2":
                lo, hi = 2 * lo, 2 * hi + 1
        worst = max(worst, i - lo, hi - i)
    return worst


def count_params(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def graph_flops(fn, *specs) -> int:
    """Floating-point operations in one call of a ``tf.function``, counted by TensorFlow's profiler.

    The profiler adds up the registered cost of every op in the traced graph (2 per
    multiply-add for convolutions and matrix products). Right for a forward pass; it
    over-counts a gradient: TensorFlow's gradient of a convolution always emits both the
    input- and the weight-gradient op, and the traced graph keeps ops that are pruned
    before it runs (weight gradients of a frozen loss network, gradients of paths that
    lead to no trained variable). ``bench/train_throughput.py`` counts a training step
    from the layer shapes instead, checked against the ops that survive optimisation.
    """
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    graph = fn.get_concrete_function(*specs).graph if hasattr(fn, "get_concrete_function") else \
        tf.function(fn).get_concrete_function(*specs).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler warns about its own deprecated internals
    try:
        return int(model_analyzer.profile(graph, options=opts).total_float_ops)
    finally:
        logger.setLevel(level)


def conv_flops(arch: str, width: float, height: int, image_width: int) -> int:
    """Forward FLOPs of the convolutions alone (2 per multiply-add), from the layer shapes.

    Cheap (no tracing), so every run folder records it; normalisation, padding and
    activations add a few percent that :func:`forward_flops` counts too.
    """
    from trainer.nets import build_network

    model = build_network(arch, width, input_shape=(height, image_width, 3))
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D)):
            _, h, w, cout = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            cin = layer.input.shape[-1]
            if isinstance(layer, keras.layers.SeparableConv2D):
                total += 2 * h * w * (k * cin + cin * cout)
            else:
                total += 2 * h * w * k * cin * cout
    return int(total)


def forward_flops(model: keras.Model, height: int, width: int) -> int:
    """FLOPs of one forward pass on one ``height x width`` picture."""
    import tensorflow as tf

    return graph_flops(lambda x: model(x, training=False), tf.TensorSpec([1, height, width, 3], tf.float32))


def model_conv_flops(model: keras.Model, height: int, width: int, channels: int = 3) -> list[tuple[str, float]]:
    """Forward FLOPs of each ``Conv2D`` layer of a Keras model on one ``height x width`` image.

    A convolution with a ``k x k`` kernel producing an ``Ho x Wo x Cout`` map from ``Cin``
    channels costs ``2 * Ho * Wo * k * k * Cin * Cout`` operations (one multiply and one
    add per weight per output position); biases, activations and pooling are a rounding
    error beside that and are left out. Output sizes come from one forward pass of zeros,
    so padding and pooling are accounted exactly as the model does them.
    """
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        return []
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    probe = keras.Model(inputs, [layer.output for layer in convs])
    outputs = probe(np.zeros((1, height, width, channels), np.float32), training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    result = []
    for layer, out in zip(convs, outputs, strict=True):
        kh, kw, cin, cout = layer.kernel.shape
        ho, wo = int(out.shape[1]), int(out.shape[2])
        groups = getattr(layer, "groups", 1) or 1
        result.append((layer.name, 2.0 * ho * wo * kh * kw * (cin // groups) * cout))
    return result


def training_step_flops(arch: str, width: float, config, size: int, batch: int) -> dict[str, float]:
    """FLOPs of one training step from random weights, by part, counted from the layer shapes.

    The transformation network: forward, input gradient and weight gradient, each the
    cost of the forward pass (x3). The loss network up to the deepest loss layer: forward
    and the input gradient only, its weights being frozen (x2), plus the content
    network's forward pass on the photo. Normalisation, Gram matrices, padding and
    activations are left out (a few percent). ``bench/train_throughput.py`` counts the
    same parts (and the Gram matrices) and checks them against the ops TensorFlow runs.
    """
    from nst.lossnets import get_extractor

    transform = conv_flops(arch, width, size, size)
    loss = sum(f for _, f in model_conv_flops(get_extractor(config.network, config.layers, config.pooling).model,
                                              size, size))
    content = sum(f for _, f in model_conv_flops(get_extractor(config.network, [config.content_layer],
                                                               config.pooling).model, size, size))
    return {"transform fwd+bwd": 3.0 * batch * transform, "loss net fwd+input grad": 2.0 * batch * loss,
            "content fwd": 1.0 * batch * content}
