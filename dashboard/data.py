"""What the dashboard shows, as plain data: studies and trials as DataFrames, artifacts as images.

Nothing here imports Streamlit, so every function is unit-tested on its own and the
page scripts only lay out what these return (the "compute, then render" split of
Optuna's visualization module). Storage access goes through :mod:`tuner.reader` and
Optuna's public API only. The dashboard writes two things: :func:`choose_trial`, the same
record ``tuner choose`` writes, and, once per study, the off-the-shelf baseline
(:func:`ensure_baseline`, the same record ``tuner show`` computes).

Training runs are folders written by ``trainer fit`` (``<runs>/<name>/``). A run may be
in progress or may have crashed, so every file in it is read defensively: a missing or
half-written file becomes a note in :attr:`Run.problems`, never an exception.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.reader import (
    ARTIFACTS_ATTR,
    CHOSEN_ATTR,
    CONFIG_ATTR,
    CURVE_ATTR,
    DEFAULT_STORAGE,
    SCORES_ATTR,
    STUDY_ATTR,
    StorageError,
    default_trial,
    sqlite_path,
    trial_config,
)
from tuner.study import Baseline, read_baseline

#: Score columns, in the order they are shown; 0 is ideal, 1 is "no better than doing nothing".
SCORES = ("style", "content", "noise")
#: StyleConfig fields flattened into the trials table.
CONFIG_COLUMNS = ("network", "pooling", "content_layer", "content_weight", "style_weight", "tv_weight",
                  "style_scale", "init")
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: The gallery's stand-in trial number for the off-the-shelf baseline (trial numbers start at 0).
BASELINE = -1
BASELINE_LABEL = "off-the-shelf (Magenta, no training)"
#: A study with RUNNING trials counts as live only if something happened this recently;
#: older RUNNING trials are leftovers of a search that was killed without a heartbeat.
LIVE_WINDOW_S = 15 * 60


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
    168-trial study a refresh gets 5-7 times cheaper (``python -m bench.dashboard_refresh``,
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


def _now_like(stamp: datetime) -> datetime:
    """Now, in the same naive/aware flavour as ``stamp`` (Optuna stores naive local times)."""
    return datetime.now(stamp.tzinfo) if stamp.tzinfo else datetime.now()


def state_counts(trials: Iterable[Any]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def study_row(study_name: str, user_attrs: Mapping[str, Any], trials: Sequence[Any],
              started: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One line of the studies overview, from a study's attributes and its (frozen) trials."""
    record = user_attrs.get(STUDY_ATTR) if isinstance(user_attrs.get(STUDY_ATTR), dict) else {}
    counts = state_counts(trials)
    scored = [t.user_attrs[SCORES_ATTR] for t in trials
              if t.state.name == "COMPLETE" and isinstance(t.user_attrs.get(SCORES_ATTR), dict)]
    best = {k: min((float(s[k]) for s in scored if _finite(s.get(k))), default=math.nan) for k in SCORES}
    last = _last_update(trials, started)
    live = False
    if counts["RUNNING"] and last is not None:
        now = now or _now_like(last)
        live = (now - last).total_seconds() < LIVE_WINDOW_S
    chosen = user_attrs.get(CHOSEN_ATTR)
    return {
        "study": study_name,
        "painting": record.get("style_name", ""),
        "painting_artifact": record.get("style_artifact"),
        "photos": len(record.get("content_names", []) or []),
        "proxy_size": record.get("proxy_size"),
        "trials": len(trials),
        **{s.lower(): counts[s] for s in STATES},
        **{f"best_{k}": best[k] for k in SCORES},
        "chosen": int(chosen) if chosen is not None else None,
        "last_update": last,
        "live": live,
        "tuner_study": bool(record),
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


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- trials
def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` (n, k) are not dominated, all objectives minimised.

    A point is dominated when another is no worse in every objective and better in one
    (Pareto optimality as in Deb et al., NSGA-II). Rows with a NaN are never on the front.
    Exact duplicates are all kept.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be (n, k), got shape {pts.shape}")
    ok = np.all(np.isfinite(pts), axis=1)
    mask = ok.copy()
    for i in np.flatnonzero(ok):
        others = pts[ok]
        no_worse = np.all(others <= pts[i], axis=1)
        better = np.any(others < pts[i], axis=1)
        if np.any(no_worse & better):
            mask[i] = False
    return mask


def _duration(t) -> float:
    if t.datetime_start and t.datetime_complete:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return math.nan


def trials_frame(trials: Sequence[Any], chosen: int | None = None) -> pd.DataFrame:
    """One row per trial: state, judge scores, the StyleConfig flattened, search params, artifacts.

    Columns: ``number, state, style, content, noise, pareto, chosen, <config fields>,
    style_layers, param:<name>..., feasible, duration_s, started, completed, sheet,
    artifacts, curve, note``. ``pareto`` marks the finished, feasible trials no other
    such trial beats on both style and content (computed from the judge scores, not the
    objective values, so it is the same for a study optimised on a single weighted sum;
    ``feasible`` is False when the judge found a result too noisy, as ``tuner show`` does).
    """
    rows = []
    param_names: list[str] = []
    for t in trials:
        for p in t.params:
            if p not in param_names:
                param_names.append(p)
    for t in trials:
        attrs = t.user_attrs
        scores = attrs.get(SCORES_ATTR) if isinstance(attrs.get(SCORES_ATTR), dict) else {}
        config = attrs.get(CONFIG_ATTR) if isinstance(attrs.get(CONFIG_ATTR), dict) else {}
        arts = attrs.get(ARTIFACTS_ATTR) if isinstance(attrs.get(ARTIFACTS_ATTR), dict) else {}
        curve = attrs.get(CURVE_ATTR) if isinstance(attrs.get(CURVE_ATTR), list) else []
        layers = config.get("style_layers") if isinstance(config.get("style_layers"), dict) else {}
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            **{k: float(scores[k]) if _finite(scores.get(k)) else math.nan for k in SCORES},
            **{c: config.get(c) for c in CONFIG_COLUMNS},
            "style_layers": ", ".join(f"{k}:{float(v):.2g}" for k, v in layers.items() if _finite(v) and float(v) > 0),
            **{f"param:{p}": t.params.get(p) for p in param_names},
            "feasible": attrs.get("feasible", True) is not False,
            "duration_s": _duration(t) if t.datetime_complete else float(attrs.get("seconds", math.nan))
            if _finite(attrs.get("seconds")) else math.nan,
            "started": t.datetime_start,
            "completed": t.datetime_complete,
            "sheet": arts.get("sheet"),
            "artifacts": {k: v for k, v in arts.items() if isinstance(v, str)},
            "curve": [float(v) for v in curve if _finite(v)],
            "note": str(attrs.get("fail_reason") or attrs.get("prune_reason") or ""),
        }
        rows.append(row)
    base = ["number", "state", *SCORES, "pareto", "chosen", *CONFIG_COLUMNS, "style_layers",
            *[f"param:{p}" for p in param_names], "feasible", "duration_s", "started", "completed", "sheet", "artifacts", "curve", "note"]
    df = pd.DataFrame(rows, columns=[c for c in base if c not in ("pareto", "chosen")])
    done = (df["state"] == "COMPLETE") & df["style"].notna() & df["content"].notna() & df["feasible"]
    front = np.zeros(len(df), bool)
    if done.any():
        front[np.flatnonzero(done.to_numpy())] = pareto_mask(df.loc[done, ["style", "content"]].to_numpy())
    df.insert(5, "pareto", front)
    df.insert(6, "chosen", df["number"] == chosen if chosen is not None else False)
    return df.sort_values("number").reset_index(drop=True)


@dataclass(frozen=True)
class StudyInfo:
    """A study's own record plus who is chosen for training (and why)."""

    name: str
    record: dict[str, Any]
    chosen: int | None
    training_pick: int | None  # chosen, else the default rule of tuner.reader.default_trial
    pick_reason: str
    directions: tuple[str, ...]
    baseline: Baseline | None = None  # stored once per study; see ensure_baseline


def study_info(study) -> StudyInfo:
    rec = study.user_attrs.get(STUDY_ATTR)
    record = rec if isinstance(rec, dict) else {}
    chosen_raw = study.user_attrs.get(CHOSEN_ATTR)
    chosen = int(chosen_raw) if chosen_raw is not None else None
    if chosen is not None:
        pick, reason = chosen, "chosen by a person"
    else:
        try:
            pick, reason = default_trial(study), "default: smallest style + content"
        except StorageError:
            pick, reason = None, "no finished trial yet"
    return StudyInfo(study.study_name, record, chosen, pick, reason, tuple(d.name.lower() for d in study.directions),
                     read_baseline(study.user_attrs))


def ensure_baseline(study, settings: Settings) -> Baseline:
    """The study's off-the-shelf baseline, computed and stored on first view (:func:`tuner.study.ensure_baseline`).

    Raises :class:`tuner.study.BaselineUnavailable` (or a storage error) with a one-line
    reason when it cannot be computed on this machine; nothing is stored then.
    """
    from tuner.study import ensure_baseline as ensure

    return ensure(study, settings.storage, settings.artifacts)


def baseline_verdict(df: pd.DataFrame, baseline: Baseline, tradeoff: float | None = None) -> dict[str, Any]:
    """Which finished, feasible trials beat the baseline (:meth:`tuner.study.Baseline.beaten_by`).

    ``{"beaten_by": [numbers, best first], "trials": n feasible finished, "text": one line}``.
    """
    done = df[(df["state"] == "COMPLETE") & df["style"].notna() & df["content"].notna() & df["feasible"]]
    beat = [r for r in done.itertuples() if baseline.beaten_by({"style": r.style, "content": r.content}, tradeoff)]
    beat.sort(key=lambda r: r.style + (tradeoff if tradeoff is not None else 1.0) * r.content)
    numbers = [int(r.number) for r in beat]
    how = "on both scores" if tradeoff is None else f"on style + {tradeoff:g} × content"
    if numbers:
        text = f"{len(numbers)} of {len(done)} finished trial(s) beat the off-the-shelf model {how} (best: #{numbers[0]})"
    else:
        text = f"no finished trial beats the off-the-shelf model {how} yet ({len(done)} finished)"
    return {"beaten_by": numbers, "trials": int(len(done)), "text": text}


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

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
            and isinstance(t.user_attrs.get(SCORES_ATTR), dict)]
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
            return float(t.user_attrs[SCORES_ATTR].get(obj, math.nan))

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


def default_gallery_trials(df: pd.DataFrame, chosen: int | None, limit: int = 4) -> list[int]:
    """The trials shown first in the gallery: the pick, then the Pareto front by style + content."""
    done = df[(df["state"] == "COMPLETE") & df["style"].notna()].copy()
    done["sum"] = done["style"] + done["content"]
    order = [chosen] if chosen is not None and chosen in set(done["number"]) else []
    front = done[done["pareto"]].sort_values("sum")["number"].tolist()
    rest = done[~done["pareto"]].sort_values("sum")["number"].tolist()
    for n in front + rest:
        if n not in order:
            order.append(int(n))
    return order[:limit]


def gallery_rows(record: Mapping[str, Any], df: pd.DataFrame, numbers: Sequence[int],
                 baseline: Baseline | None = None) -> list[dict[str, Any]]:
    """Per test photo: its artifact, the painting's, the baseline's and each selected trial's result (or None).

    :data:`BASELINE` among ``numbers`` stands for the baseline's result, so it can be
    compared with trials like one.
    """
    by_number = {int(r.number): r.artifacts for r in df.itertuples()}
    if baseline is not None:
        by_number[BASELINE] = baseline.artifacts
    content_ids = record.get("content_artifacts") or {}
    rows = []
    for name in record.get("content_names") or list(content_ids):
        rows.append({
            "photo": name,
            "photo_artifact": content_ids.get(name),
            "painting_artifact": record.get("style_artifact"),
            "baseline_artifact": baseline.artifacts.get(name) if baseline is not None else None,
            "results": {int(n): (by_number.get(int(n)) or {}).get(name) for n in numbers},
        })
    return rows


def point_trial(point: Mapping[str, Any]) -> int | None:
    """The trial number carried in a clicked point's ``customdata`` (see figures.pareto_figure).

    Streamlit hands ``customdata`` back as a list, a scalar, or (for a row of a 2-D array)
    a dict keyed by column index such as ``{"0": 12}``; all three are accepted.
    """
    custom = point.get("customdata") if isinstance(point, Mapping) else None
    if isinstance(custom, Mapping):
        custom = custom.get("0", next(iter(custom.values()), None))
    elif isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    if isinstance(custom, bool) or not _finite(custom) or float(custom) != int(float(custom)):
        return None
    return int(float(custom))


def trial_label(row: Mapping[str, Any]) -> str:
    """``#12 · style 0.31 · content 0.22 · vgg16_hed`` for pickers and captions."""
    bits = [f"#{int(row['number'])}"]
    if _finite(row.get("style")):
        bits.append(f"style {float(row['style']):.3f}")
    if _finite(row.get("content")):
        bits.append(f"content {float(row['content']):.3f}")
    if isinstance(row.get("network"), str) and row["network"]:
        bits.append(row["network"])
    return " · ".join(bits)


# --------------------------------------------------------------------------- images
def thumbnail(png: bytes, max_side: int = 240, fmt: str = "JPEG") -> bytes:
    """A small re-encoded copy of an image (hover previews and table thumbnails stay light)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        out = io.BytesIO()
        im.save(out, format=fmt, quality=85)
    return out.getvalue()


def data_uri(data: bytes, mime: str | None = None) -> str:
    """``data:image/...;base64,`` URL, for images inside tables, hover previews and components."""
    if mime is None:
        mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    """A training run folder as far as it could be read; ``problems`` lists what could not."""

    name: str
    folder: Path
    info: dict[str, Any] = field(default_factory=dict)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    previews: list[tuple[int, Path]] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # {"trained": {...}, "gatys": {...}}
    per_photo: dict[str, dict[str, float]] = field(default_factory=dict)  # trained results, per test photo
    judge: str = ""
    note: str = ""
    results: dict[str, Path] = field(default_factory=dict)
    photos: dict[str, Path] = field(default_factory=dict)  # the test photos the previews and results are made from
    problems: list[str] = field(default_factory=list)

    @property
    def source(self) -> dict[str, Any]:
        """``{"study", "trial", "storage"}`` of the trial this run was trained from, as recorded."""
        src = self.info.get("source") if isinstance(self.info.get("source"), dict) else {}
        out = {k: src.get(k, self.info.get(k)) for k in ("study", "trial", "storage")}
        if out["trial"] is not None:
            try:
                out["trial"] = int(out["trial"])
            except (TypeError, ValueError):
                out["trial"] = None
        return out

    @property
    def config(self) -> dict[str, Any] | None:
        cfg = self.info.get("config") or self.info.get("style_config")
        return cfg if isinstance(cfg, dict) else None

    @property
    def finished(self) -> bool:
        """Training wrote its final scores (or a note why it could not score)."""
        return bool(self.scores or self.note)

    @property
    def loss_columns(self) -> list[str]:
        """Metric columns that are loss terms (not throughput or wall-clock bookkeeping)."""
        return [c for c in self.metrics.columns if c not in _NOT_LOSSES and self.metrics[c].notna().any()]

    @property
    def last_step(self) -> int | None:
        if not self.metrics.empty and "step" in self.metrics:
            return int(self.metrics["step"].max())
        return self.previews[-1][0] if self.previews else None


_STEP_RE = re.compile(r"(\d+)")
_NOT_LOSSES = {"step", "img_per_s", "images_per_s", "seconds", "time", "lr", "learning_rate"}
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp")


def _read_json(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name} unreadable ({exc.__class__.__name__}); the run may still be writing it")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not a JSON object")
        return {}
    return data


def read_metrics(path: Path, problems: list[str] | None = None) -> pd.DataFrame:
    """``metrics.jsonl`` as a frame sorted by ``step``; torn or malformed lines are skipped and counted."""
    problems = [] if problems is None else problems
    if not path.exists():
        return pd.DataFrame()
    rows, bad = [], 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        problems.append(f"{path.name} unreadable ({exc.strerror})")
        return pd.DataFrame()
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not isinstance(row, dict):
            bad += 1
            continue
        clean = {k: float(v) for k, v in row.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if "step" in clean:
            rows.append(clean)
        else:
            bad += 1
    if bad:
        problems.append(f"{path.name}: skipped {bad} unreadable line(s)")
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["step"] = df["step"].astype(int)
    return df.sort_values("step").drop_duplicates("step", keep="last").reset_index(drop=True)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXT and p.is_file())


def _step_of(path: Path) -> int | None:
    found = _STEP_RE.findall(path.stem)
    return int(found[-1]) if found else None


def _scores_map(data: Any, keys: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """``{name: {score: value}}`` keeping only finite numbers (and only ``keys`` when given)."""
    out: dict[str, dict[str, float]] = {}
    if isinstance(data, dict):
        for who, vals in data.items():
            if keys is not None and who not in keys:
                continue
            if isinstance(vals, dict):
                clean = {k: float(v) for k, v in vals.items() if _finite(v) and not isinstance(v, bool)}
                if clean:
                    out[str(who)] = clean
    return out


def load_run(folder: Path) -> Run:
    """Read a run folder: ``run.json``, ``metrics.jsonl``, ``previews/``, ``scores.json``, ``results/``.

    The layout is the one :mod:`trainer.runs` documents; ``scores.json`` holds
    ``{"trained": {...}, "gatys": {...}, "per_photo": {photo: {...}}, "judge": ..., "note": ...}``.
    """
    folder = Path(folder)
    run = Run(folder.name, folder)
    run.info = _read_json(folder / "run.json", run.problems)
    if not run.info and not (folder / "run.json").exists():
        run.problems.append("no run.json yet")
    run.metrics = read_metrics(folder / "metrics.jsonl", run.problems)
    previews = [(s, p) for p in _images_in(folder / "previews") if (s := _step_of(p)) is not None]
    run.previews = sorted(previews)
    scores_file = _read_json(folder / "scores.json", run.problems) or run.info.get("scores") or {}
    run.scores = _scores_map(scores_file, ("trained", "gatys"))
    run.per_photo = _scores_map(scores_file.get("per_photo"))
    run.judge = str(scores_file.get("judge") or "")
    run.note = str(scores_file.get("note") or "")
    run.results = {p.stem: p for p in _images_in(folder / "results")}
    run.photos = {p.stem: p for p in _images_in(folder / "preview_photos")}
    return run


def list_runs(runs_dir: Path) -> pd.DataFrame:
    """One row per run folder (any folder holding run.json or metrics.jsonl), newest first."""
    cols = ["run", "study", "trial", "last_step", "previews", "finished", "modified", "problems"]
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return pd.DataFrame(columns=cols)
    rows = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not ((folder / "run.json").exists() or (folder / "metrics.jsonl").exists()):
            continue
        run = load_run(folder)
        mtimes = [f.stat().st_mtime for f in folder.rglob("*") if f.is_file()]
        src = run.source
        rows.append({
            "run": run.name, "study": src["study"], "trial": src["trial"], "last_step": run.last_step,
            "previews": len(run.previews), "finished": run.finished,
            "modified": datetime.fromtimestamp(max(mtimes), tz=timezone.utc).astimezone() if mtimes else None,
            "problems": "; ".join(run.problems),
        })
    df = pd.DataFrame(rows, columns=cols)
    if not df.empty:
        df = df.sort_values("modified", ascending=False, key=_sortable_time).reset_index(drop=True)
    return df
