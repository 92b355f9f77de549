"""What a study stores, as types: the contract between ``tuner search``, ``trainer`` and the dashboard.

Everything is kept in Optuna user attributes (public API only), so it works on any storage
Optuna supports. Each attribute name is a constant below and the field of the same name in
:class:`StudyRecord` or :class:`TrialRecord`; each default is that field's default.
Readers build a record with ``from_…`` (lenient: a missing or malformed attribute reads as
its default, so another tool's study still gives a table); writers that store a whole
record use ``to_user_attrs()``, and the objective, which stores attributes a few at a time
as a trial runs, uses :func:`store_trial` (names checked against :class:`TrialRecord`).

Artifacts (PNG images) live in an Optuna ``FileSystemArtifactStore``: for a SQLite URL,
the folder ``artifacts/`` beside the database file; otherwise the folder given by
``--artifacts``. Records hold only their ids.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# -- study user attributes
STUDY_ATTR = "styletune"  #: the StudyRecord, a JSON object
CHOSEN_ATTR = "chosen_trial"  #: the trial number a person picked; absent until someone picks
BASELINE_ATTR = "baseline"  #: the :class:`Baseline`, a JSON object; absent until first asked for

# -- trial user attributes (each also a TrialRecord field)
CONFIG_ATTR = "style_config"
SCORES_ATTR = "scores"
CURVE_ATTR = "loss_curve"
ARTIFACTS_ATTR = "artifacts"
VIEW_ARTIFACTS_ATTR = "view_artifacts"
FEASIBLE_ATTR = "feasible"
CHECKPOINTS_ATTR = "checkpoints"
SECONDS_ATTR = "seconds"
PROXY_SECONDS_ATTR = "proxy_seconds"  #: the proxy run's own time (network or Gatys), within ``seconds``
_OLD_PROXY_SECONDS = "gatys_seconds"  #: its name in studies made before the network proxy existed
ITERATIONS_ATTR = "iterations"
STOP_REASON_ATTR = "stop_reason"
PER_PHOTO_ATTR = "per_photo"
SCORE_PARTS_ATTR = "score_parts"
RECIPE_ATTR = "recipe"
WORKER_PID_ATTR = "worker_pid"
PRUNED_AT_ATTR = "pruned_at"
PRUNE_REASON_ATTR = "prune_reason"
FAIL_REASON_ATTR = "fail_reason"
#: The key of the contact sheet among a trial's artifacts (the others are test photo names).
SHEET = "sheet"
#: Judge scores, in the order they are shown; 0 is ideal, 1 is "no better than doing nothing".
SCORE_NAMES = ("style", "content", "noise")
#: Optuna trial states in the order they are counted and shown.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def finite(value: Any) -> bool:
    """A finite number (not a bool, not NaN or infinite), or a string of one."""
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _floats(data: Any) -> dict[str, float]:
    """``{key: float}`` of the finite numbers in a mapping; anything else reads as empty."""
    return {str(k): float(v) for k, v in data.items() if finite(v)} if isinstance(data, Mapping) else {}


def _dict(data: Any) -> dict[str, Any]:
    return dict(data) if isinstance(data, Mapping) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _float(value: Any) -> float | None:
    return float(value) if finite(value) else None


def _int(value: Any) -> int | None:
    return int(value) if finite(value) and float(value) == int(float(value)) else None


@dataclass(frozen=True)
class StudyRecord:
    """The study attribute ``styletune``, written once by ``tuner search`` when it creates a study.

    ``style_*``: the painting (its file's stem and name, SHA-256 and artifact id);
    ``content_*``: the test photos by name (artifact ids and hashes); ``proxy_size`` and
    ``steps`` of every proxy run; ``proxy``: how trials are rendered, ``{"kind": "network",
    "lr": ..., "blend": true}`` (Magenta's transformer tuned on the test photos,
    :mod:`nst.netproxy`; ``blend`` when it has the photo blend, absent before it) or
    ``{"kind": "gatys"}`` (pixels optimised from the photo; every study made before the
    network proxy existed); ``judge``: the judge's record (name, version, network,
    ``noise_limit``); ``objectives``: ``["style", "content"]``, or one weighted sum when
    ``tradeoff`` is set; ``networks`` searched and ``skipped_networks`` with reasons;
    ``space``: the search space's calibration; ``early_stop``: the stopping rule;
    ``seed``; ``view_size``: the long side, in pixels, at which a network-proxy study's
    trials also paint the test photos (``content_view_artifacts``), the size people look at
    (None: only the proxy size, as in a Gatys-proxy study or one made before view sizes).
    ``artifact_folder``: the absolute path of the artifact folder the study was
    made with (None for studies made before it was recorded), where readers look when no
    ``--artifacts`` is given. Keys this version does not know are kept in ``extra`` and
    written back.
    """

    style_name: str = ""
    style_sha256: str = ""
    style_file: str | None = None
    style_artifact: str | None = None
    content_names: tuple[str, ...] = ()
    content_artifacts: dict[str, str] = field(default_factory=dict)
    content_sha256: dict[str, str] = field(default_factory=dict)
    proxy_size: int | None = None
    steps: int | None = None
    judge: dict[str, Any] = field(default_factory=dict)
    objectives: tuple[str, ...] = ()
    tradeoff: float | None = None
    networks: tuple[str, ...] = ()
    skipped_networks: dict[str, str] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    early_stop: dict[str, Any] | None = None
    seed: int | None = None
    proxy: dict[str, Any] = field(default_factory=lambda: {"kind": "gatys"})
    view_size: int | None = None
    content_view_artifacts: dict[str, str] = field(default_factory=dict)
    artifact_folder: str | None = None
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_user_attrs(cls, attrs: Mapping[str, Any]) -> StudyRecord | None:
        """The record in a study's user attributes, or None when the study was not made by ``tuner search``."""
        raw = attrs.get(STUDY_ATTR)
        if not isinstance(raw, Mapping):
            return None
        known = {f.name for f in fields(cls)} - {"extra"}
        names = raw.get("content_names")
        return cls(
            style_name=str(raw.get("style_name") or ""), style_sha256=str(raw.get("style_sha256") or ""),
            style_file=_str(raw.get("style_file")), style_artifact=_str(raw.get("style_artifact")),
            content_names=tuple(str(n) for n in names) if isinstance(names, list | tuple) else (),
            content_artifacts={k: v for k, v in _dict(raw.get("content_artifacts")).items() if isinstance(v, str)},
            content_sha256=_dict(raw.get("content_sha256")),
            proxy_size=_int(raw.get("proxy_size")), steps=_int(raw.get("steps")), judge=_dict(raw.get("judge")),
            objectives=tuple(raw.get("objectives") or ()),
            tradeoff=float(raw["tradeoff"]) if finite(raw.get("tradeoff")) else None,
            networks=tuple(raw.get("networks") or ()), skipped_networks=_dict(raw.get("skipped_networks")),
            space=_dict(raw.get("space")),
            early_stop=_dict(raw["early_stop"]) if isinstance(raw.get("early_stop"), Mapping) else None,
            seed=_int(raw.get("seed")), version=_int(raw.get("version")) or 1,
            proxy=_dict(raw.get("proxy")) if isinstance(raw.get("proxy"), Mapping) else {"kind": "gatys"},
            view_size=_int(raw.get("view_size")),
            content_view_artifacts={k: v for k, v in _dict(raw.get("content_view_artifacts")).items()
                                    if isinstance(v, str)},
            artifact_folder=_str(raw.get("artifact_folder")),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    @property
    def proxy_kind(self) -> str:
        """``"network"`` or ``"gatys"``: what rendered this study's trials."""
        return str(self.proxy.get("kind") or "gatys")

    @property
    def paint_side(self) -> int | None:
        """The side a network proxy tuned and painted at (``proxy["paint_side"]``), or None: whole photos at the proxy size."""
        side = _int(self.proxy.get("paint_side")) if self.proxy_kind == "network" else None
        return side or None

    @property
    def judges_view(self) -> bool:
        """Whether the trials' final scores (and the baseline's) come from the judge at the view size, on the
        pictures the gallery shows and ``trainer stylize`` gives (``proxy["judged_at"] == "view"``), rather than
        at the proxy size. Checkpoints, which only the early-stop rule compares, stay at the proxy size."""
        return bool(self.view_size) and self.proxy_kind == "network" and self.proxy.get("judged_at") == "view"

    @property
    def judge_side(self) -> int | None:
        """The long side, in pixels, at which the trials' final scores were judged."""
        return self.view_size if self.judges_view else self.proxy_size

    @property
    def proxy_run(self) -> dict[str, Any]:
        """The proxy with the study's ``steps``: what ``trainer fit --from-study`` matches a run to
        (:func:`trainer.recipe.proxy_matched_settings`)."""
        return {**self.proxy, "steps": self.steps}

    @property
    def painting_label(self) -> str:
        """The painting's file name, else its name."""
        return self.style_file or self.style_name

    def to_user_attrs(self) -> dict[str, Any]:
        """``{STUDY_ATTR: JSON object}``, the form :meth:`from_user_attrs` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return {STUDY_ATTR: {**self.extra, **out}}


def has_study_record(attrs: Mapping[str, Any]) -> bool:
    """Whether a study has a ``styletune`` attribute at all, a malformed one included.

    :meth:`StudyRecord.from_user_attrs` reads a malformed record as None, like a missing
    one; the writer must tell them apart so it never overwrites a record it cannot read.
    """
    return attrs.get(STUDY_ATTR) is not None


def chosen_trial(attrs: Mapping[str, Any]) -> int | None:
    """The trial number a person chose (study attribute ``chosen_trial``), or None."""
    return _int(attrs.get(CHOSEN_ATTR))


@dataclass(frozen=True)
class TrialRecord:
    """What one trial stores, as Optuna user attributes of the same names.

    Every finished trial: ``style_config`` (the StyleConfig as a JSON object), ``scores``
    (``{"style", "content", "noise"}`` from the judge), ``loss_curve`` and ``artifacts``
    (``{"sheet": id, "<test photo name>": id, ...}``), and ``view_artifacts`` the same at the
    study's view size (network-proxy studies). ``tuner search`` also writes, for
    display: ``feasible`` (the noise is within the judge's limit; the noise is also an
    Optuna constraint, so ``study.best_trials`` leaves such trials out), ``checkpoints``
    (``{step: [style, content, noise]}`` judged mid-run, compared by the early-stop
    rule), ``seconds``, ``proxy_seconds`` (``gatys_seconds`` in older studies),
    ``iterations``, ``stop_reason``, ``per_photo``, ``score_parts``, ``worker_pid`` and ``recipe`` (the seeded trials); a
    stopped (PRUNED) trial ``pruned_at`` and ``prune_reason``; a FAIL trial ``fail_reason``.
    ``number``, ``state``, ``params`` and ``values`` are Optuna's own, read along.
    """

    number: int
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    values: tuple[float, ...] = ()
    style_config: dict[str, Any] | None = None
    scores: dict[str, float] = field(default_factory=dict)
    loss_curve: tuple[float, ...] = ()
    artifacts: dict[str, str] = field(default_factory=dict)
    view_artifacts: dict[str, str] = field(default_factory=dict)
    feasible: bool = True
    checkpoints: dict[str, tuple[float, ...]] = field(default_factory=dict)
    seconds: float | None = None
    proxy_seconds: float | None = None
    iterations: int | None = None
    stop_reason: str | None = None
    per_photo: dict[str, dict[str, float]] = field(default_factory=dict)
    score_parts: dict[str, float] = field(default_factory=dict)
    recipe: str | None = None
    worker_pid: int | None = None
    pruned_at: int | None = None
    prune_reason: str | None = None
    fail_reason: str | None = None

    @classmethod
    def from_trial(cls, trial) -> TrialRecord:
        """Read a (frozen) Optuna trial; malformed attributes read as their defaults."""
        a = trial.user_attrs
        curve = a.get(CURVE_ATTR)
        cps = a.get(CHECKPOINTS_ATTR)
        return cls(
            number=trial.number, state=trial.state.name, params=dict(trial.params), values=tuple(trial.values or ()),
            style_config=dict(a[CONFIG_ATTR]) if isinstance(a.get(CONFIG_ATTR), Mapping) and a[CONFIG_ATTR] else None,
            scores=_floats(a.get(SCORES_ATTR)),
            loss_curve=tuple(float(v) for v in curve if finite(v)) if isinstance(curve, list | tuple) else (),
            artifacts={str(k): v for k, v in _dict(a.get(ARTIFACTS_ATTR)).items() if isinstance(v, str)},
            view_artifacts={str(k): v for k, v in _dict(a.get(VIEW_ARTIFACTS_ATTR)).items() if isinstance(v, str)},
            feasible=a.get(FEASIBLE_ATTR, True) is not False,
            checkpoints={str(k): tuple(float(x) for x in v) for k, v in _dict(cps).items()
                         if isinstance(v, list | tuple) and all(finite(x) for x in v)},
            seconds=_float(a.get(SECONDS_ATTR)),
            proxy_seconds=_float(a.get(PROXY_SECONDS_ATTR, a.get(_OLD_PROXY_SECONDS))),
            iterations=_int(a.get(ITERATIONS_ATTR)), stop_reason=_str(a.get(STOP_REASON_ATTR)),
            per_photo={str(k): _floats(v) for k, v in _dict(a.get(PER_PHOTO_ATTR)).items()},
            score_parts=_floats(a.get(SCORE_PARTS_ATTR)), recipe=_str(a.get(RECIPE_ATTR)),
            worker_pid=_int(a.get(WORKER_PID_ATTR)), pruned_at=_int(a.get(PRUNED_AT_ATTR)),
            prune_reason=_str(a.get(PRUNE_REASON_ATTR)), fail_reason=_str(a.get(FAIL_REASON_ATTR)),
        )

    def to_user_attrs(self) -> dict[str, Any]:
        """The user attributes that differ from their defaults, as JSON values (Optuna's own fields left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _OPTUNA_OWN:
                continue
            value = getattr(self, f.name)
            default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
            if value == default:
                continue
            if f.name == CHECKPOINTS_ATTR:
                value = {k: list(v) for k, v in value.items()}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    # -- what readers ask of a trial
    @property
    def scored(self) -> bool:
        """Finished, with both judge scores: a trial that can be compared and trained."""
        return self.state == "COMPLETE" and "style" in self.scores and "content" in self.scores

    def score(self, name: str) -> float:
        """One judge score, NaN when the trial has none."""
        return self.scores.get(name, math.nan)

    @property
    def total(self) -> float:
        """style + content: the default rule's ranking (0 ideal); infinite for an unscored trial."""
        return self.scores["style"] + self.scores["content"] if self.scored else math.inf

    @property
    def note(self) -> str:
        """Why a trial failed or was stopped, if it says."""
        return self.fail_reason or self.prune_reason or ""

    @property
    def photo_artifacts(self) -> dict[str, str]:
        """Result artifact ids by test photo (the contact sheet left out)."""
        return {k: v for k, v in self.artifacts.items() if k != SHEET}

    def pictures(self, view: bool = True) -> dict[str, str]:
        """Artifact ids by test photo and ``"sheet"``: at the view size when the trial has them and ``view``."""
        return self.view_artifacts if view and self.view_artifacts else self.artifacts


_OPTUNA_OWN = ("number", "state", "params", "values")


def store_trial(trial, **attrs: Any) -> None:
    """Set a running trial's user attributes, each named by a :class:`TrialRecord` field, as given.

    A trial's attributes are written a few at a time as it runs (its config first, its
    checkpoints as they are judged, the rest at the end), so this writes exactly the values
    given, defaults included, which :meth:`TrialRecord.to_user_attrs` would leave out. A name
    that is not a field raises, so a writer cannot store what no reader reads.
    """
    unknown = sorted(set(attrs) - _STORED)
    if unknown:
        raise TypeError(f"not stored trial attributes (TrialRecord fields): {', '.join(unknown)}")
    for name, value in attrs.items():
        trial.set_user_attr(name, value)


_STORED = frozenset(f.name for f in fields(TrialRecord)) - set(_OPTUNA_OWN)


def trial_records(trials: Iterable[Any]) -> list[TrialRecord]:
    return [TrialRecord.from_trial(t) for t in trials]


def state_counts(trials: Iterable[Any]) -> dict[str, int]:
    """Trials (Optuna's or records, or their state names) by state (every name in :data:`STATES`, zero if none)."""
    counts = dict.fromkeys(STATES, 0)
    for t in trials:
        state = t if isinstance(t, str) else t.state
        name = state if isinstance(state, str) else state.name
        counts[name] = counts.get(name, 0) + 1
    return counts


def pareto_front(study) -> list[TrialRecord]:
    """The study's front: Optuna's ``study.best_trials``, best style + content first.

    ``best_trials`` keeps the finished trials no other finished trial dominates, among
    those whose constraints hold (``tuner search`` stores the noise limit as one), so a
    too-noisy result never hides a usable one. With two objectives (style, content) this
    is the Pareto front of the judge scores; a ``--tradeoff`` study has one objective and
    its front is its best trial.
    """
    front = [r for r in trial_records(study.best_trials) if r.scored and r.feasible]
    return sorted(front, key=lambda r: (r.total, r.number))


# -- the study's baseline
BASELINE_VERSION = 1
BASELINE_MODEL = "magenta-arbitrary"


@dataclass(frozen=True)
class Baseline:
    """Magenta's arbitrary stylisation (Ghiasi et al. 2017) on a study's test photos, scored by the study's judge.

    It needs no training and no search, so it is the reference a study has to beat: a
    trial whose style and content scores are both lower (0 = ideal) is better than the
    off-the-shelf model for this painting by the judge's measure. Stored once per study
    as the user attribute ``baseline`` (:meth:`to_dict`); its pictures are study artifacts.
    """

    scores: dict[str, float]  # {"style", "content", "noise"}: means over the test photos
    per_photo: dict[str, dict[str, float]]
    artifacts: dict[str, str]  # {"<content name>": id, "sheet": id}: PNGs at the proxy size
    feasible: bool  # noise within the judge's limit, as for a trial
    side: int  # long side at which the transformer painted (the photos are resized to it and back)
    seconds: float
    model: str = BASELINE_MODEL
    version: int = BASELINE_VERSION
    view_artifacts: dict[str, str] = field(default_factory=dict)  # the same at the study's view size, when it has one
    judged_at: str = "proxy"  # "view": the scores are the judge's on the view-size pictures, as the study's trials'

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Baseline | None:
        """The record, or None when it is absent, malformed or from another version (then it is recomputed)."""
        if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
            return None
        names = {f.name for f in fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
            scores = {k: float(record.scores[k]) for k in ("style", "content", "noise")}
        except (TypeError, KeyError, ValueError):
            return None
        return cls(**{**record.to_dict(), "scores": scores})

    def shortfall(self, scores: Mapping[str, float]) -> float:
        """How far ``scores`` are from beating this baseline on both: the larger of (style - its style) and
        (content - its content). Negative when they beat it; the default pick's order among trials that do not."""
        return max(float(scores["style"]) - self.scores["style"], float(scores["content"]) - self.scores["content"])

    def beaten_by(self, scores: Any, tradeoff: float | None = None) -> bool:
        """Whether a trial's judge scores beat this baseline.

        Two objectives: lower on both style and content (Pareto dominance, so neither score
        was bought with the other). One objective (``--tradeoff t``): a lower style + t * content.
        """
        try:
            s, c = float(scores["style"]), float(scores["content"])
        except (TypeError, KeyError, ValueError):
            return False
        bs, bc = self.scores["style"], self.scores["content"]
        if tradeoff is not None:
            return s + tradeoff * c < bs + tradeoff * bc
        return s <= bs and c <= bc and (s < bs or c < bc)


def read_baseline(user_attrs: Mapping[str, Any]) -> Baseline | None:
    """The study's stored baseline, from its user attributes; None if it has none yet."""
    return Baseline.from_dict(user_attrs.get(BASELINE_ATTR))


def beating_trials(baseline: Baseline, trials: Iterable[TrialRecord], tradeoff: float | None = None) -> list[TrialRecord]:
    """The finished, feasible trials that beat ``baseline`` (:meth:`Baseline.beaten_by`), smallest style + content first.

    The one answer to "does the search beat the free model?": ``tuner show``, ``tuner best``,
    the default pick (:func:`tuner.reader.default_trial`), ``trainer fit --from-study`` and
    the dashboard all ask it here.
    """
    beat = (t for t in trials if t.scored and t.feasible and baseline.beaten_by(t.scores, tradeoff))
    return sorted(beat, key=lambda t: (t.total, t.number))


def beaten_on(tradeoff: float | None = None) -> str:
    """How a trial has to beat the baseline, in words: "on both scores" or "on style + t * content"."""
    return "on both scores" if tradeoff is None else f"on style + {tradeoff:g} * content"


def losing_note(baseline: Baseline | None, trials: Iterable[TrialRecord], tradeoff: float | None = None) -> str | None:
    """One line when no finished, feasible trial beats the baseline, naming ``tuner preview`` as the alternative.

    None (nothing to say) when some trial beats it, when no trial has finished feasibly yet,
    or when there is no baseline (it could not be computed here: no verdict is invented).
    """
    if baseline is None:
        return None
    done = [t for t in trials if t.scored and t.feasible]
    if not done or beating_trials(baseline, done, tradeoff):
        return None
    s = baseline.scores
    return (f"no trial beats the off-the-shelf baseline (style {s['style']:.3f}, content {s['content']:.3f}) "
            f"{beaten_on(tradeoff)}; for this painting `tuner preview --style PAINTING --content PHOTO -o out.png` "
            "may serve you better")
