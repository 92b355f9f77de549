"""One trial: suggest -> proxy run (the tuned network, or Gatys) -> judge -> store.

Everything a trial stores follows :mod:`tuner.reader`: ``style_config``, ``scores``,
``loss_curve``, ``artifacts`` (one PNG per test photo and a contact sheet), plus
``feasible``, ``checkpoints`` (``{step: [style, content, noise]}`` judged at the checkpoint
steps, which the early-stop rule compares), ``seconds``, ``proxy_seconds``, ``iterations``,
``stop_reason``, ``per_photo``, ``score_parts`` (style's deep and colour parts),
``worker_pid``; a stopped trial ``pruned_at`` and ``prune_reason``; a failed trial
``fail_reason``. The noise score becomes an Optuna constraint
(``trial.set_constraint``), so the sampler and ``study.best_trials`` treat speckled
results as infeasible.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nst.config import PROXY_LR
from nst.errors import StyletuneError, caused_by_interrupt
from nst.judge import Judge
from tuner.records import (
    ARTIFACTS_ATTR,
    CHECKPOINTS_ATTR,
    CONFIG_ATTR,
    CURVE_ATTR,
    FAIL_REASON_ATTR,
    FEASIBLE_ATTR,
    ITERATIONS_ATTR,
    PER_PHOTO_ATTR,
    PROXY_SECONDS_ATTR,
    PRUNE_REASON_ATTR,
    PRUNED_AT_ATTR,
    SCORE_PARTS_ATTR,
    SCORES_ATTR,
    SECONDS_ATTR,
    SHEET,
    STOP_REASON_ATTR,
    VIEW_ARTIFACTS_ATTR,
    WORKER_PID_ATTR,
)
from tuner.space import SearchSpace, suggest
from tuner.stopping import ParetoStopRule, checkpoint_points
from tuner.study import Photo, png_bytes, upload_bytes


class TrialFailed(StyletuneError):
    """A trial whose proxy run could not finish (NaN loss, ...): recorded as FAIL, the study goes on."""


@dataclass
class Objective:
    """The callable handed to ``study.optimize``; one per worker process."""

    study: Any
    space: SearchSpace
    photos: list[Photo]
    painting: np.ndarray
    judge: Judge
    store: Any
    steps: int
    tradeoff: float | None
    checkpoints: tuple[int, ...]
    prune: bool = True
    rule: ParetoStopRule = field(default_factory=ParetoStopRule)
    should_abort: Callable[[], bool] | None = None  # e.g. "my parent process died"
    extractor_override: Any = None  # tests: a fixed extractor for every trial
    proxy: str = "gatys"  # "network": nst.netproxy.tune_network; "gatys": nst.gatys.stylize
    lr: float = PROXY_LR  # the network proxy's learning rate (the study record's)
    blend: bool = False  # the network proxy's photo blend (studies made before it have none)
    view: list[np.ndarray] = field(default_factory=list)  # the test photos at the study's view size (network proxy)
    current: int | None = None

    @property
    def batch(self) -> np.ndarray:
        return np.stack([p.image for p in self.photos])

    def value(self, scores: dict[str, float]) -> float | tuple[float, float]:
        if self.tradeoff is None:
            return scores["style"], scores["content"]
        return scores["style"] + self.tradeoff * scores["content"]

    def __call__(self, trial) -> float | tuple[float, float]:
        import optuna

        from nst.gatys import stylize

        started = time.perf_counter()
        self.current = trial.number
        config = suggest(trial, self.space)
        trial.set_user_attr(CONFIG_ATTR, config.to_dict())
        trial.set_user_attr(CHECKPOINTS_ATTR, {})
        trial.set_user_attr(WORKER_PID_ATTR, os.getpid())
        history: list[float] = []
        seen: dict[str, list[float]] = {}

        def on_loss(step: int, loss: float, terms: dict[str, float]) -> None:
            history.append(float(loss))
            if self.should_abort is not None and self.should_abort():
                raise KeyboardInterrupt

        def on_images(step: int, images: np.ndarray) -> None:
            if step not in self.checkpoints:
                return
            s = self.judge.score(images).means()
            seen[str(step)] = [s["style"], s["content"], s["noise"]]
            trial.set_user_attr(CHECKPOINTS_ATTR, dict(seen))
            if not self.prune:
                return
            if self.tradeoff is None:
                peers = checkpoint_points(self.study.get_trials(deepcopy=False), step, exclude=trial.number)
                why = self.rule.verdict(step, step == self.checkpoints[0], (s["style"], s["content"]), peers)
                if why:
                    self._stopped(trial, step, history, started, why)
                    raise optuna.TrialPruned(why)
            else:
                trial.report(s["style"] + self.tradeoff * s["content"], step)
                if trial.should_prune():
                    self._stopped(trial, step, history, started, f"worse than 75% of trials at step {step}")
                    raise optuna.TrialPruned(f"below the 75th percentile at step {step}")

        try:
            if self.proxy == "network":
                from nst.netproxy import tune_network

                result = tune_network(self.batch, self.painting, config, steps=self.steps, lr=self.lr, blend=self.blend,
                                      callback=on_loss, image_callback=on_images, extractor=self.extractor_override,
                                      view=self.view)
            else:
                result = stylize(self.batch, self.painting, config, steps=self.steps, callback=on_loss,
                                 image_callback=on_images, extractor=self.extractor_override)
        except BaseException as exc:
            if not caused_by_interrupt(exc):
                raise
            # the same stop even when the signal surfaced as another error (an import it cut short)
            trial.set_user_attr(FAIL_REASON_ATTR, "interrupted; queued again with the same parameters")
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from exc
        if not result.ok:
            trial.set_user_attr(CURVE_ATTR, [v for v in history if math.isfinite(v)])
            trial.set_user_attr(FAIL_REASON_ATTR, result.reason)
            trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 2))
            raise TrialFailed(result.reason)
        js = self.judge.score(result.images)
        scores = js.means()
        feasible = self.judge.is_feasible(scores["noise"])
        ids = {}
        names = [p.name for p in self.photos]
        for name, img in zip(names, result.images, strict=True):
            ids[name] = upload_bytes(self.store, trial, png_bytes(img), f"trial{trial.number}-{name}.png", "image/png")
        from nst.images import contact_sheet

        side = self.batch.shape[1]
        sheet = contact_sheet([list(self.batch), list(result.images)], cell=max(64, min(side, 256)))
        ids["sheet"] = upload_bytes(self.store, trial, png_bytes(sheet), f"trial{trial.number}-sheet.png", "image/png")
        if result.view_images:
            trial.set_user_attr(VIEW_ARTIFACTS_ATTR, self._store_view(trial, names, result.view_images))
        per_photo = {n: {"style": float(a), "content": float(b), "noise": float(c)}
                     for n, a, b, c in zip(names, js.style, js.content, js.noise, strict=True)}
        trial.set_user_attr(SCORES_ATTR, scores)
        trial.set_user_attr(PER_PHOTO_ATTR, per_photo)
        trial.set_user_attr(SCORE_PARTS_ATTR, {k: float(np.mean(v)) for k, v in js.parts.items()})
        trial.set_user_attr(CURVE_ATTR, [float(v) for v in result.history])
        trial.set_user_attr(FEASIBLE_ATTR, bool(feasible))
        trial.set_user_attr(ITERATIONS_ATTR, result.iterations)
        trial.set_user_attr(STOP_REASON_ATTR, result.reason)
        trial.set_user_attr(PROXY_SECONDS_ATTR, round(result.seconds, 2))
        trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 2))
        trial.set_user_attr(ARTIFACTS_ATTR, ids)
        trial.set_constraint("noise", scores["noise"] - self.judge.spec.noise_limit)
        return self.value(scores)

    def _store_view(self, trial, names: list[str], images: list[np.ndarray]) -> dict[str, str]:
        """The view-size pictures and their contact sheet (photo above, result below) as artifacts."""
        from nst.images import contact_sheet

        ids = {name: upload_bytes(self.store, trial, png_bytes(img), f"trial{trial.number}-{name}-view.png", "image/png")
               for name, img in zip(names, images, strict=True)}
        sheet = contact_sheet([list(self.view), list(images)], cell=256)
        ids[SHEET] = upload_bytes(self.store, trial, png_bytes(sheet), f"trial{trial.number}-view-sheet.png", "image/png")
        return ids

    @staticmethod
    def _stopped(trial, step: int, history: list[float], started: float, why: str) -> None:
        trial.set_user_attr(CURVE_ATTR, [v for v in history if math.isfinite(v)])
        trial.set_user_attr(PRUNED_AT_ATTR, step)
        trial.set_user_attr(PRUNE_REASON_ATTR, why)
        trial.set_user_attr(SECONDS_ATTR, round(time.perf_counter() - started, 2))
