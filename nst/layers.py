"""The layers of the feed-forward networks, shared by the network proxy and ``trainer fit``.

Registered with Keras under the package name ``styletune`` so saved ``.keras`` files load
wherever this module has been imported. Only the Keras TensorFlow backend is used.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="styletune")
class ReflectionPad(keras.layers.Layer):
    """Pad height and width by mirroring the picture (no dark border as with zeros)."""

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        p = self.pad
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        def grow(n):
            return None if n is None else n + 2 * self.pad

        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="styletune")
class Upsample2x(keras.layers.Layer):
    """Double height and width by nearest-neighbour or bilinear (half-pixel centres) resizing.

    Keras's ``UpSampling2D`` loses the static channel count under a dynamic input size,
    which stops the TFLite converter from lowering the next convolution to a builtin;
    ``tf.image.resize`` keeps it. (styletune runs Keras on its TensorFlow backend only.)
    """

    def __init__(self, interpolation: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', not {interpolation!r}")
        self.interpolation = interpolation

    def call(self, x):
        import tensorflow as tf

        return tf.image.resize(x, tf.shape(x)[1:3] * 2, method=self.interpolation)

    def compute_output_shape(self, shape):
        def grow(n):
            return None if n is None else 2 * n

        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


def moments(x):
    """Mean and variance over height and width, ``(B, 1, 1, C)``, averaged rows first, then columns.

    Mathematically the plain mean over all pixels. The two stages matter for TFLite, whose
    MEAN kernel sums in float32 one element after another: over a million pixels that
    loses about 1e-2 of the result (measured: outputs off by 0.04 at 1000x1000), while
    two means of about a thousand elements each stay within 1e-4.
    """
    mean = ops.mean(ops.mean(x, axis=1, keepdims=True), axis=2, keepdims=True)
    sq = ops.square(x - mean)
    variance = ops.mean(ops.mean(sq, axis=1, keepdims=True), axis=2, keepdims=True)
    return mean, variance


@keras.saving.register_keras_serializable(package="styletune")
class Logit(keras.layers.Layer):
    """``log(p / (1 - p))`` of a picture in [0, 1], clipped to ``[eps, 1 - eps]``: the inverse of the output sigmoid."""

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        p = ops.clip(x, self.epsilon, 1.0 - self.epsilon)
        return ops.log(p) - ops.log(1.0 - p)

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="styletune")
class PhotoBlend(keras.layers.Layer):
    """``painted + a * (photo - painted)`` with one learned ``a`` per colour channel, starting at 0.

    Takes ``[photo, painted]``. The magenta network's counterpart of the photo skip
    (:func:`nst.transformer.build_magenta`): at ``a = 0`` it is the pretrained network
    unchanged, and a loss that asks for more of the photo can get the photo's own colours
    back with three numbers, for every photo at once, where the normalisation layers can
    only learn one colour shift for all of them (docs/trainer.md, "The photo blend").
    """

    def build(self, input_shape):
        self.a = self.add_weight(shape=(3,), initializer="zeros", name="a")

    def call(self, inputs):
        photo, painted = inputs
        return painted + self.a * (photo - painted)

    def compute_output_shape(self, shapes):
        return shapes[1]


@keras.saving.register_keras_serializable(package="styletune")
class InstanceNorm(keras.layers.Layer):
    """Instance normalisation (Ulyanov et al. 2016) with a learned scale and shift per channel.

    Normally each picture is normalised by its own mean and variance over height and width.
    Given ``mean`` and ``variance`` (shape ``(B, 1, 1, C)``) it uses those instead, so
    tiles of one large picture can share the statistics of the whole.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros")

    def call(self, x, mean=None, variance=None):
        if mean is None:
            mean, variance = moments(x)
        return (x - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def norm_layers(model: keras.Model) -> list[InstanceNorm]:
    return [layer for layer in model.layers if isinstance(layer, InstanceNorm)]


def freeze_all_but_norm(model) -> None:
    """Leave only the instance-norm layers' gamma and beta trainable (``Settings.tune == "norm"``).

    Dumoulin, Shlens & Kudlur (2017), "A learned representation for artistic style", show
    that one transformer can paint many styles when each style owns nothing but the
    normalisation layers' scale and shift, and that a new style can be added by training
    only those. Magenta's arbitrary model is built on that result, so fine-tuning just
    these ~700 numbers moves the painting's style within what the pretrained
    convolutions can express, and cannot unlearn how they keep the photo's structure
    (measured in docs/trainer.md: all weights at the same steps wash the photo out).
    The photo blend's three numbers (:class:`PhotoBlend`) stay trainable too.
    """
    for layer in model.layers:
        if not isinstance(layer, InstanceNorm | PhotoBlend) and layer.weights:
            layer.trainable = False
