"""What ``bench/gatys_speed.py`` measures its runs with, besides their clocks.

:func:`make_evaluator` is the one loss every run's final image is scored by;
:func:`loss_and_gradient_probes` times a single loss+gradient evaluation with and without
XLA; :func:`evaluation_flops` counts what such an evaluation computes; :func:`side_by_side`
lays the photo, the painting and both results out as one picture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from bench.common import conv_flops


def make_evaluator(extractor, content, style_image, config) -> Callable:
    """``image -> (loss, terms)`` with targets computed once: the one yardstick for every run."""
    import tensorflow as tf

    from nst.losses import config_loss, style_targets

    grams = style_targets(extractor(tf.constant(style_image[None])), config.active_style_layers)
    content_target = extractor(tf.constant(content[None]))[config.content_layer]

    def evaluate(image):
        x = tf.constant(image[None])
        loss, terms = config_loss(extractor(x), x, content_target, grams, config)
        return float(loss[0]), {k: float(v[0]) for k, v in terms.items()}

    return evaluate


def loss_and_gradient_probes(extractor, content, style_image, config) -> tuple[dict[str, Callable], dict[str, float]]:
    """One loss+gradient evaluation at the photo, compiled with and without XLA.

    The same computation as one step of either optimiser (minus the optimiser's own
    bookkeeping), built here so it can be timed call by call. Returns the blocking
    callables and the seconds each first call took (tracing, plus compiling under XLA).
    """
    import tensorflow as tf

    from nst.losses import config_loss, style_targets

    grams = style_targets(extractor(tf.constant(style_image[None])), config.active_style_layers)
    content_target = extractor(tf.constant(content[None]))[config.content_layer]
    x = tf.constant(content[None])

    def build(jit: bool) -> Callable:
        @tf.function(jit_compile=jit)
        def loss_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss, _ = config_loss(extractor(x), x, content_target, grams, config)
                loss = tf.reduce_sum(loss)
            return loss, tape.gradient(loss, x)

        return lambda: loss_and_grad(x)[1].numpy()

    probes, first = {}, {}
    for name, jit in (("loss+gradient, tf.function", False), ("loss+gradient, tf.function + XLA", True)):
        probes[name] = build(jit)
        start = time.perf_counter()
        probes[name]()
        first[name] = time.perf_counter() - start
    return probes, first


def evaluation_flops(extractor, config, height: int, width: int) -> tuple[float, float, float]:
    """(forward conv FLOPs, Gram FLOPs for product+gradient, total per loss+gradient evaluation)."""
    import numpy as np

    conv = sum(f for _, f in conv_flops(extractor.model, height, width))
    feats = extractor(np.zeros((1, height, width, 3), np.float32))
    gram = 0.0
    for name in config.active_style_layers:
        _, h, w, c = feats[name].shape
        gram += 4.0 * h * w * c * c
    return conv, gram, 2.0 * conv + gram


def side_by_side(panels: Sequence[tuple[str, object]], height: int):
    """Panels scaled to one height with a caption strip above each; float image in [0, 1]."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from nst.images import resize, to_uint8

    caption, gap = 18, 6
    tiles = []
    for label, img in panels:
        h, w = img.shape[:2]
        img = resize(img, (max(1, round(w * height / h)), height))
        tile = Image.new("RGB", (img.shape[1], height + caption), "white")
        tile.paste(Image.fromarray(to_uint8(img)), (0, caption))
        draw = ImageDraw.Draw(tile)
        try:
            font = ImageFont.load_default(size=12)
        except TypeError:  # Pillow < 10.1
            font = ImageFont.load_default()
        draw.text((2, 2), label, fill="black", font=font)
        tiles.append(np.asarray(tile))
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    sheet = np.full((height + caption, width, 3), 255, np.uint8)
    x = 0
    for t in tiles:
        sheet[:, x : x + t.shape[1]] = t
        x += t.shape[1] + gap
    return sheet.astype(np.float32) / 255.0
