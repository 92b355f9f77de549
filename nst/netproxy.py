"""The network proxy: a trial rendered by the network the person will take home, briefly tuned.

A Gatys proxy does not predict the trained network well (docs/benchmarks.md): it optimises
the pixels of each test photo starting from the photo, so it keeps the photo because of
where it starts, and it can paint things no feed-forward network trained on the same loss
can. This proxy renders a trial the way ``trainer fit`` will train it instead:

1. start from Magenta's pretrained transformer with the painting's style vector folded
   into its normalisation layers (:mod:`nst.transformer`), the same step 0 as the
   ``cpu`` and ``gpu`` recipes;
2. tune only the normalisation layers' scale and shift (:func:`nst.layers.freeze_all_but_norm`)
   with Adam on the trial's loss, using the study's test photos as the batch: each step is
   :func:`nst.training.train_step`, the step ``trainer fit`` takes;
3. paint the test photos with the tuned network.

The trainer then runs the same step at the same learning rate on many photos
(:data:`PROXY_LR`; ``trainer fit --from-study`` takes the study's). Because only the
normalisation parameters move (about 700 numbers for the whole network), tuning on three
photos cannot memorise them: the trained network lands where the proxy did, which
``bench/fidelity.py`` measures.

The result is a :class:`nst.gatys.GatysResult`, so the tuner handles both proxies alike.
A step costs one forward and backward pass of the loss network over the batch, as a Gatys
evaluation does, plus the small transformer (about a tenth of that).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nst.config import PROXY_LR, StyleConfig
from nst.gatys import Callback, GatysResult, ImageCallback, style_size

_WEIGHTS = None
#: Compiled proxies by (painting, loss network, layers, batch shape): building the
#: transformer and tracing its training step costs more than ten steps, so trials that share
#: them reuse one, reset to step 0 (the loss weights and learning rate are arguments).
_COMPILED: dict[tuple, _Compiled] = {}


@dataclass
class _Compiled:
    model: Any
    optimizer: Any
    start: list[np.ndarray]
    step: Any

    def reset(self, lr: float) -> None:
        """Back to Magenta's weights and a fresh Adam at ``lr``."""
        for var, value in zip(self.model.trainable_variables, self.start, strict=True):
            var.assign(value)
        for var in self.optimizer.variables:
            var.assign(np.zeros(var.shape, var.numpy().dtype))
        self.optimizer.learning_rate = lr


def _pretrained_model(painting: np.ndarray, blend: bool = False):
    """Magenta's transformer with ``painting`` folded in, only its normalisation layers (and the blend) trainable."""
    global _WEIGHTS
    from nst.layers import freeze_all_but_norm
    from nst.transformer import build_magenta, painting_vector, pretrained_weights, read_onnx_weights

    if _WEIGHTS is None:
        _WEIGHTS = read_onnx_weights()
    model = build_magenta(photo_blend=blend)
    pretrained_weights(model, painting_vector(painting), _WEIGHTS)
    freeze_all_but_norm(model)
    return model


def _compiled(painting: np.ndarray, extractor, content_layer: str, style_layers: tuple[str, ...],
              shape: tuple[int, ...], blend: bool = False) -> _Compiled:
    import keras
    import tensorflow as tf

    from nst.training import train_step

    digest = hashlib.blake2b(np.ascontiguousarray(painting).tobytes(), digest_size=16).hexdigest()
    key = (digest, painting.shape, id(extractor), content_layer, style_layers, shape, blend)
    if key in _COMPILED:
        return _COMPILED[key]
    if len(_COMPILED) >= 8:
        _COMPILED.pop(next(iter(_COMPILED)))
    model = _pretrained_model(painting, blend)
    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate=PROXY_LR)
    optimizer.build(variables)

    @tf.function(reduce_retracing=True)
    def step(photos, targets, grams, weights):
        loss, terms = train_step(model, optimizer, extractor, photos, targets, grams, weights,
                                 content_layer=content_layer, style_layers=style_layers, global_batch=shape[0])
        return loss, terms, model(photos, training=False)

    _COMPILED[key] = _Compiled(model, optimizer, [np.asarray(v.numpy()) for v in variables], step)
    return _COMPILED[key]


