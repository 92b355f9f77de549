"""What ``tuner search`` was asked to do, in a module light enough for ``tuner --help``.

The field defaults here are the one place the search's defaults are spelled: the parser
(:mod:`tuner.search_command`) reads them for its help text and resume hint, and
:func:`tuner.search.run_search` receives a filled-in copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchOptions:
    """Everything ``tuner search`` was asked to do (picklable, so worker processes get a copy)."""

    style: str
    content: tuple[str, ...] | None = None
    photos: int = 3
    size: int = 128
    view_size: int = 512  # network proxy: each trial also paints the test photos at this long side (0: off)
    paint_side: int = 384  # network proxy: the look is tuned on crops of the test photos at this side (0: whole photos at size)
    judge_at: str | None = None  # "view" or "proxy": the size trials are scored at; None: view when it paints one
    steps: int = 50
    trials: int = 50
    jobs: int = 1
    study: str | None = None
    storage: str = "sqlite:///studies/studies.db"
    artifacts: str | None = None
    networks: tuple[str, ...] | None = None
    judge_network: str = "magenta"  # nst.judge.MAGENTA: a style network no trial optimises through
    noise_limit: float = 1.5
    tradeoff: float | None = None
    seed: int | None = None
    prune: bool = True
    heartbeat: int = 10
    quiet: bool = False
    threads: int | None = None  # TensorFlow intra-op threads per worker (None: TensorFlow's default)
    sampler: str = "tpe"  # "random": plain random search without recipes (the benchmark's baseline)
    proxy: str | None = None  # "network" or "gatys"; None: the study's own, "network" for a new study
