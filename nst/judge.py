"""The judge: fixed, independent scores for a stylised picture.

Every trial of a study is graded by the same judge, recorded in the study, and the judge
never looks at the trial's own loss: a trial that weights a layer heavily would otherwise
grade its own homework (its loss is small *because* of its weights). Three scores, each
a number per test photo:

``style``
    How far the result is from the painting as a *style*, in two parts. The deep part is
    the distance between the 100-number style vectors that Magenta's style-prediction
    network (Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary
    neural artistic stylization network"; a MobileNetV2 trunk) gives the result and the
    painting cropped to the result's frame. That network was trained to summarise a
    painting so that a transformer can reproduce its look; no trial of a search optimises
    through it. The colour part is a sliced Wasserstein distance (Heitz et al. 2021, "A
    Sliced Wasserstein Loss for Neural Texture Synthesis") between the CIELAB pixel
    distributions of result and painting. Both are normalised by the same distance for
    the untouched photo: **0 = the painting's style, 1 = no more painting-like than the
    photo itself.**
``content``
    How much of the photo's local structure survives, measured without any network:
    ``1 - cs`` where ``cs`` is the contrast-structure term of multi-scale SSIM (Wang,
    Simoncelli & Bovik 2003) on luminance, averaged with weights equal to the photo's
    local contrast (structure counts where the photo has structure; texture laid over a
    flat sky is the style's business, and the noise score's). Normalised by the same
    distance for the painting cropped to the photo's frame, the picture that keeps no
    content at all: **0 = the photo's structure intact, 1 = no more of the photo than
    the painting has.**
``noise``
    Speckle: energy in the finest frequency band relative to the next band, divided by
    the same ratio for whichever of photo and painting is busier. Natural pictures and
    paintings have falling spectra, so the ratio is about the same for both; pixel noise
    has a flat spectrum and drives it up. **1 = as fine-grained as the busier
    reference; a study treats values above** ``noise_limit`` **as infeasible.**

Version 2 moved the style score off ``vgg16_hed``: the search optimises through the VGG16
family, so a VGG judge could reward a trial for sharing its features. Any loss network
(``JudgeSpec.for_network``) can still serve as the judge's style network, with the
sliced distance over four of its layers, for cross-checks and for tests (``tiny``).

A third view, ImageNet VGG16's Gram matrices at the ends of blocks 1-4 (Gatys et al.
2016), normalised by the photo's like the others, can be computed and reported beside the
two (``JudgeSpec.with_gram_view``, weight 0) or weighed in (``JudgeSpec.three_views``, a
third each). It is not in the default: measured against the labelled pairs it agrees less
with a painter, and it favours the Gatys renders that optimise a VGG Gram loss, where the
Magenta view gives the competitors conditioned on it no advantage a person does not see.
Where the judge can be fooled, and how it stays fair to every competitor, is in
``docs/judge.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from nst.errors import ConfigError
from nst.measures import (
    band_ratio,
    lab_pixels,
    painting_in_frame,
    sliced_distance,
    sorted_projections,
    structure_distance,
    unit_directions,
)

JUDGE_NAME = "styletune-judge"
#: 1: style through vgg16_hed (sliced distance over four layers) + colour.
#: 2: style through Magenta's style predictor (vector distance) + colour.
JUDGE_VERSION = 2
#: The style network outside :mod:`nst.lossnets`: Magenta's predictor, via :mod:`nst.arbitrary`.
MAGENTA = "magenta"
#: How the style parts become the style score: ``mean`` (weighted by the shares) or ``median``.
COMBINES = ("mean", "median")
#: The Gram view's layers on ImageNet VGG16: the ends of blocks 1-4, not the search's blockN_conv1.
GRAM_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")


@dataclass(frozen=True)
class JudgeSpec:
    """Everything that defines a judge; stored in each study so scores stay comparable.

    ``network`` is the deep view's network: :data:`MAGENTA` (the default; ``layers`` is then
    empty) or a loss network of :mod:`nst.lossnets`, whose ``layers`` are compared with the
    sliced distance (``projections`` x ``quantiles``). ``gram_network`` (a loss network, or
    ``""`` for none) is the Gram view: the distance between Gram matrices at
    ``gram_layers``; it is reported in the parts, and weighs ``gram_share`` in the style
    score. ``combine`` (:data:`COMBINES`) turns the parts into the style score: ``mean`` is
    ``(1 - colour_share - gram_share) * deep + gram_share * Gram + colour_share * colour``,
    ``median`` the median of the parts. ``pooling`` is the loss networks' pooling.

    The default is version 2's judge (Magenta's vector 2/3, colour 1/3, no Gram view); a
    spec without a Gram view is stored exactly as version 2 stored it, so studies made with
    it stay resumable. :meth:`three_views` is the candidate with every view weighted equally;
    ``docs/judge.md`` says why it is not the default.
    """

    network: str = MAGENTA
    pooling: str = "max"
    layers: tuple[str, ...] = ()
    projections: int = 64  # random directions per layer (and 13 + 3 for colour) for the sliced distance
    quantiles: int = 64  # points at which the sorted projections are compared
    colour_share: float = 1.0 / 3.0  # style = (1 - colour - gram shares) * deep + gram * Gram + colour * colour
    ssim_scales: int = 3
    noise_limit: float = 1.5
    seed: int = 0
    name: str = JUDGE_NAME
    version: int = JUDGE_VERSION
    gram_network: str = ""
    gram_layers: tuple[str, ...] = ()
    gram_share: float = 0.0
    combine: str = "mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "gram_layers", tuple(self.gram_layers) if self.gram_network else ())
        if self.combine not in COMBINES:
            raise ConfigError(f"judge combine must be one of {', '.join(COMBINES)}, not {self.combine!r}")
        if min(self.colour_share, self.gram_share) < 0.0 or self.colour_share + self.gram_share > 1.0:
            raise ConfigError(f"judge colour_share and gram_share must be >= 0 and sum to at most 1, not "
                              f"{self.colour_share} and {self.gram_share}")
        if self.gram_share and not self.gram_network:
            raise ConfigError("judge gram_share needs a gram_network")
        if self.gram_network:
            from nst.lossnets import get_spec

            order = get_spec(self.gram_network).order
            bad = [name for name in self.gram_layers if name not in order]
            if bad or not self.gram_layers:
                raise ConfigError(f"judge Gram network {self.gram_network} has no layer {bad[0] if bad else ''!r}; "
                                  f"choose from {', '.join(order)}")
        if self.network == MAGENTA:
            if self.layers:
                raise ConfigError(f"judge network {MAGENTA} has no layers to choose; leave layers empty")
        else:
            from nst.lossnets import get_spec

            spec = get_spec(self.network)
            bad = [name for name in self.layers if name not in spec.order]
            if bad or not self.layers:
                raise ConfigError(f"judge network {self.network} has no layer {bad[0] if bad else ''!r}; "
                                  f"choose from {', '.join(spec.order)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        if not self.gram_network and self.combine == "mean":
            # No Gram view: the record version 2 has always stored, so its studies stay resumable.
            for key in ("gram_network", "gram_layers", "gram_share", "combine"):
                del d[key]
        else:
            d["gram_layers"] = list(self.gram_layers)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeSpec:
        if data.get("name") != JUDGE_NAME or data.get("version") != JUDGE_VERSION:
            raise ConfigError(
                f"judge {data.get('name')!r} version {data.get('version')!r} is not this styletune's "
                f"({JUDGE_NAME} version {JUDGE_VERSION}); scores would not be comparable"
            )
        return cls(**{**data, "layers": tuple(data["layers"]), "gram_layers": tuple(data.get("gram_layers", ()))})

    @classmethod
    def for_network(cls, network: str) -> JudgeSpec:
        """The default judge (:data:`MAGENTA`), or a single-network judge on a loss network.

        A loss network gives version 1's computation on it: the sliced distance over four of
        its layers and colour, 2:1 (no Magenta and no Gram view), for cross-checks
        and for tests that need no weights (``tiny``). VGG16-shaped networks use the ends of
        blocks 1-4, VGG19 its own block ends, InceptionV3 four mixed blocks from shallow to
        middle, ``tiny`` all three.
        """
        if network == MAGENTA:
            return cls()
        from nst.lossnets import get_spec

        family = get_spec(network).family
        layers = {
            "vgg16": ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3"),
            "vgg19": ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4"),
            "inception_v3": ("mixed0", "mixed2", "mixed4", "mixed6"),
            "tiny": ("conv1", "conv2", "conv3"),
        }[family]
        return cls(network=network, layers=layers)

    @classmethod
    def three_views(cls, combine: str = "mean") -> JudgeSpec:
        """The candidate judge: Magenta's vector, ImageNet VGG16's Gram matrices and colour, a third each.

        Not the default: it agrees less with the labelled pairs, and its Gram view favours
        the renders that optimise VGG16 Gram losses (``docs/judge.md``).
        """
        return cls(gram_network="vgg16", gram_layers=GRAM_LAYERS, gram_share=1.0 / 3.0, combine=combine)

    def with_gram_view(self) -> JudgeSpec:
        """The same judge (same style score) with the Gram view computed and reported in the parts, weight 0."""
        if self.gram_network or self.network != MAGENTA:
            return self
        return replace(self, gram_network="vgg16", gram_layers=GRAM_LAYERS)

    @property
    def label(self) -> str:
        """``styletune-judge v2 on magenta``: how logs and refusals name a judge."""
        return describe(self.to_dict())


def available(spec: JudgeSpec) -> tuple[bool, str]:
    """Whether the judge's style network can run here, and if not why (nothing is downloaded)."""
    from nst.lossnets import weights_available

    if spec.gram_network:
        ok, why = weights_available(spec.gram_network)
        if not ok:
            return ok, why
    if spec.network == MAGENTA:
        from nst.arbitrary import model_path
        from nst.errors import WeightsUnavailable

        try:
            model_path("arbitrary_predict")
        except WeightsUnavailable as exc:
            return False, str(exc)
        return True, ""
    return weights_available(spec.network)