def tune_network(
    contents: np.ndarray,
    style: np.ndarray,
    config: StyleConfig,
    *,
    steps: int = 50,
    lr: float = PROXY_LR,
    blend: bool = False,
    callback: Callback | None = None,
    image_callback: ImageCallback | None = None,
    extractor=None,
    view: Sequence[np.ndarray] = (),
) -> GatysResult:
    """Tune the pretrained transformer's normalisation on ``contents`` for ``steps`` Adam steps; see the module docstring.

    ``contents`` is ``(B, H, W, 3)`` in [0, 1] with H and W multiples of 4 (the
    transformer halves the size twice). ``callback(step, mean_loss, mean_terms)`` and
    ``image_callback(step, images)`` follow :func:`nst.gatys.stylize`: step ``k`` sees the
    loss before the ``k``-th update and the pictures after it, and either may return True
    to stop. A non-finite loss ends the run with ``status="failed"`` and the last finite
    pictures. ``blend`` adds the photo blend (:class:`nst.layers.PhotoBlend`), as
    ``trainer fit --photo-skip`` does for the magenta network; studies record whether
    their proxy has it. ``extractor`` replaces the loss network built from ``config`` (tests).

    ``view`` holds the test photos at the size people look at (a study's ``view_size``,
    512 px by default): when the run ends well, the tuned network paints each of them as
    ``trainer stylize`` paints a large photo (:func:`nst.viewsize.paint_at_scale`: at the
    proxy's size, the stroke scale the trial was tuned and judged at, then enlarged with
    the photo's detail restored) into ``result.view_images``. That is what the gallery shows.
    """
    import tensorflow as tf

    from nst.images import resize_longest
    from nst.losses import style_targets
    from nst.lossnets import get_extractor
    from nst.training import loss_weights

    batch = np.asarray(contents, np.float32)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"contents must be (B, H, W, 3), got {batch.shape}")
    if batch.shape[1] % 4 or batch.shape[2] % 4:
        raise ValueError(f"the network proxy needs sides that are multiples of 4, got {batch.shape[1:3]}")
    if steps < 1 or not lr > 0:
        raise ValueError(f"steps must be >= 1 and lr > 0, got {steps} and {lr}")
    extractor = extractor or get_extractor(config.network, config.layers, config.pooling)
    layers = tuple(config.active_style_layers)
    side = style_size(batch.shape[1:3], config.style_scale)
    grams = style_targets(extractor(tf.constant(resize_longest(style, side)[None])), layers)
    photos = tf.constant(batch)
    targets = extractor(photos)[config.content_layer]
    weights = tf.constant(loss_weights(config))

    started = time.perf_counter()
    net = _compiled(style, extractor, config.content_layer, layers, batch.shape, blend)
    net.reset(lr)
    result = GatysResult(images=np.clip(net.model(photos).numpy(), 0.0, 1.0))
    for k in range(1, steps + 1):
        loss, terms, images = net.step(photos, targets, grams, weights)
        result.evaluations += 1
        mean_loss = float(loss)
        if not math.isfinite(mean_loss):
            result.status = "failed"
            result.reason = f"loss became {mean_loss} at step {k}; the weights are probably too large for this loss network"
            break
        images = images.numpy()
        if not np.isfinite(images).all():
            result.status, result.reason = "failed", f"the network's pictures stopped being finite at step {k}"
            break
        result.iterations = k
        result.images = np.clip(images, 0.0, 1.0).astype(np.float32)
        result.history.append(mean_loss)
        result.terms = {name: np.asarray(v) for name, v in terms.items()}
        if callback is not None and callback(k, mean_loss, {n: float(np.mean(v)) for n, v in result.terms.items()}):
            result.status, result.reason = "stopped", "stopped by callback"
            break
        if image_callback is not None and image_callback(k, result.images):
            result.status, result.reason = "stopped", "stopped by callback"
            break
    if result.ok and view:
        from nst.viewsize import paint_at_scale

        side = int(max(batch.shape[1:3]))
        result.view_images = [paint_at_scale(lambda x: paint(net.model, x), photo, side) for photo in view]
    result.seconds = time.perf_counter() - started
    if result.status == "ok":
        result.reason = f"reached {steps} steps"
    return result


def paint(model, photo: np.ndarray) -> np.ndarray:
    """``photo`` ``(H, W, 3)`` painted by a transformer ``model`` at its own size, in [0, 1].

    The sides are padded by reflection to a multiple of 4 (the transformer halves the size
    twice) and the result cropped back, as :mod:`trainer.stylize` does for a trained network.
    """
    from nst.viewsize import paint_padded

    out = paint_padded(lambda x: np.asarray(model(x[None], training=False))[0], np.asarray(photo, np.float32), 4)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
