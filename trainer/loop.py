"""The training step as a ``keras.Model``, so ``model.fit`` runs the loop.

This follows the shape of keras-io's AdaIN example: a small ``keras.Model`` holds the
network being trained next to the frozen loss network, and its ``train_step`` computes
the loss and applies the gradients; ``fit`` supplies the loop, the distribution over
devices and the callbacks (:mod:`trainer.callbacks`). The step itself is
:func:`nst.training.train_step`, the one the network proxy takes for every trial, on the
features of :func:`nst.lossnets.get_extractor`, the painting's Gram targets and the
config's loss weights as one tensor (:func:`nst.training.loss_weights`).

A batch is either photos, or ``(photos, content features)`` when the features were
precomputed (:mod:`trainer.features`): the features play the part of ``y``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from nst.config import StyleConfig
from nst.training import loss_weights, style_loss, train_step


@dataclass(frozen=True)
class StyleLoss:
    """What the loss needs besides the network: the loss networks, the painting's Grams, the config."""

    extractor: Any  # nst.lossnets.FeatureExtractor of the style (and content) layers
    content_extractor: Any  # the same network cut at the content layer, for photos without cached features
    grams: dict[str, Any]
    config: StyleConfig

    @property
    def weights(self):
        return tf.constant(loss_weights(self.config))

    def targets(self, photos, targets=None):
        """The photos' content features: ``targets`` when they were precomputed, else computed here."""
        return self.content_extractor(photos)[self.config.content_layer] if targets is None else targets

    def __call__(self, out, photos, targets=None):
        """``(loss per crop, {term: per crop})`` of the network's output ``out`` for ``photos``."""
        cfg = self.config
        return style_loss(self.extractor(out), out, self.targets(photos, targets), self.grams, cfg.content_layer,
                          cfg.active_style_layers, self.weights)


class StyleTraining(keras.Model):
    """The transformation ``network`` with its loss; ``fit`` trains the network's trainable weights.

    Only ``network`` is tracked as a sublayer: the loss networks sit in :class:`StyleLoss`,
    a plain record, so they are never trained and never saved with the network.
    """

    def __init__(self, network: keras.Model, loss: StyleLoss, global_batch: int, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.style_loss = loss
        self.global_batch = float(global_batch)
        self.built = True  # the network is built; nothing here needs a symbolic build pass

    def call(self, photos, training: bool = False):
        return self.network(photos, training=training)

    def losses_of(self, photos, targets=None, training: bool = True):
        out = self.network(photos, training=training)
        return self.style_loss(out, photos, targets)

    def train_step(self, data):
        photos, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        sl, cfg = self.style_loss, self.style_loss.config
        loss, terms = train_step(self.network, self.optimizer, sl.extractor, photos, sl.targets(photos, targets),
                                 sl.grams, sl.weights, content_layer=cfg.content_layer,
                                 style_layers=cfg.active_style_layers, global_batch=self.global_batch)
        weights = self.network.trainable_variables
        logs = {"loss": loss, **{k: tf.reduce_sum(v) / self.global_batch for k, v in terms.items()}}
        # A finite loss with an overflowing update still ruins the weights: watch the weights too.
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in weights])
        logs["nonfinite_weights"] = 1.0 - tf.cast(finite, tf.float32)
        # Each replica holds its share; summing here gives every replica the global value, which
        # the mean fit takes over replicas leaves unchanged.
        ctx = tf.distribute.get_replica_context()
        return {k: ctx.all_reduce(tf.distribute.ReduceOp.SUM, v) for k, v in logs.items()}

    def test_step(self, data):
        photos, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        per_item, terms = self.losses_of(photos, targets, training=False)
        return {"loss": tf.reduce_mean(per_item), **{k: tf.reduce_mean(v) for k, v in terms.items()}}

    def seconds_per_step(self, shape: tuple[int, int, int, int], seed: int, repeats: int = 1) -> float:
        """Seconds one step takes on this machine, measured on random photos without changing any weight.

        Computes the loss and its gradients (what a step costs; applying them is
        negligible) on a batch of ``shape``, once to trace and ``repeats`` times timed.
        """
        photos = tf.random.stateless_uniform(shape, seed=(seed, 1))
        weights = self.network.trainable_variables

        @tf.function
        def probe(x):
            with tf.GradientTape() as tape:
                per_item, _ = self.losses_of(x)
                loss = tf.reduce_mean(per_item)
            return loss, tape.gradient(loss, weights)

        probe(photos)  # trace
        started = time.perf_counter()
        for _ in range(repeats):
            loss, _ = probe(photos)
            float(loss)
        return (time.perf_counter() - started) / repeats
