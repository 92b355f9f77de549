"""Stopping hopeless trials early when there are two objectives.

Optuna's pruners compare one number per step, so they only work for a single objective
(``--tradeoff``; there we use :class:`optuna.pruners.PercentilePruner`). With two
objectives we write the rule ourselves. At each checkpoint step the partly optimised
images are judged, and a trial is stopped when either holds:

**No visible style.** At the first checkpoint (a third of the steps) its style score is
still above ``1 - min_progress``: it has moved less than a tenth of the way from the photo
towards the painting's statistics. Style improves fastest early in an L-BFGS run (the
measured drop from the first checkpoint to the end is at most 0.16 on the benchmark
study), so such a trial ends as a near-copy of the photo. That corner of the Pareto front
(style close to 1, content close to 0) is worth nothing to someone choosing a style, so
the rule gives it up on purpose; it needs no peers and applies from the first trial.

**Dominated by its peers.** At least ``share`` of the other trials that reached the same
step were better there in *both* scores (each by at least ``margin``), once ``min_peers``
such trials exist (the warm-up of Optuna's pruners). Comparing at the same step compares
trials after the same optimisation effort; requiring domination in both scores (not a
worse sum) keeps every trade-off alive: a trial far behind on style but ahead on content
is never stopped by this part.

``bench/study_cost.py`` measures what the rule saves and counts the stopped trials that
would have ended on the final Pareto front.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuner.records import TrialRecord


@dataclass(frozen=True)
class ParetoStopRule:
    min_peers: int = 8
    share: float = 0.2
    margin: float = 0.02
    min_progress: float = 0.1

    def dominated_by(self, point: Sequence[float], peers: Iterable[Sequence[float]]) -> tuple[int, int]:
        """(how many peers beat ``point`` in both scores by ``margin``, how many peers)."""
        peers = list(peers)
        n = sum(1 for p in peers if p[0] + self.margin <= point[0] and p[1] + self.margin <= point[1])
        return n, len(peers)

    def hopeless(self, point: Sequence[float], peers: Iterable[Sequence[float]]) -> bool:
        n, total = self.dominated_by(point, peers)
        return total >= self.min_peers and n >= self.share * total

    def verdict(self, step: int, first: bool, point: Sequence[float],
                peers: Iterable[Sequence[float]]) -> str | None:
        """Why to stop a trial at checkpoint ``step`` (``first``: the first checkpoint), or None."""
        if first and point[0] > 1.0 - self.min_progress:
            return f"no visible style at step {step} (style {point[0]:.2f})"
        n, total = self.dominated_by(point, peers)
        if total >= self.min_peers and n >= self.share * total:
            return f"dominated by {n} of {total} trials at step {step}"
        return None

    def to_dict(self) -> dict[str, float | str]:
        return {"rule": "no-visible-style + dominated-by-share", "min_peers": self.min_peers, "share": self.share,
                "margin": self.margin, "min_progress": self.min_progress}


def checkpoint_points(trials, step: int, exclude: int | None = None) -> list[tuple[float, float]]:
    """(style, content) of every trial (Optuna's or a record) that recorded a checkpoint at ``step`` (FAIL trials excluded)."""
    out = []
    key = str(step)
    for t in trials:
        rec = t if isinstance(t, TrialRecord) else TrialRecord.from_trial(t)
        if rec.number == exclude or rec.state == "FAIL":
            continue
        cps = rec.checkpoints
        if key in cps:
            out.append((float(cps[key][0]), float(cps[key][1])))
    return out


def checkpoint_steps(steps: int) -> tuple[int, ...]:
    """Where to judge a running trial: after a third and after two thirds of the steps."""
    return tuple(sorted({max(1, steps // 3), max(1, 2 * steps // 3)} - {steps}))
