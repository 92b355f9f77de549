"""The one training step of a feed-forward style network, for the network proxy and ``trainer fit``.

A trial is ranked by the network proxy (:mod:`nst.netproxy`: a few steps on the test
photos) and taken home as the network ``trainer fit`` trains (many steps on many photos).
The pick means something only if both take the same step, so both call
:func:`train_step`: the proxy inside its compiled loop, the trainer inside its
``keras.Model.train_step`` (keras-io's AdaIN example has the same shape: one step, used
by ``fit``).

The loss weights travel as one tensor (:func:`loss_weights`: content, style, TV, then one
weight per style layer), so a compiled step serves every configuration that reads the
same layers: a new trial does not retrace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from nst.config import StyleConfig
from nst.losses import total_loss


def loss_weights(config: StyleConfig) -> np.ndarray:
    """``[content, style, tv, w_1, ..., w_n]`` for the config's active style layers, in their order."""
    w = config.style_weights
    return np.asarray([config.content_weight, config.style_weight, config.tv_weight,
                       *[w[n] for n in config.active_style_layers]], np.float32)


def style_loss(
    features: Mapping[str, tf.Tensor],
    images: tf.Tensor,
    targets: tf.Tensor,
    grams: Mapping[str, tf.Tensor],
    content_layer: str,
    style_layers: tuple[str, ...],
    weights: tf.Tensor,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """:func:`nst.losses.total_loss` with the weights as one tensor (see :func:`loss_weights`)."""
    return total_loss(features, images, targets, grams, content_layer,
                      {n: weights[3 + i] for i, n in enumerate(style_layers)}, weights[0], weights[1], weights[2])


def train_step(
    network: Any,
    optimizer: Any,
    extractor: Any,
    photos: tf.Tensor,
    targets: tf.Tensor,
    grams: Mapping[str, tf.Tensor],
    weights: tf.Tensor,
    *,
    content_layer: str,
    style_layers: tuple[str, ...],
    global_batch: float,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """One Adam (or any Keras optimiser) step of ``network``'s trainable weights on the style loss.

    ``targets`` are the photos' content features at ``content_layer``; ``grams`` the
    painting's Gram targets. The loss is the sum over this batch divided by
    ``global_batch``: under a ``tf.distribute`` strategy the optimiser sums the replicas'
    gradients, so the step is the mean over the global batch on any device count (with
    one device, ``global_batch`` is the batch and this is the plain mean). Returns that
    loss and the per-item terms (each ``(B,)``).
    """
    variables = network.trainable_variables
    with tf.GradientTape() as tape:
        out = network(photos, training=True)
        per_item, terms = style_loss(extractor(out), out, targets, grams, content_layer, style_layers, weights)
        loss = tf.reduce_sum(per_item) / global_batch
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
    return loss, terms
