"""What the dashboard shows, as plain data: studies and trials as DataFrames, artifacts as images.

Nothing here imports Streamlit, so every function is unit-tested on its own and the
page scripts only lay out what these return (the "compute, then render" split of
Optuna's visualization module). Studies are read as :mod:`tuner.records` types through
:mod:`tuner.reader` and Optuna's public API only. The dashboard writes two things:
:func:`choose_trial`, the same record ``tuner choose`` writes, and, once per study, the
off-the-shelf baseline (:func:`ensure_baseline`, the same record ``tuner show`` computes).
Training runs are read by :mod:`dashboard.training`.
"""

from __future__ import annotations

import argparse
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tuner.liveness import live_running
from tuner.reader import (
    DEFAULT_RULE,
    DEFAULT_STORAGE,
    StorageError,
    artifact_dir,
    artifact_places,
    default_trial,
    read_artifact,
    sqlite_path,
    trial_config,
)
from tuner.records import (
    CHOSEN_ATTR,
    SCORE_NAMES,
    SHEET,
    STATES,  # noqa: F401 - the pages' state filter lists them
    Baseline,
    StudyRecord,
    TrialRecord,
    beaten_on,
    beating_trials,
    chosen_trial,
    finite,
    losing_note,
    pareto_front,
    read_baseline,
    state_counts,
)

#: Score columns, in the order they are shown; 0 is ideal, 1 is "no better than doing nothing".
SCORES = SCORE_NAMES
#: StyleConfig fields flattened into the trials table.
CONFIG_COLUMNS = ("network", "pooling", "content_layer", "content_weight", "style_weight", "tv_weight",
                  "style_scale", "init")
#: The gallery's stand-in trial number for the off-the-shelf baseline (trial numbers start at 0).
BASELINE = -1
BASELINE_LABEL = "off-the-shelf (Magenta, no training)"


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Where the dashboard reads from: the study storage, its artifact folder, training runs."""

    storage: str = DEFAULT_STORAGE
    artifacts: str | None = None
    runs: str | None = None

    @property
    def runs_dir(self) -> Path:
        """``--runs``, else ``runs/`` beside a SQLite database (``studies/runs``)."""
        if self.runs:
            return Path(self.runs)
        db = sqlite_path(self.storage)
        return (db.parent if db is not None else Path("studies")) / "runs"

    def study_artifacts(self, recorded: str | None) -> str | None:
        """The artifact folder of a study that recorded ``recorded`` (:func:`tuner.reader.artifact_dir`).

        ``--artifacts`` if given; else the recorded folder while it exists; else None, which
        readers take as ``artifacts/`` beside the SQLite file.
        """
        if self.artifacts or not recorded:
            return self.artifacts
        try:
            return str(artifact_dir(self.storage, None, recorded))
        except StorageError:
            return None

    def for_study(self, record: StudyRecord | None) -> Settings:
        """These settings with ``artifacts`` pointing at where this study's pictures are."""
        return replace(self, artifacts=self.study_artifacts(record.artifact_folder if record else None))


def missing_pictures(settings: Settings, record: StudyRecord | None) -> str | None:
    """One line saying where a study's pictures were looked for and which flag finds them; None when they are there.

    The study's painting stands for its pictures (every study has one; trials may have none yet).
    """
    if record is None or not record.style_artifact:
        return None
    from optuna.exceptions import OptunaError

    try:
        read_artifact(settings.storage, record.style_artifact, settings.study_artifacts(record.artifact_folder))
        return None
    except (StorageError, OptunaError, OSError):
        pass
    places = artifact_places(settings.storage, settings.artifacts, record.artifact_folder)
    looked = " or ".join(f"{folder} ({why})" for folder, why in places) or "no folder (the storage is not a SQLite file)"
    return f"pictures not found in {looked}; start the dashboard with --artifacts DIR"


