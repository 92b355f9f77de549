"""Style, content and total-variation losses as small pure functions.

Every term is a per-element mean, so one set of weights means the same at 128 px and at
512 px (a deviation from Gatys et al., who sum; the same choice as pystiche and the
TensorFlow tutorial). Each total returns ``(scalar, {term: value})`` so the same dict
feeds progress bars, trial attributes and the dashboard.

All functions take batched tensors ``(B, H, W, C)`` and return one value per batch item
where that makes sense, so a batch of test photos is optimised as independent problems.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from nst.config import StyleConfig


def gram(features: tf.Tensor) -> tf.Tensor:
    """Channel co-activation matrix averaged over positions: ``F^T F / (H W)``, shape ``(B, C, C)``."""
    shape = tf.shape(features)
    n = tf.cast(shape[1] * shape[2], features.dtype)
    return tf.einsum("bhwc,bhwd->bcd", features, features) / n


def style_layer_loss(features: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """Mean squared Gram difference per batch item, ``(B,)``; ``target_gram`` is ``(1|B, C, C)``."""
    return tf.reduce_mean(tf.square(gram(features) - target_gram), axis=[1, 2])


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean squared feature difference per batch item, ``(B,)``."""
    return tf.reduce_mean(tf.square(features - target), axis=[1, 2, 3])


def total_variation(images: tf.Tensor) -> tf.Tensor:
    """Anisotropic L1 total variation as a mean: ``mean|dx| + mean|dy|`` per item, ``(B,)``.

    Deliberately per pixel: its job is to suppress pixel-level speckle, which costs the
    same at any resolution under this definition. The price is that smooth structure
    costs less at higher resolution (its per-pixel steps shrink as 1/size), so a TV
    weight tuned at 128 px is slightly gentler on edges at 512 px.
    """
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return tf.reduce_mean(tf.abs(dy), axis=[1, 2, 3]) + tf.reduce_mean(tf.abs(dx), axis=[1, 2, 3])


def style_targets(features: Mapping[str, tf.Tensor], layers: tuple[str, ...]) -> dict[str, tf.Tensor]:
    """Gram matrices of the style image's features, the fixed targets of the style loss."""
    return {name: gram(features[name]) for name in layers}


def total_loss(
    features: Mapping[str, tf.Tensor],
    images: tf.Tensor,
    content_target: tf.Tensor,
    style_grams: Mapping[str, tf.Tensor],
    content_layer: str,
    style_weights: Mapping[str, tf.Tensor | float],
    content_weight: tf.Tensor | float,
    style_weight: tf.Tensor | float,
    tv_weight: tf.Tensor | float,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Weighted loss per batch item and its parts.

    Weights may be Python floats or scalar tensors (tensors let one compiled step serve
    every config that reads the same layers). Returns ``(total, terms)``: ``total`` has
    shape ``(B,)``; ``terms`` holds the unweighted ``content``, the layer-weighted
    ``style``, ``tv`` and one ``style:<layer>`` per style layer, each ``(B,)``.
    """
    terms: dict[str, tf.Tensor] = {}
    c = content_loss(features[content_layer], content_target)
    style = tf.zeros_like(c)
    for name, weight in style_weights.items():
        part = style_layer_loss(features[name], style_grams[name])
        terms[f"style:{name}"] = part
        style = style + weight * part
    tv = total_variation(images)
    terms["content"] = c
    terms["style"] = style
    terms["tv"] = tv
    total = content_weight * c + style_weight * style + tv_weight * tv
    return total, terms


def config_loss(
    features: Mapping[str, tf.Tensor],
    images: tf.Tensor,
    content_target: tf.Tensor,
    style_grams: Mapping[str, tf.Tensor],
    config: StyleConfig,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """:func:`total_loss` with every weight taken from a :class:`StyleConfig`."""
    return total_loss(
        features, images, content_target, style_grams, config.content_layer,
        {n: w for n, w in config.style_layers if w > 0},
        config.content_weight, config.style_weight, config.tv_weight,
    )
