"""How a run trains: :class:`Settings`, everything except the loss (which is the StyleConfig).

Kept apart from :mod:`trainer.fit` so the command line reads the defaults without
importing TensorFlow; ``trainer.fit`` re-exports the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nst.errors import ConfigError

DEFAULT_FEATURE_CACHE = "studies/cache/content-features"
#: What fine-tuning may change: every weight, or only the instance-norm scales and shifts.
TUNE_CHOICES = ("all", "norm")
#: Largest --scale-side: every photo is decoded and resized to it for each crop, at a cost that grows with its square.
MAX_SCALE_SIDE = 4096


@dataclass(frozen=True)
class Settings:
    """How to train (everything except the loss, which is the StyleConfig)."""

    data: str
    arch: str = "johnson"
    width: float = 1.0
    size: int = 256
    batch: int = 4
    steps: int = 40_000
    lr: float = 1e-3
    seed: int = 0
    preview_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    preview_size: int = 0  # 0: the side the network paints at (scale_side, else size)
    photo_skip: bool = False
    precompute: bool = False
    feature_cache: str = DEFAULT_FEATURE_CACHE
    recipe: str = ""  # the trainer.recipe name the settings came from ("" before recipes existed)
    tune: str = "all"  # "all" weights, or "norm": only the normalisation layers' scale and shift
    # 0: crops are cut from photos whose shortest side is ``size`` (a crop sees most of the photo);
    # N: photos are first resized so their shortest side is N, then ``size`` crops are cut, so a crop
    # is a piece of an N px picture (the network proxy's ``paint_side``) and strokes are learned at that scale.
    scale_side: int = 0

    def __post_init__(self) -> None:
        from trainer.nets import check_arch, size_factor

        check_arch(self.arch)
        if self.size % size_factor("fast") or not 32 <= self.size <= 2048:
            raise ConfigError(f"--size must be a multiple of 8 between 32 and 2048, not {self.size}; 256 is the paper's")
        if not (0.01 <= self.width <= 8):
            raise ConfigError(f"--width must be between 0.01 and 8, not {self.width:g}")
        if self.arch == "magenta" and self.width != 1:
            raise ConfigError(f"--network magenta (the cpu and gpu recipes' network) starts from pretrained weights of "
                              f"width 1; drop --width {self.width:g}, or choose --network johnson or fast")
        if self.tune not in TUNE_CHOICES:
            raise ConfigError(f"--tune must be one of {', '.join(TUNE_CHOICES)}, not {self.tune!r}")
        if self.scale_side != 0 and not self.size <= self.scale_side <= MAX_SCALE_SIDE:
            raise ConfigError(f"--scale-side must be 0 (crops of the whole photo) or between the crop size "
                              f"{self.size} and {MAX_SCALE_SIDE}, not {self.scale_side}")
        if not (0 < self.lr < 1):
            raise ConfigError(f"--lr must be between 0 and 1, not {self.lr:g}")
        for name in ("batch", "steps", "preview_every", "checkpoint_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @property
    def work_side(self) -> int:
        return work_side_of(vars(self))

    @property
    def preview_side(self) -> int:
        return preview_side_of(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def work_side_of(settings: Mapping[str, Any]) -> int:
    """The side a run's network paints a whole picture at: the side of the pictures its crops came from.

    A network learns strokes of a fixed number of pixels; trained on crops of 384 px
    pictures, it paints a photo the way it looked in them when the photo is 384 px too.
    ``settings`` is a run's recorded settings (``run.json``), so runs made before
    ``scale_side`` existed answer with their crop size, as they always painted.
    """
    return int(settings.get("scale_side") or settings.get("size") or 0)


def preview_side_of(settings: Mapping[str, Any]) -> int:
    """The long side previews and results are painted (and judged) at: ``preview_size``, else :func:`work_side_of`."""
    return int(settings.get("preview_size") or work_side_of(settings))