def parse_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the app's own arguments (after ``--``), else ``STYLETUNE_*`` variables, else defaults.

    The environment variables exist so ``streamlit run`` without ``--`` arguments and the
    AppTest harness (which cannot pass arguments) can point the app at a storage.
    """
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False)
    parser.add_argument("--storage", default=env.get("STYLETUNE_STORAGE") or DEFAULT_STORAGE)
    parser.add_argument("--artifacts", default=env.get("STYLETUNE_ARTIFACTS") or None)
    parser.add_argument("--runs", default=env.get("STYLETUNE_RUNS") or None)
    args, _unknown = parser.parse_known_args(list(argv))
    return Settings(args.storage, args.artifacts, args.runs)


def reading_storage(url: str):
    """The storage the dashboard reads through: :func:`tuner.reader.open_storage` plus Optuna's trial cache.

    Optuna wraps an RDB storage in a cache that keeps finished trials (they never change)
    and re-reads only unfinished and new ones; ``optuna.load_study`` builds a fresh cache
    on every call, so the dashboard, which re-reads every few seconds, keeps one. On a
    168-trial study a refresh gets 2-6 times cheaper (``python -m bench.dashboard_refresh``,
    docs/benchmarks.md).
    Attributes of the study itself (``chosen_trial``) are not cached.
    """
    import optuna

    from tuner.reader import open_storage

    storage = open_storage(url)
    try:
        return optuna.storages.get_storage(storage)
    except (AttributeError, TypeError):  # the helper is marked internal; without it, read uncached
        return storage


# --------------------------------------------------------------------------- studies
def _last_update(trials: Iterable[Any], fallback: datetime | None = None) -> datetime | None:
    stamps = [t.datetime_complete or t.datetime_start for t in trials]
    stamps = [s for s in stamps if s is not None]
    if fallback is not None:
        stamps.append(fallback)
    return max(stamps) if stamps else None


def study_row(study_name: str, user_attrs: Mapping[str, Any], trials: Sequence[Any],
              started: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One line of the studies overview, from a study's attributes and its (frozen) trials."""
    record = StudyRecord.from_user_attrs(user_attrs)
    counts = state_counts(trials)
    scored = [r.scores for r in map(TrialRecord.from_trial, trials) if r.state == "COMPLETE"]
    best = {k: min((s[k] for s in scored if k in s), default=math.nan) for k in SCORES}
    last = _last_update(trials, started)
    live = bool(live_running(trials, now))  # RUNNING trials of a killed search stop counting (tuner.liveness)
    return {
        "study": study_name,
        "painting": record.style_name if record else "",
        "painting_artifact": record.style_artifact if record else None,
        "artifact_folder": record.artifact_folder if record else None,
        "photos": len(record.content_names) if record else 0,
        "proxy_size": record.proxy_size if record else None,
        "trials": len(trials),
        **{s.lower(): counts[s] for s in STATES},
        **{f"best_{k}": best[k] for k in SCORES},
        "chosen": chosen_trial(user_attrs),
        "last_update": last,
        "live": live,
        "tuner_study": record is not None,
    }


def studies_frame(storage, now: datetime | None = None) -> pd.DataFrame:
    """Every study in a storage, newest activity first (one row each, see :func:`study_row`)."""
    import optuna

    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        rows.append(study_row(summary.study_name, summary.user_attrs, trials, summary.datetime_start, now))
    columns = list(study_row("", {}, []).keys())
    df = pd.DataFrame(rows, columns=columns)
    if not df.empty:
        df = df.sort_values("last_update", ascending=False, na_position="last", key=_sortable_time).reset_index(drop=True)
    return df


def _sortable_time(col: pd.Series) -> pd.Series:
    return col.map(lambda d: d.timestamp() if isinstance(d, datetime) and not pd.isna(d) else -math.inf)


# --------------------------------------------------------------------------- trials
def _duration(t) -> float:
    if t.datetime_start and t.datetime_complete:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return math.nan


