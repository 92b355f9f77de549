"""Gatys et al. (2015) style transfer by optimising the pixels of a batch of photos.

This is the cheap proxy the tuner runs for every trial, and the renderer behind
``tuner render``. What makes it fast on a CPU is doing less:

* **L-BFGS** (SciPy's L-BFGS-B, with the pixel box ``[0, 1]`` as bounds) needs far fewer
  network evaluations than Adam; Adam with the TensorFlow tutorial's recipe
  (lr 0.02, beta1 0.99, epsilon 0.1) is kept as ``method="adam"``.
* **Start from the photo** (``init="content"``), so the content term starts at zero.
* **Cached style targets** per (network, pooling, style image, size, layers).
* **A truncated network**: the feature extractor stops at the deepest layer used.
* **One compiled step** (``tf.function`` with XLA) per network and layer set; the loss
  weights are arguments, so a new config with the same layers does not retrace.
* **A batch of photos** of one size is optimised at once as independent problems.
* **Early stopping** when the loss stops improving.

A NaN or infinite loss never raises: the result comes back with ``status="failed"`` and
the reason, holding the last finite images.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from nst.config import StyleConfig
from nst.images import MIN_SIDE, resize_longest
from nst.losses import gram, total_loss
from nst.lossnets import FeatureExtractor, get_extractor

#: ``callback(step, mean_loss, mean_terms) -> stop?``; may also raise to abort the run.
Callback = Callable[[int, float, dict[str, float]], "bool | None"]
#: ``image_callback(step, images) -> stop?`` sees the current ``(B, H, W, 3)`` images
#: (the tuner judges them at checkpoints to stop hopeless trials); may also raise.
ImageCallback = Callable[[int, np.ndarray], "bool | None"]


@dataclass
class GatysResult:
    images: np.ndarray  # (B, H, W, 3) in [0, 1]
    history: list[float] = field(default_factory=list)  # mean total loss per iteration
    terms: dict[str, np.ndarray] = field(default_factory=dict)  # final unweighted terms, each (B,)
    iterations: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    status: str = "ok"  # ok | stopped (callback or early stop) | failed (NaN/inf)
    reason: str = ""
    view_images: list[np.ndarray] = field(default_factory=list)  # the network proxy's pictures at the view size

    @property
    def ok(self) -> bool:
        return self.status != "failed"


_STYLE_CACHE: dict[tuple, dict[str, tf.Tensor]] = {}
_STEP_CACHE: dict[tuple, Callable] = {}


def style_size(content_hw: tuple[int, int], style_scale: float) -> int:
    """Longest side of the style image: ``style_scale`` times the content's longest side.

    Defining it relative to the content keeps a brush stroke the same fraction of the
    picture at proxy size and at training size.
    """
    return max(MIN_SIDE, round(style_scale * max(content_hw)))


def _style_grams(extractor: FeatureExtractor, style: np.ndarray, size: int, layers: tuple[str, ...]) -> dict[str, tf.Tensor]:
    digest = hashlib.blake2b(np.ascontiguousarray(style).tobytes(), digest_size=16).hexdigest()
    key = (extractor.spec.name, extractor.pooling, id(extractor), digest, style.shape, size, layers)
    if key not in _STYLE_CACHE:
        if len(_STYLE_CACHE) > 64:
            _STYLE_CACHE.pop(next(iter(_STYLE_CACHE)))
        img = tf.constant(resize_longest(style, size)[None])
        feats = extractor(img)
        _STYLE_CACHE[key] = {name: gram(feats[name]) for name in layers}
    return _STYLE_CACHE[key]


def _loss_and_grad_fn(extractor: FeatureExtractor, content_layer: str, style_layers: tuple[str, ...], jit: bool):
    """Compiled ``(x, targets, weights) -> (loss_sum, per_item, terms, grad)`` for one layer set."""
    key = (id(extractor), content_layer, style_layers, jit)
    if key in _STEP_CACHE:
        return _STEP_CACHE[key]

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def fn(x, content_target, grams, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            feats = extractor(x)
            per_item, terms = total_loss(
                feats, x, content_target, grams, content_layer,
                {n: weights[3 + i] for i, n in enumerate(style_layers)},
                weights[0], weights[1], weights[2],
            )
            loss = tf.reduce_sum(per_item)
        return loss, per_item, terms, tape.gradient(loss, x)

    _STEP_CACHE[key] = fn
    return fn


def _weights_vector(config: StyleConfig, style_layers: tuple[str, ...]) -> tf.Tensor:
    w = config.style_weights
    return tf.constant([config.content_weight, config.style_weight, config.tv_weight, *[w[n] for n in style_layers]], tf.float32)


def initial_image(content: np.ndarray, init: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if init == "content":
        return content.copy()
    noise = rng.uniform(0.0, 1.0, content.shape).astype(np.float32)
    if init == "noise":
        return noise
    return (0.5 * content + 0.5 * noise).astype(np.float32)


class _Stopper:
    """Early stop when the best loss improved by less than ``tol`` (relative) over ``patience`` steps."""

    def __init__(self, tol: float, patience: int, min_steps: int):
        self.tol, self.patience, self.min_steps = tol, patience, min_steps
        self.best: list[float] = []

    def should_stop(self, step: int, loss: float) -> bool:
        prev = self.best[-1] if self.best else math.inf
        self.best.append(min(prev, loss))
        if self.tol <= 0 or step < self.min_steps or len(self.best) <= self.patience:
            return False
        old = self.best[-1 - self.patience]
        return (old - self.best[-1]) <= self.tol * abs(old)


def stylize(
    contents: np.ndarray | Sequence[np.ndarray],
    style: np.ndarray,
    config: StyleConfig,
    *,
    steps: int = 100,
    method: str = "lbfgs",
    callback: Callback | None = None,
    early_stop_tol: float = 2e-3,
    patience: int = 10,
    min_steps: int = 20,
    jit: bool = True,
    seed: int = 0,
    extractor: FeatureExtractor | None = None,
    image_callback: ImageCallback | None = None,
    init_images: np.ndarray | None = None,
) -> GatysResult:
    """Stylise a batch of same-sized photos with the loss described by ``config``.

    ``contents`` is ``(B, H, W, 3)`` or a list of such images (all the same size);
    ``style`` any size (it is resized by ``config.style_scale``). ``steps`` bounds the
    optimiser iterations; ``early_stop_tol=0`` disables early stopping. ``extractor``
    overrides the network built from ``config`` (tests pass tiny ones).
    ``image_callback`` is called after ``callback`` with the step and current images.
    ``init_images`` (same shape as the batch, in [0, 1]) replaces ``config.init`` as the
    starting point, e.g. an upsampled result of a coarser run.
    """
    batch = _as_batch(contents)
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"method must be 'lbfgs' or 'adam', not {method!r}")
    loss = _Loss.build(extractor or get_extractor(config.network, config.layers, config.pooling), config, batch,
                       style, jit)
    x0 = _start(batch, config, seed, init_images)
    run = _Run(loss, batch.shape, GatysResult(images=x0.copy()), _Stopper(early_stop_tol, patience, min_steps),
               callback, image_callback, f"converged (loss improved < {early_stop_tol:g} over {patience} steps)")
    started = time.perf_counter()
    if method == "lbfgs":
        _run_lbfgs(x0, run.evaluate, run.after_step, steps, run.result)
    else:
        _run_adam(x0, loss.fn, loss.content_target, loss.grams, loss.weights, steps, run.last, run.after_step,
                  run.result)
    result = run.result
    result.seconds = time.perf_counter() - started
    if result.status == "ok" and result.iterations >= steps:
        result.reason = f"reached {steps} steps"
    return result


def _as_batch(contents: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """``(B, H, W, 3)`` float32 from one image, a batch or a list of same-sized images."""
    batch = np.stack(list(contents)) if not isinstance(contents, np.ndarray) or contents.ndim == 3 else contents
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"contents must be (B, H, W, 3), got {batch.shape}")
    return batch.astype(np.float32)


def _start(batch: np.ndarray, config: StyleConfig, seed: int, init_images: np.ndarray | None) -> np.ndarray:
    """The starting pixels: ``init_images`` when given, else ``config.init`` per photo (seeded by its index)."""
    if init_images is not None:
        if init_images.shape != batch.shape:
            raise ValueError(f"init_images must have the batch's shape {batch.shape}, got {init_images.shape}")
        return np.clip(init_images, 0.0, 1.0).astype(np.float32)
    return np.stack([initial_image(c, config.init, seed + i) for i, c in enumerate(batch)])


@dataclass(frozen=True)
class _Loss:
    """The compiled loss of one config on one batch, with its fixed targets and weights."""

    fn: Callable
    content_target: tf.Tensor
    grams: dict[str, tf.Tensor]
    weights: tf.Tensor

    @classmethod
    def build(cls, extractor: FeatureExtractor, config: StyleConfig, batch: np.ndarray, style: np.ndarray,
              jit: bool) -> _Loss:
        style_layers = config.active_style_layers
        size = style_size(batch.shape[1:3], config.style_scale)
        grams = _style_grams(extractor, style, size, style_layers)
        content_target = extractor(tf.constant(batch))[config.content_layer]
        weights = _weights_vector(config, style_layers)
        return cls(_loss_and_grad_fn(extractor, config.content_layer, style_layers, jit), content_target, grams, weights)


class _Run:
    """One optimisation's bookkeeping: evaluations, the per-step record, callbacks and the stop decision."""

    def __init__(self, loss: _Loss, shape: tuple[int, ...], result: GatysResult, stopper: _Stopper,
                 callback: Callback | None, image_callback: ImageCallback | None, converged: str):
        self.loss, self.shape, self.result, self.stopper = loss, shape, result, stopper
        self.callback, self.image_callback, self.converged = callback, image_callback, converged
        self.last: dict = {}

    def evaluate(self, x: np.ndarray):
        """Loss and gradient at ``x``, kept in ``last`` for :meth:`after_step`."""
        self.result.evaluations += 1
        loss, per_item, terms, grad = self.loss.fn(tf.constant(x, tf.float32), self.loss.content_target,
                                                   self.loss.grams, self.loss.weights)
        self.last["loss"], self.last["per_item"], self.last["terms"] = float(loss), per_item, terms
        return self.last["loss"], grad

    def after_step(self, x: np.ndarray) -> bool:
        """Record one iteration; True means stop now."""
        result = self.result
        result.iterations += 1
        mean_loss = self.last["loss"] / self.shape[0]
        if not math.isfinite(mean_loss):
            result.status = "failed"
            result.reason = (f"loss became {mean_loss} at step {result.iterations}; "
                             "the weights are probably too large for this network")
            return True
        result.images = np.clip(x.reshape(self.shape), 0.0, 1.0).astype(np.float32)
        result.history.append(mean_loss)
        result.terms = {k: v.numpy() for k, v in self.last["terms"].items()}
        if self._callbacks_stop(mean_loss):
            result.status, result.reason = "stopped", "stopped by callback"
            return True
        if self.stopper.should_stop(result.iterations, mean_loss):
            result.status, result.reason = "stopped", self.converged
            return True
        return False

    def _callbacks_stop(self, mean_loss: float) -> bool:
        """Call ``callback`` then ``image_callback`` (the second only if the first did not stop)."""
        result = self.result
        if self.callback is not None:
            mean_terms = {k: float(np.mean(v)) for k, v in result.terms.items()}
            if self.callback(result.iterations, mean_loss, mean_terms):
                return True
        return self.image_callback is not None and bool(self.image_callback(result.iterations, result.images))