def describe(record: dict[str, Any] | None) -> str:
    """A stored judge record in words (records of older versions too: they are shown as stored)."""
    record = record or {}
    gram = f"+{record['gram_network']}" if record.get("gram_network") else ""
    return f"judge {record.get('name')} v{record.get('version')} on {record.get('network')}{gram}"


@dataclass
class JudgeScores:
    """Per-photo scores (arrays of shape ``(B,)``) and their means."""

    style: np.ndarray
    content: np.ndarray
    noise: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    def means(self) -> dict[str, float]:
        return {"style": float(np.mean(self.style)), "content": float(np.mean(self.content)),
                "noise": float(np.mean(self.noise))}

    def per_photo(self, names) -> dict[str, dict[str, float]]:
        """``{name: {"style", "content", "noise"}}``, one entry per test photo in ``names``' order."""
        return {n: {"style": float(a), "content": float(b), "noise": float(c)}
                for n, a, b, c in zip(names, self.style, self.content, self.noise, strict=True)}


# -- the judge -------------------------------------------------------------------------

class Judge:
    """A judge bound to one painting and one set of test photos.

    Binding precomputes everything that does not depend on the result: the painting's
    style vector, Gram matrices (or feature distributions), the photo's distances (the "do
    nothing" references) and the painting cropped to the photo frame. :meth:`score` then
    costs one pass of each style network per result (about 50 ms for Magenta's predictor,
    one batched VGG16 pass to block 4 for the Gram view).

    ``extractor`` replaces the loss network of a non-Magenta spec, ``gram_extractor`` the
    Gram view's network, and ``encoder`` (one ``(H, W, 3)`` image -> a vector) replaces
    Magenta's predictor: tests pass small ones.
    """

    def __init__(self, spec: JudgeSpec, photos: np.ndarray, painting: np.ndarray, extractor=None,
                 encoder: Callable[[np.ndarray], np.ndarray] | None = None, gram_extractor=None):
        from nst.images import resize_longest

        if photos.ndim != 4 or photos.shape[-1] != 3:
            raise ValueError(f"photos must be (B, H, W, 3), got {photos.shape}")
        self.spec = spec
        self.photos = photos.astype(np.float32)
        self.extractor: Any = None  # the loss network's feature extractor (not used with Magenta)
        self._forward: Any = None  # its traced call, built on first use
        self._gram_forward: Any = None  # the Gram view's traced call
        hw = self.photos.shape[1:3]
        # The painting at the scale a trial with style_scale 1 would use: longest sides equal.
        self.painting = resize_longest(painting.astype(np.float32), max(hw))
        # ... and cropped to fill the photo's frame: the content reference, and the picture
        # whose style vector the results are compared with. Magenta's own preprocessing of a
        # style image is the same centre crop (shorter side to the input size, then crop), so
        # painting and result reach the predictor with the same aspect and stroke scale.
        self.frame = painting_in_frame(painting.astype(np.float32), hw)
        if spec.network == MAGENTA:
            if encoder is None:
                from nst.arbitrary import style_vector

                encoder = style_vector
            self._encode: Callable[[np.ndarray], np.ndarray] = encoder
            self._painting_vector = np.asarray(self._encode(self.frame), np.float64).ravel()
        else:
            from nst.lossnets import get_extractor

            self.extractor = extractor or get_extractor(spec.network, spec.layers, spec.pooling)
            feats = self._features(self.painting[None])
            self._dirs = {name: unit_directions(f.shape[-1], spec.projections, spec.seed + i)
                          for i, (name, f) in enumerate(feats.items())}
            self._painting_q = {name: sorted_projections(f[0].reshape(-1, f.shape[-1]), self._dirs[name],
                                                         spec.quantiles)
                                for name, f in feats.items()}
        if spec.gram_network:
            from nst.lossnets import get_extractor

            self.gram_extractor = gram_extractor or get_extractor(spec.gram_network, spec.gram_layers, spec.pooling)
            self._painting_grams = self._grams(self.painting[None])
        self._colour_dirs = np.concatenate([np.eye(3), unit_directions(3, 13, spec.seed)], axis=1)
        self._painting_colour = sorted_projections(lab_pixels(self.painting), self._colour_dirs, spec.quantiles)
        # References: what "doing nothing" scores in absolute units.
        self._ref = self._style_distances(self.photos)
        self._ref_content = np.array([structure_distance(self.frame, p, spec.ssim_scales) for p in self.photos])
        frame_ratio = band_ratio(self.frame)
        self._ref_noise = np.array([max(band_ratio(p), frame_ratio) for p in self.photos])

    def _features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        if self._forward is None:
            # One traced graph per image shape: eager Keras calls cost seconds each.
            self._forward = tf.function(lambda x: self.extractor(x), reduce_retracing=True)
        out = self._forward(tf.constant(images, tf.float32))
        return {name: out[name].numpy() for name in self.spec.layers}

    def _grams(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """``{layer: (B, C, C)}`` Gram matrices ``F^T F / (H W)`` of the Gram view's network."""
        import tensorflow as tf

        if self._gram_forward is None:
            layers = self.spec.gram_layers

            def grams(x):
                out = self.gram_extractor(x)
                res = {}
                for name in layers:
                    f = out[name]
                    f = tf.reshape(f, (tf.shape(f)[0], -1, tf.shape(f)[-1]))
                    res[name] = tf.matmul(f, f, transpose_a=True) / tf.cast(tf.shape(f)[1], f.dtype)
                return res

            # One traced graph per image shape; the Gram products stay in TensorFlow's matmul.
            self._gram_forward = tf.function(grams, reduce_retracing=True)
        out = self._gram_forward(tf.constant(images, tf.float32))
        return {name: out[name].numpy().astype(np.float64) for name in self.spec.gram_layers}

    def _gram_distances(self, images: np.ndarray) -> np.ndarray:
        """``(B, layers)``: root mean square difference of each layer's Gram matrix from the painting's."""
        grams = self._grams(images)
        return np.stack([np.sqrt(np.mean((grams[n] - self._painting_grams[n]) ** 2, axis=(1, 2)))
                         for n in self.spec.gram_layers], axis=1)

    def _deep_distances(self, images: np.ndarray) -> np.ndarray:
        """``(B, parts)`` absolute deep distances to the painting: one vector distance, or one per layer."""
        if self.spec.network == MAGENTA:
            vectors = np.stack([np.asarray(self._encode(img), np.float64).ravel() for img in images])
            return np.linalg.norm(vectors - self._painting_vector, axis=1)[:, None]
        feats = self._features(images)
        deep = np.zeros((len(images), len(self.spec.layers)))
        for j, name in enumerate(self.spec.layers):
            f = feats[name]
            for i in range(len(images)):
                q = sorted_projections(f[i].reshape(-1, f.shape[-1]), self._dirs[name], self.spec.quantiles)
                deep[i, j] = sliced_distance(q, self._painting_q[name])
        return deep

    def _style_distances(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Absolute distances to the painting per view: ``{part: (B, k)}`` (k layers, or 1)."""
        colour = np.array([
            sliced_distance(sorted_projections(lab_pixels(img), self._colour_dirs, self.spec.quantiles), self._painting_colour)
            for img in images
        ])
        out = {"style_deep": self._deep_distances(images)}
        if self.spec.gram_network:
            out["style_gram"] = self._gram_distances(images)
        out["style_colour"] = colour[:, None]
        return out

    def style_parts(self, results: np.ndarray) -> dict[str, np.ndarray]:
        """Each view's distance over the photo's (layer by layer, then averaged): ``{part: (B,)}``."""
        return {name: np.mean(d / np.maximum(self._ref[name], 1e-12), axis=1)
                for name, d in self._style_distances(results).items()}

    def combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        """The style score from :meth:`style_parts` (``spec.combine``)."""
        if self.spec.combine == "median":
            return np.median(np.stack(list(parts.values())), axis=0)
        cs, gs = self.spec.colour_share, self.spec.gram_share
        style = (1.0 - cs - gs) * parts["style_deep"] + cs * parts["style_colour"]
        return style + gs * parts["style_gram"] if gs else style

    def score(self, results: np.ndarray) -> JudgeScores:
        """Scores of a batch of results, one per test photo (same order as bound)."""
        if results.shape != self.photos.shape:
            raise ValueError(f"results must have the photos' shape {self.photos.shape}, got {results.shape}")
        results = np.clip(results.astype(np.float32), 0.0, 1.0)
        if not np.all(np.isfinite(results)):
            raise ValueError("results contain NaN or infinite pixels")
        parts = self.style_parts(results)
        style = self.combine(parts)
        content = np.array([structure_distance(r, p, self.spec.ssim_scales) for r, p in zip(results, self.photos, strict=True)])
        content = content / np.maximum(self._ref_content, 1e-12)
        noise = np.array([band_ratio(r) for r in results]) / self._ref_noise
        return JudgeScores(style=style, content=content, noise=noise, parts=parts)

    def is_feasible(self, noise: float) -> bool:
        return noise <= self.spec.noise_limit

    @property
    def fingerprint(self) -> str:
        """Short hash of the spec, for logs."""
        return hashlib.sha256(repr(sorted(self.spec.to_dict().items())).encode()).hexdigest()[:12]