def trials_frame(trials: Sequence[Any], chosen: int | None = None, front: Iterable[int] = ()) -> pd.DataFrame:
    """One row per trial: state, judge scores, the StyleConfig flattened, search params, artifacts.

    Columns: ``number, state, style, content, noise, pareto, chosen, <config fields>,
    style_layers, param:<name>..., feasible, duration_s, started, completed, sheet,
    artifacts, curve, note``. ``pareto`` marks the trial numbers in ``front`` (the study's
    front, :func:`tuner.records.pareto_front`; :func:`study_frame` passes it); ``feasible``
    is False when the judge found a result too noisy, as ``tuner show`` does.
    """
    rows = []
    param_names: list[str] = []
    for t in trials:
        for p in t.params:
            if p not in param_names:
                param_names.append(p)
    on_front = set(front)
    for t in trials:
        rec = TrialRecord.from_trial(t)
        config = rec.style_config or {}
        layers: dict[str, Any] = config["style_layers"] if isinstance(config.get("style_layers"), dict) else {}
        rows.append({
            "number": rec.number,
            "state": rec.state,
            **{k: rec.score(k) for k in SCORES},
            "pareto": rec.number in on_front,
            "chosen": chosen is not None and rec.number == chosen,
            **{c: config.get(c) for c in CONFIG_COLUMNS},
            "style_layers": ", ".join(f"{k}:{float(v):.2g}" for k, v in layers.items() if finite(v) and float(v) > 0),
            **{f"param:{p}": t.params.get(p) for p in param_names},
            "feasible": rec.feasible,
            "duration_s": _duration(t) if t.datetime_complete else rec.seconds if rec.seconds is not None else math.nan,
            "started": t.datetime_start,
            "completed": t.datetime_complete,
            "sheet": rec.pictures().get(SHEET),
            "artifacts": rec.pictures(),  # at the study's view size when the trial painted it, else the proxy's
            "proxy_artifacts": rec.artifacts,
            "curve": list(rec.loss_curve),
            "note": rec.note,
        })
    columns = ["number", "state", *SCORES, "pareto", "chosen", *CONFIG_COLUMNS, "style_layers",
               *[f"param:{p}" for p in param_names], "feasible", "duration_s", "started", "completed", "sheet",
               "artifacts", "proxy_artifacts", "curve", "note"]
    df = pd.DataFrame(rows, columns=columns).astype({"pareto": bool, "chosen": bool})
    return df.sort_values("number").reset_index(drop=True)


def study_frame(study, chosen: int | None = None) -> pd.DataFrame:
    """:func:`trials_frame` of every trial of ``study``, with its front marked."""
    return trials_frame(study.get_trials(deepcopy=False), chosen, (r.number for r in pareto_front(study)))


@dataclass(frozen=True)
class StudyInfo:
    """A study's own record plus who is chosen for training (and why)."""

    name: str
    record: StudyRecord | None  # None: a study ``tuner search`` did not make
    chosen: int | None
    training_pick: int | None  # chosen, else the default rule of tuner.reader.default_trial
    pick_reason: str
    directions: tuple[str, ...]
    baseline: Baseline | None = None  # stored once per study; see ensure_baseline


def study_info(study) -> StudyInfo:
    chosen = chosen_trial(study.user_attrs)
    if chosen is not None:
        pick, reason = chosen, "chosen by a person"
    else:
        try:
            pick, reason = default_trial(study), f"default: {DEFAULT_RULE}"
        except StorageError:
            pick, reason = None, "no finished trial yet"
    return StudyInfo(study.study_name, StudyRecord.from_user_attrs(study.user_attrs), chosen, pick, reason,
                     tuple(d.name.lower() for d in study.directions), read_baseline(study.user_attrs))


def ensure_baseline(study, settings: Settings) -> Baseline:
    """The study's off-the-shelf baseline, computed and stored on first view (:func:`tuner.baseline.ensure_baseline`).

    Raises :class:`tuner.baseline.BaselineUnavailable` (or a storage error) with a one-line
    reason when it cannot be computed on this machine; nothing is stored then.
    """
    from tuner.baseline import ensure_baseline as ensure

    return ensure(study, settings.storage, settings.artifacts)


