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

**The paint side.** The transformer is fully convolutional, so a stroke it learns is a
number of pixels. Tuned on whole photos at 128 px, its look is a 128 px picture's, and a
512 px print of it is that picture enlarged: soft. Magenta's own model paints at 384 px.
With ``crop`` the proxy learns the look at the paint side instead, at the same cost per
step: the test photos are given at the paint side (384 px by default in a study), each
step tunes on one proxy-size crop of each (a few fixed sets of crops, in turn), the
painting's Gram targets are taken at the paint side's scale, and the pictures are the
whole photos painted at the paint side. ``trainer fit --from-study`` trains on crops of
photos scaled the same way (its ``scale_side``), and ``trainer stylize`` paints there.

The result is a :class:`nst.gatys.GatysResult`, so the tuner handles both proxies alike.
A step costs one forward and backward pass of the loss network over the batch, as a Gatys
evaluation does, plus the small transformer (about a tenth of that).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nst.config import PROXY_LR, StyleConfig
from nst.gatys import Callback, GatysResult, ImageCallback, style_size

#: Fixed sets of crops a paint-side run takes in turn: each photo is seen at several places
#: without a new content target (one loss-network pass) every step.
CROP_SETS = 4

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
    crop: int | None = None,
    crop_sets: int = CROP_SETS,
    image_steps: Collection[int] | None = None,
    seed: int = 0,
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

    ``crop`` tunes at the paint side instead (see the module docstring): ``contents`` are
    the test photos at the study's paint side, each step's batch is one ``crop`` px piece
    of each photo (``crop_sets`` fixed sets, drawn with ``seed`` and taken in turn), the
    painting's Gram targets are computed at :func:`nst.gatys.style_size` of the paint
    side, and the pictures are the whole photos painted at the paint side. Painting them
    costs more than a step, so ``image_callback`` then sees pictures only at
    ``image_steps`` (every step when None), and the view pictures are painted at the
    paint side.
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
    if crop is not None and (crop % 4 or not 4 <= crop <= min(batch.shape[1:3])):
        raise ValueError(f"crop must be a multiple of 4 no larger than the photos {batch.shape[1:3]}, got {crop}")
    extractor = extractor or get_extractor(config.network, config.layers, config.pooling)
    layers = tuple(config.active_style_layers)
    side = style_size(batch.shape[1:3], config.style_scale)
    grams = style_targets(extractor(tf.constant(resize_longest(style, side)[None])), layers)
    sets = [batch] if crop is None else crop_batches(batch, crop, crop_sets, seed)
    inputs = [tf.constant(b) for b in sets]
    targets = [extractor(b)[config.content_layer] for b in inputs]
    weights = tf.constant(loss_weights(config))

    started = time.perf_counter()
    net = _compiled(style, extractor, config.content_layer, layers, sets[0].shape, blend)
    net.reset(lr)

    def whole() -> np.ndarray:  # the test photos painted whole, at their own (paint) size
        return np.stack([paint(net.model, p) for p in batch])

    result = GatysResult(images=np.clip(net.model(inputs[0]).numpy(), 0.0, 1.0) if crop is None else whole())
    for k in range(1, steps + 1):
        j = (k - 1) % len(inputs)
        loss, terms, images = net.step(inputs[j], targets[j], grams, weights)
        result.evaluations += 1
        mean_loss = float(loss)
        if not math.isfinite(mean_loss):
            result.status = "failed"
            result.reason = f"loss became {mean_loss} at step {k}; the weights are probably too large for this loss network"
            break
        show = image_callback is not None and (image_steps is None or k in image_steps)
        if crop is None or show or k == steps:  # whole pictures cost a pass each: only when someone looks
            images = images.numpy() if crop is None else whole()
            if not np.isfinite(images).all():
                result.status, result.reason = "failed", f"the network's pictures stopped being finite at step {k}"
                break
            result.images = np.clip(images, 0.0, 1.0).astype(np.float32)
        result.iterations = k
        result.history.append(mean_loss)
        result.terms = {name: np.asarray(v) for name, v in terms.items()}
        if callback is not None and callback(k, mean_loss, {n: float(np.mean(v)) for n, v in result.terms.items()}):
            result.status, result.reason = "stopped", "stopped by callback"
            break
        if show and image_callback(k, result.images):
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


def crop_batches(photos: np.ndarray, crop: int, sets: int, seed: int = 0) -> list[np.ndarray]:
    """``sets`` batches of one ``crop`` x ``crop`` piece of each photo, at seeded random places."""
    rng = np.random.default_rng(seed)
    b, h, w = photos.shape[:3]
    out = []
    for _ in range(max(1, sets)):
        tops, lefts = rng.integers(0, h - crop + 1, b), rng.integers(0, w - crop + 1, b)
        out.append(np.stack([p[t:t + crop, x:x + crop] for p, t, x in zip(photos, tops, lefts, strict=True)]))
    return out


def paint(model, photo: np.ndarray) -> np.ndarray:
    """``photo`` ``(H, W, 3)`` painted by a transformer ``model`` at its own size, in [0, 1].

    The sides are padded by reflection to a multiple of 4 (the transformer halves the size
    twice) and the result cropped back, as :mod:`trainer.stylize` does for a trained network.
    """
    from nst.viewsize import paint_padded

    out = paint_padded(lambda x: np.asarray(model(x[None], training=False))[0], np.asarray(photo, np.float32), 4)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
