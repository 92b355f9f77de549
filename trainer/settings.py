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
    preview_size: int = 0  # 0: the training size
    photo_skip: bool = False
    precompute: bool = False
    feature_cache: str = DEFAULT_FEATURE_CACHE
    recipe: str = ""  # the trainer.recipe name the settings came from ("" before recipes existed)
    tune: str = "all"  # "all" weights, or "norm": only the normalisation layers' scale and shift

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
        if not (0 < self.lr < 1):
            raise ConfigError(f"--lr must be between 0 and 1, not {self.lr:g}")
        for name in ("batch", "steps", "preview_every", "checkpoint_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1")

    @property
    def preview_side(self) -> int:
        return self.preview_size or self.size

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
