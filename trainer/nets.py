"""The feed-forward image transformation networks.

``johnson``
    Johnson, Alahi & Fei-Fei (2016), "Perceptual losses for real-time style transfer and
    super-resolution", supplementary table 1, with three changes everyone who trains it
    today makes:

    * instance normalisation instead of batch normalisation (Ulyanov, Vedaldi & Lempitsky
      2016, "Instance normalization: the missing ingredient for fast stylization"), which
      makes each picture's contrast independent of the rest of the batch;
    * reflection padding before every convolution instead of zero padding, so borders do
      not darken;
    * nearest-neighbour upsampling followed by a convolution instead of a transposed
      (fractionally strided) convolution. A stride-2 transposed convolution with a 3x3
      kernel covers output pixels unevenly and prints a checkerboard on flat areas (Odena,
      Dumoulin & Olah 2016, "Deconvolution and checkerboard artifacts"); resizing first
      spreads every input pixel evenly.

    Layout: 9x9 conv (32) → 3x3 stride-2 conv (64) → 3x3 stride-2 conv (128) → five
    residual blocks (128) → upsample + 3x3 conv (64) → upsample + 3x3 conv (32) → 9x9 conv
    (3) → sigmoid, so the output is an image in ``[0, 1]`` as the losses expect.

``fast``
    The same layout made cheap for CPUs and phones, following the practical techniques
    collected in Fritz AI's write-ups on mobile style transfer: every convolution is
    depthwise-separable (MobileNets, Howard et al. 2017: a per-channel k x k filter then a
    1x1 mix, about ``k^2`` times fewer multiplies for wide layers); the input is first
    reduced to half resolution and the result is upsampled by 2 at the end, so the whole
    trunk sees a quarter of the pixels. The half-resolution step is a 2x2 average, which is
    *exactly* bilinear interpolation at scale 1/2 with half-pixel centres (the sample
    points fall in the middle of each 2x2 block); the final step is bilinear upsampling.

``magenta``
    Magenta's arbitrary-stylisation transformer (Ghiasi et al. 2017): johnson's layout at a
    quarter of the width, started from the pretrained weights with the painting's style
    vector folded into its normalisation layers, then fine-tuned with the study's loss.
    Built in :mod:`nst.transformer`, which the network proxy shares.

``width`` multiplies every channel count (``0.125`` gives the 4/8/16-channel networks the
tests use). Spatial sizes must be multiples of :func:`size_factor` (4 for johnson, 8 for
fast); :mod:`trainer.stylize` pads any other size by reflection and crops the result.

Every normalisation layer can take its statistics from outside (``fixed_stats=True``):
that is how :mod:`trainer.stylize` processes a large photo in tiles that all normalise
with the statistics of the whole picture, so the tiles agree and no seam appears.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from nst.layers import InstanceNorm, Logit, ReflectionPad, Upsample2x, moments, norm_layers
from trainer.archs import ARCHS

_BASE = (32, 64, 128)
N_RESIDUAL = 5


def size_factor(arch: str) -> int:
    """Input height and width must be multiples of this (total downsampling of the trunk)."""
    return {"johnson": 4, "fast": 8, "magenta": 4}[check_arch(arch)]


def check_arch(arch: str) -> str:
    from nst.errors import ConfigError

    if arch not in ARCHS:
        raise ConfigError(f"unknown network {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch


def channels(width: float) -> tuple[int, int, int]:
    return tuple(max(2, round(c * width)) for c in _BASE)  # type: ignore[return-value]


class _Builder:
    """Assembles either architecture; ``fixed_stats`` adds a mean and variance input per norm layer."""

    def __init__(self, separable: bool, fixed_stats: bool):
        self.separable = separable
        self.fixed_stats = fixed_stats
        self.stat_inputs: list[keras.KerasTensor] = []
        self.n = 0

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def conv(self, x, filters: int, kernel: int, stride: int = 1, bias: bool = True, zero: bool = False):
        if kernel > 1:
            x = ReflectionPad(kernel // 2, name=self._name("pad"))(x)
        init = "zeros" if zero else "glorot_uniform"
        if self.separable:
            return keras.layers.SeparableConv2D(filters, kernel, strides=stride, padding="valid", use_bias=bias,
                                                pointwise_initializer=init, name=self._name("sepconv"))(x)
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=bias,
                                   kernel_initializer=init, name=self._name("conv"))(x)

    def norm(self, x):
        name = self._name("norm")
        layer = InstanceNorm(name=name)
        if not self.fixed_stats:
            return layer(x)
        c = x.shape[-1]
        mean = keras.Input((1, 1, c), name=f"{name}_mean")
        var = keras.Input((1, 1, c), name=f"{name}_var")
        self.stat_inputs += [mean, var]
        return layer(x, mean=mean, variance=var)

    # A bias just before instance normalisation is subtracted again with the mean: it has
    # no effect and a gradient of exactly zero, which Adam would turn into random +-lr
    # steps from rounding noise. So convolutions that feed a norm layer have none.
    def conv_norm_relu(self, x, filters: int, kernel: int, stride: int = 1):
        x = self.norm(self.conv(x, filters, kernel, stride, bias=False))
        return keras.layers.ReLU(name=self._name("relu"))(x)

    def residual(self, x, filters: int):
        y = self.conv_norm_relu(x, filters, 3)
        y = self.norm(self.conv(y, filters, 3, bias=False))
        return keras.layers.Add(name=self._name("add"))([x, y])

    def upsample_conv(self, x, filters: int):
        x = Upsample2x("nearest", name=self._name("up"))(x)
        return self.conv_norm_relu(x, filters, 3)


def build_network(arch: str, width: float = 1.0, *, seed: int = 0, fixed_stats: bool = False,
                  photo_skip: bool = False, input_shape: Sequence[int | None] = (None, None, 3)) -> keras.Model:
    """Build ``johnson`` or ``fast`` (see module docstring) with seeded initial weights.

    With ``fixed_stats`` the model takes ``[image, mean_1, var_1, mean_2, ...]``, one pair
    per normalisation layer in :func:`norm_layers` order; the weights are the same as the
    plain model's (copy them with ``set_weights``).

    ``photo_skip`` adds one connection around the whole network: the last convolution's
    output is added to the photo's logit before the sigmoid, and that convolution starts
    at zero, so the untrained network returns the photo itself and learns a change to it.
    It is the feed-forward counterpart of ``StyleConfig.init="content"`` (the proxy's
    optimisation starts from the photo), and keeps the photo visible from the first step
    instead of after thousands; the loss is unchanged. The ``magenta`` network already
    starts from a painted photo; for it ``photo_skip`` adds :class:`nst.layers.PhotoBlend` instead.
    """
    check_arch(arch)
    if not (0.01 <= width <= 8):
        from nst.errors import ConfigError

        raise ConfigError(f"width must be between 0.01 and 8, not {width}")
    if arch == "magenta":
        from nst.transformer import build_magenta

        return build_magenta(width, seed=seed, fixed_stats=fixed_stats, photo_blend=photo_skip,
                             input_shape=input_shape)
    keras.utils.set_random_seed(seed)
    c1, c2, c3 = channels(width)
    b = _Builder(separable=(arch == "fast"), fixed_stats=fixed_stats)
    image = keras.Input(tuple(input_shape), name="image")
    x = image
    if arch == "fast":
        x = keras.layers.AveragePooling2D(2, name="half_res")(x)
    x = b.conv_norm_relu(x, c1, 9)
    x = b.conv_norm_relu(x, c2, 3, stride=2)
    x = b.conv_norm_relu(x, c3, 3, stride=2)
    for _ in range(N_RESIDUAL):
        x = b.residual(x, c3)
    x = b.upsample_conv(x, c2)
    x = b.upsample_conv(x, c1)
    x = b.conv(x, 3, 9, zero=photo_skip)  # with the skip, the network starts as the identity
    if arch == "fast":
        x = Upsample2x("bilinear", name="full_res")(x)
    if photo_skip:
        x = keras.layers.Add(name="photo_skip")([Logit(name="photo_logit")(image), x])
    out = keras.layers.Activation("sigmoid", name="rgb")(x)
    inputs = [image, *b.stat_inputs] if fixed_stats else image
    return keras.Model(inputs, out, name=f"{arch}_w{width:g}")


def stats_model(model: keras.Model) -> keras.Model:
    """``image -> [mean_1, var_1, mean_2, ...]``: the statistics each norm layer computes on a picture.

    The outputs match the extra inputs of the ``fixed_stats`` model, in the same order.
    Only the ``(B, 1, 1, C)`` moments leave the model, not the feature maps.
    """
    outputs = []
    for layer in norm_layers(model):
        mean, var = moments(layer.input)
        outputs += [mean, var]
    return keras.Model(model.inputs, outputs)