def baseline_verdict(df: pd.DataFrame, baseline: Baseline, tradeoff: float | None = None) -> dict[str, Any]:
    """Which finished, feasible trials beat the baseline (:func:`tuner.records.beating_trials`, the rule every
    command applies).

    ``{"beaten_by": [numbers, best first], "trials": n feasible finished, "text": one line, "note": the line
    :func:`tuner.records.losing_note` gives when no trial beats it (naming ``tuner preview``), else None}``.
    """
    done = df[(df["state"] == "COMPLETE") & df["style"].notna() & df["content"].notna() & df["feasible"]]
    trials = [TrialRecord(number=int(r.number), state="COMPLETE", feasible=True,
                          scores={"style": float(r.style), "content": float(r.content)}) for r in done.itertuples()]
    numbers = [t.number for t in beating_trials(baseline, trials, tradeoff)]
    how = beaten_on(tradeoff)
    if numbers:
        text = f"{len(numbers)} of {len(done)} finished trial(s) beat the off-the-shelf model {how} (best: #{numbers[0]})"
    else:
        text = f"no finished trial beats the off-the-shelf model {how} yet ({len(done)} finished)"
    return {"beaten_by": numbers, "trials": int(len(done)), "text": text,
            "note": losing_note(baseline, trials, tradeoff)}


def choose_trial(study, number: int) -> None:
    """Record ``number`` as the person's pick: the study attribute ``tuner choose`` writes.

    Refuses trials that did not finish (through :func:`tuner.reader.trial_config`, so the
    rule is the one ``trainer fit --from-study`` applies when it reads the pick back).
    """
    trial_config(study, int(number))
    study.set_user_attr(CHOSEN_ATTR, int(number))


def history_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Finished trials in order with the best-so-far of each score and of style + content."""
    done = df[(df["state"] == "COMPLETE") & df["style"].notna()].sort_values("number")
    out = done[["number", "style", "content", "noise"]].copy()
    out["sum"] = out["style"] + out["content"]
    for col in ("style", "content", "sum"):
        out[f"best_{col}"] = out[col].cummin()
    return out.reset_index(drop=True)


def importance_frame(study, objectives: Sequence[str] = ("style", "content"), evaluator: str = "ped-anova") -> tuple[pd.DataFrame, str]:
    """Parameter importance per judge score with one of Optuna's evaluators; ``(frame, note)``.

    The target is the judge score read from the ``scores`` attribute (so it also works for
    a study optimised on a weighted sum). Returns an empty frame and a reason when there
    is nothing to rank (too few finished trials, no parameter that varies).
    ``evaluator``: ``ped-anova`` (Optuna's default, Watanabe et al. 2023), ``fanova``
    (Hutter et al. 2014; needs scikit-learn) or ``mdi`` (random-forest impurity).
    """
    import optuna.importance as oi

    done = [t for t in study.get_trials(deepcopy=False) if TrialRecord.from_trial(t).scored]
    if len(done) < 3:
        return pd.DataFrame(columns=["param", "objective", "importance"]), "needs at least 3 finished trials"
    factories = {"ped-anova": lambda: oi.PedAnovaImportanceEvaluator(),
                 "fanova": lambda: oi.FanovaImportanceEvaluator(seed=0),
                 "mdi": lambda: oi.MeanDecreaseImpurityImportanceEvaluator(seed=0)}
    if evaluator not in factories:
        raise ValueError(f"evaluator must be one of {', '.join(factories)}, not {evaluator!r}")
    rows = []
    for obj in objectives:
        def target(t, obj=obj) -> float:
            return TrialRecord.from_trial(t).score(obj)

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = oi.get_param_importances(study, evaluator=factories[evaluator](), target=target, normalize=True)
        except ImportError as exc:
            return pd.DataFrame(columns=["param", "objective", "importance"]), f"{evaluator} needs {exc.name or 'scikit-learn'}"
        except (ValueError, RuntimeError) as exc:
            return pd.DataFrame(columns=["param", "objective", "importance"]), str(exc).splitlines()[0]
        rows += [{"param": p, "objective": obj, "importance": float(v)} for p, v in imp.items()]
    if not rows:
        return pd.DataFrame(columns=["param", "objective", "importance"]), "no search parameter varies between finished trials"
    return pd.DataFrame(rows), ""
