"""One trial: suggest -> proxy run (the tuned network, or Gatys) -> judge -> store.

Everything a trial stores is a :class:`tuner.records.TrialRecord` field, written with
:func:`tuner.records.store_trial`: ``style_config``, ``scores``,
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

from nst.config import PROXY_LR, StyleConfig
from nst.errors import StyletuneError, caused_by_interrupt
from nst.judge import Judge
from tuner.records import SHEET, store_trial
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
    paint: list[np.ndarray] = field(default_factory=list)  # the test photos at the study's paint side (network proxy)
    view_judge: Judge | None = None  # the judge on the view-size photos: the final scores, when the study judges there
    current: int | None = None

    @property
    def batch(self) -> np.ndarray:
        return np.stack([p.image for p in self.photos])

    def value(self, scores: dict[str, float]) -> float | tuple[float, float]:
        if self.tradeoff is None:
            return scores["style"], scores["content"]
        return scores["style"] + self.tradeoff * scores["content"]

    def __call__(self, trial) -> float | tuple[float, float]:
        started = time.perf_counter()
        self.current = trial.number
        config = suggest(trial, self.space)
        store_trial(trial, style_config=config.to_dict(), checkpoints={}, worker_pid=os.getpid())
        history: list[float] = []
        result = self._run(trial, config, history, started)
        if not result.ok:
            store_trial(trial, loss_curve=[v for v in history if math.isfinite(v)], fail_reason=result.reason,
                        seconds=_since(started))
            raise TrialFailed(result.reason)
        return self._finish(trial, result, started)

    def _run(self, trial, config: StyleConfig, history: list[float], started: float):
        """The proxy run, judged at the checkpoint steps; an interrupt is recorded and re-raised as Ctrl-C."""
        seen: dict[str, list[float]] = {}

        def on_loss(step: int, loss: float, terms: dict[str, float]) -> None:
            history.append(float(loss))
            if self.should_abort is not None and self.should_abort():
                raise KeyboardInterrupt

        def on_images(step: int, images: np.ndarray) -> None:
            if step in self.checkpoints:
                self._checkpoint(trial, step, images, seen, history, started)

        try:
            return self._render(config, on_loss, on_images)
        except BaseException as exc:
            if not caused_by_interrupt(exc):
                raise
            # the same stop even when the signal surfaced as another error (an import it cut short)
            store_trial(trial, fail_reason="interrupted; queued again with the same parameters")
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from exc

    def _render(self, config: StyleConfig, on_loss, on_images):
        """One proxy run of ``config`` on the test photos: the tuned network, or Gatys."""
        from nst.gatys import stylize

        if self.proxy == "network":
            from nst.images import resize_each
            from nst.netproxy import tune_network

            # With a paint side it tunes on crops of the photos there and paints them whole; the pictures are
            # judged shrunk to the proxy size, as the baseline's are. The judge looks only at checkpoints.
            size = self.batch.shape[1:3]
            at_size = (lambda images: resize_each(images, size)) if self.paint else (lambda images: images)
            result = tune_network(np.stack(self.paint) if self.paint else self.batch, self.painting, config,
                                  steps=self.steps, lr=self.lr, blend=self.blend, callback=on_loss,
                                  image_callback=lambda step, images: on_images(step, at_size(images)),
                                  extractor=self.extractor_override, view=self.view,
                                  crop=size[0] if self.paint else None, image_steps=self.checkpoints)
            result.images = at_size(result.images)
            return result
        return stylize(self.batch, self.painting, config, steps=self.steps, callback=on_loss,
                       image_callback=on_images, extractor=self.extractor_override)

    def _checkpoint(self, trial, step: int, images: np.ndarray, seen: dict[str, list[float]],
                    history: list[float], started: float) -> None:
        """Judge the images at a checkpoint step, store the scores and stop the trial if it is hopeless."""
        import optuna

        s = self.judge.score(images).means()
        seen[str(step)] = [s["style"], s["content"], s["noise"]]
        store_trial(trial, checkpoints=dict(seen))
        if not self.prune:
            return
        stop = self._pareto_stop(trial, step, s) if self.tradeoff is None else self._percentile_stop(trial, step, s)
        if stop:
            reason, message = stop
            self._stopped(trial, step, history, started, reason)
            raise optuna.TrialPruned(message)

    def _pareto_stop(self, trial, step: int, s: dict[str, float]) -> tuple[str, str] | None:
        """Two objectives: the early-stop rule against the other trials' points at this step."""
        peers = checkpoint_points(self.study.get_trials(deepcopy=False), step, exclude=trial.number)
        why = self.rule.verdict(step, step == self.checkpoints[0], (s["style"], s["content"]), peers)
        return (why, why) if why else None

    def _percentile_stop(self, trial, step: int, s: dict[str, float]) -> tuple[str, str] | None:
        """One objective (``--tradeoff``): Optuna's percentile pruner on the weighted sum."""
        trial.report(s["style"] + self.tradeoff * s["content"], step)
        if trial.should_prune():
            return f"worse than 75% of trials at step {step}", f"below the 75th percentile at step {step}"
        return None

    def _finish(self, trial, result, started: float) -> float | tuple[float, float]:
        """Judge the final images, store them and everything measured, set the noise constraint.

        A study that judges at the view size scores the view-size pictures (what the gallery shows and
        ``trainer stylize`` gives there); the proxy-size ones are stored either way."""
        at_view = self.view_judge is not None and bool(result.view_images)
        js = self.view_judge.score(np.stack(result.view_images)) if at_view else self.judge.score(result.images)
        scores = js.means()
        feasible = self.judge.is_feasible(scores["noise"])
        names = [p.name for p in self.photos]
        ids = self._store_pictures(trial, names, result.images)
        if result.view_images:
            store_trial(trial, view_artifacts=self._store_view(trial, names, result.view_images))
        store_trial(trial, scores=scores, per_photo=js.per_photo(names),
                    score_parts={k: float(np.mean(v)) for k, v in js.parts.items()},
                    loss_curve=[float(v) for v in result.history], feasible=bool(feasible),
                    iterations=result.iterations, stop_reason=result.reason,
                    proxy_seconds=round(result.seconds, 2), seconds=_since(started), artifacts=ids)
        trial.set_constraint("noise", scores["noise"] - self.judge.spec.noise_limit)
        return self.value(scores)

    def _store_pictures(self, trial, names: list[str], images: np.ndarray) -> dict[str, str]:
        """The proxy-size pictures and their contact sheet (photo above, result below) as artifacts."""
        from nst.images import contact_sheet

        ids = {name: upload_bytes(self.store, trial, png_bytes(img), f"trial{trial.number}-{name}.png", "image/png")
               for name, img in zip(names, images, strict=True)}
        side = self.batch.shape[1]
        sheet = contact_sheet([list(self.batch), list(images)], cell=max(64, min(side, 256)))
        ids[SHEET] = upload_bytes(self.store, trial, png_bytes(sheet), f"trial{trial.number}-sheet.png", "image/png")
        return ids

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
        store_trial(trial, loss_curve=[v for v in history if math.isfinite(v)], pruned_at=step, prune_reason=why,
                    seconds=_since(started))


def _since(started: float) -> float:
    """Seconds since ``started``, as stored (two decimals)."""
    return round(time.perf_counter() - started, 2)