def _run_lbfgs(x0, evaluate, after_step, steps, result) -> None:
    from scipy.optimize import Bounds, minimize

    shape = x0.shape

    def fun(flat: np.ndarray):
        loss, grad = evaluate(flat.reshape(shape))
        if not math.isfinite(loss):
            # Give L-BFGS a finite value so it backs off; after_step reports the failure.
            return 1e30, np.zeros_like(flat)
        return loss, grad.numpy().astype(np.float64).ravel()

    def cb(intermediate_result) -> None:
        if after_step(intermediate_result.x):
            raise StopIteration

    # Probe once so a non-finite start is reported instead of L-BFGS wandering off.
    loss0, _ = evaluate(x0)
    if not math.isfinite(loss0):
        after_step(x0)
        return
    minimize(
        fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
        bounds=Bounds(np.zeros(x0.size), np.ones(x0.size)),
        callback=cb, options={"maxiter": steps, "maxfun": steps * 3, "ftol": 1e-12, "gtol": 0.0, "maxcor": 20},
    )


def _run_adam(x0, fn, content_target, grams, weights, steps, last, after_step, result) -> None:
    import keras

    image = tf.Variable(x0, dtype=tf.float32)
    opt = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=0.1)
    opt.build([image])

    @tf.function
    def apply(grad):
        opt.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))

    for _ in range(steps):
        result.evaluations += 1
        loss, per_item, terms, grad = fn(image, content_target, grams, weights)
        last["loss"], last["per_item"], last["terms"] = float(loss), per_item, terms
        if not math.isfinite(last["loss"]):
            after_step(image.numpy())
            return
        apply(grad)
        if after_step(image.numpy()):
            return
