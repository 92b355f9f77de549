"""Training runs as plain data: the folders ``trainer fit`` writes (``<runs>/<name>/``), read for the dashboard.

A run may be in progress or may have crashed, so every file in it is read defensively: a
missing or half-written file becomes a note in :attr:`Run.problems`, never an exception.
``run.json`` and the lines of ``metrics.jsonl`` read through :class:`trainer.runs.RunRecord`
and :func:`trainer.runs.metric_row`, the names the trainer writes them with.
Like :mod:`dashboard.data`, nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from trainer.runs import RunFolder, RunRecord, metric_row
from tuner.records import finite


def _sortable_time(col: pd.Series) -> pd.Series:
    return col.map(lambda d: d.timestamp() if isinstance(d, datetime) and not pd.isna(d) else -math.inf)


@dataclass
class Run:
    """A training run folder as far as it could be read; ``problems`` lists what could not."""

    name: str
    folder: Path
    info: RunRecord = field(default_factory=RunRecord)
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
        return self.info.origin

    @property
    def config(self) -> dict[str, Any] | None:
        return self.info.style_config

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
        row = metric_row(line)
        if row is None:
            bad += 1
        else:
            rows.append(row)
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
                clean = {k: float(v) for k, v in vals.items() if finite(v) and not isinstance(v, bool)}
                if clean:
                    out[str(who)] = clean
    return out


def load_run(folder: Path) -> Run:
    """Read a run folder: ``run.json``, ``metrics.jsonl``, ``previews/``, ``scores.json``, ``results/``.

    The layout is the one :mod:`trainer.runs` documents; ``scores.json`` holds
    ``{"trained": {...}, "gatys": {...}, "per_photo": {photo: {...}}, "judge": ..., "note": ...}``.
    """
    folder = Path(folder)
    files = RunFolder(folder)
    run = Run(folder.name, folder)
    run.info = RunRecord.from_dict(_read_json(files.info_file, run.problems))
    if not files.info_file.exists():
        run.problems.append("no run.json yet")
    run.metrics = read_metrics(files.metrics_file, run.problems)
    previews = [(s, p) for p in _images_in(files.previews) if (s := _step_of(p)) is not None]
    run.previews = sorted(previews)
    scores_file = _read_json(files.scores_file, run.problems)
    run.scores = _scores_map(scores_file, ("trained", "gatys"))
    run.per_photo = _scores_map(scores_file.get("per_photo"))
    run.judge = str(scores_file.get("judge") or "")
    run.note = str(scores_file.get("note") or "")
    run.results = {p.stem: p for p in _images_in(files.results)}
    run.photos = {p.stem: p for p in _images_in(files.photos)}
    return run


def list_runs(runs_dir: Path) -> pd.DataFrame:
    """One row per run folder (any folder holding run.json or metrics.jsonl), newest first."""
    cols = ["run", "study", "trial", "last_step", "previews", "finished", "modified", "problems"]
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return pd.DataFrame(columns=cols)
    rows = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not (RunFolder(folder).info_file.exists() or RunFolder(folder).metrics_file.exists()):
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
