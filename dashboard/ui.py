"""Streamlit glue shared by the pages: settings, cached storage and tables, pickers, images.

Caching follows Streamlit's split: the storage handle (a SQLAlchemy engine pool) is a
``st.cache_resource`` shared by every session; tables are ``st.cache_data`` with a few
seconds' TTL, so a running search shows up quickly while a page with many widgets does
not hit the database on every interaction; artifacts are immutable once written, so
their bytes are cached without a TTL (bounded by entry count).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data, pictures
from tuner.reader import StorageError, load_study, read_artifact, sqlite_path

#: Seconds between refreshes of live views, and the lifetime of cached tables.
REFRESH_S = 5
TABLE_TTL_S = 3

PAGES = {
    "studies": "views/studies.py",
    "study": "views/study.py",
    "trial": "views/trial.py",
    "gallery": "views/gallery.py",
    "runs": "views/runs.py",
}


def settings() -> data.Settings:
    """Where to read from: ``streamlit run dashboard/app.py -- --storage URL`` or STYLETUNE_* variables."""
    argv = sys.argv[1:] if Path(sys.argv[0]).name == "app.py" else []
    return data.parse_settings(argv, os.environ)


@st.cache_resource(show_spinner=False)
def storage(url: str):
    """One Optuna storage per URL for the whole server (WAL + busy timeout, trial cache: data.reading_storage)."""
    return data.reading_storage(url)


def storage_or_stop(url: str):
    """The storage, or a one-line explanation on the page and nothing else.

    A SQLite file that does not exist yet is normal before the first ``tuner search``:
    the page says so and checks again every few seconds.
    """
    db = sqlite_path(url)
    if db is not None and not db.exists():
        st.info(f"No study database at `{db}` yet. Start a search with `tuner search --style PAINTING`; "
                "this page picks it up on its own.")

        @st.fragment(run_every=REFRESH_S)
        def wait() -> None:
            if db.exists():
                st.rerun(scope="app")

        wait()
        st.stop()
    try:
        return storage(url)
    except StorageError as exc:
        st.error(f"Cannot open the study storage: {exc}")
        st.caption("Start the dashboard with `tuner dashboard --storage URL`, or run `tuner search` first.")
        st.stop()


@st.cache_data(ttl=TABLE_TTL_S, show_spinner=False)
def studies_table(url: str) -> pd.DataFrame:
    return data.studies_frame(storage(url))


@st.cache_data(ttl=TABLE_TTL_S, show_spinner=False)
def study_tables(url: str, name: str) -> tuple[pd.DataFrame, data.StudyInfo]:
    study = load_study(storage(url), name)
    info = data.study_info(study)
    return data.study_frame(study, info.chosen), info


def baseline(cfg: data.Settings, name: str, info: data.StudyInfo):
    """The study's off-the-shelf baseline, computed once (with a spinner) on first view; ``(baseline, reason)``.

    ``baseline`` is None when it cannot be computed here; ``reason`` says why, and is
    remembered for the session so the page does not retry on every click.
    """
    if info.baseline is not None or info.record is None:
        return info.baseline, "" if info.record is not None else "not a tuner study"
    failed = st.session_state.setdefault("baseline_failed", {})
    if name in failed:
        return None, failed[name]
    from nst.errors import StyletuneError

    with st.spinner("Painting the test photos with the off-the-shelf model and judging them (once per study)…"):
        try:
            result = data.ensure_baseline(load_study(storage(cfg.storage), name), cfg)
        except StyletuneError as exc:
            failed[name] = str(exc)
            return None, failed[name]
    study_tables.clear()
    return result, ""


@st.cache_data(ttl=60, show_spinner=False)
def importance_table(url: str, name: str, n_complete: int, evaluator: str) -> tuple[pd.DataFrame, str]:
    """Keyed by the number of finished trials, so it is recomputed only when there is new evidence."""
    return data.importance_frame(load_study(storage(url), name), evaluator=evaluator)


@st.cache_data(max_entries=4000, show_spinner=False)
def artifact(url: str, artifacts: str | None, artifact_id: str | None) -> bytes | None:
    """An artifact's bytes, or None when it is missing (a pruned trial, a store moved away)."""
    if not isinstance(artifact_id, str) or not artifact_id:  # None, or NaN from a table column
        return None
    from optuna.exceptions import OptunaError

    try:
        return read_artifact(url, artifact_id, artifacts)
    except (StorageError, OptunaError, OSError):  # ArtifactNotFound is an OptunaError
        return None


@st.cache_data(max_entries=4000, show_spinner=False)
def thumbnail_uri(url: str, artifacts: str | None, artifact_id: str | None, side: int = 320) -> str | None:
    raw = artifact(url, artifacts, artifact_id)
    return pictures.data_uri(pictures.thumbnail(raw, side)) if raw else None


def image_uri(url: str, artifacts: str | None, artifact_id: str | None) -> str | None:
    raw = artifact(url, artifacts, artifact_id)
    return pictures.data_uri(raw) if raw else None


@st.cache_data(ttl=TABLE_TTL_S, show_spinner=False)
def missing_pictures(cfg: data.Settings, record) -> str | None:
    return data.missing_pictures(cfg, record)


def study_settings(cfg: data.Settings, info: data.StudyInfo) -> data.Settings:
    """Settings that read this study's pictures from its recorded folder; one warning line when they are not found."""
    hint = missing_pictures(cfg, info.record)
    if hint:
        st.warning(hint)
    return cfg.for_study(info.record)


def show_artifact(cfg: data.Settings, artifact_id: str | None, caption: str | None = None, width: int | str = "stretch",
                  missing: str = "no image") -> None:
    raw = artifact(cfg.storage, cfg.artifacts, artifact_id)
    if raw is None:
        st.caption(f"{caption + ': ' if caption else ''}{missing}")
    else:
        st.image(raw, caption=caption, width=width)


# --------------------------------------------------------------------------- pickers
def _sync_query(param: str, state_key: str) -> None:
    st.query_params[param] = str(st.session_state[state_key])


def study_picker(names: list[str]) -> str | None:
    """The sidebar's study selector, kept in step with ``?study=`` so a URL opens the same view."""
    if not names:
        return None
    wanted = st.query_params.get("study")
    if wanted in names and st.session_state.get("study_pick") != wanted:
        st.session_state["study_pick"] = wanted
    if st.session_state.get("study_pick") not in names:
        st.session_state["study_pick"] = names[0]
    name = st.sidebar.selectbox("Study", names, key="study_pick", on_change=_sync_query, args=("study", "study_pick"))
    st.query_params["study"] = name
    return name


def trial_picker(df: pd.DataFrame, default: int | None, label: str = "Trial") -> int | None:
    """A trial selector kept in step with ``?trial=``; ``default`` when the URL names none."""
    if df.empty:
        return None
    numbers = [int(n) for n in df["number"]]
    labels = {int(r["number"]): f"{pictures.trial_label(r)} · {r['state'].lower()}" for _, r in df.iterrows()}
    wanted = st.query_params.get("trial")
    wanted_n = int(wanted) if wanted is not None and str(wanted).isdigit() else None
    if wanted_n in numbers and st.session_state.get("trial_pick") != wanted_n:
        st.session_state["trial_pick"] = wanted_n
    if st.session_state.get("trial_pick") not in numbers:
        st.session_state["trial_pick"] = default if default in numbers else numbers[-1]
    number = st.selectbox(label, numbers, key="trial_pick", format_func=lambda n: labels[n],
                          on_change=_sync_query, args=("trial", "trial_pick"))
    st.query_params["trial"] = str(number)
    return int(number)


def open_trial(study: str, number: int) -> None:
    """Go to the trial page for ``study:number`` (also what a click on the Pareto front does).

    Only the URL carries the choice: the pickers read ``?study=``/``?trial=`` before they
    are drawn (a widget's state cannot be changed once it is on the page).
    """
    st.switch_page(PAGES["trial"], query_params={"study": study, "trial": str(number)})


def open_study(study: str) -> None:
    st.switch_page(PAGES["study"], query_params={"study": study})


def current_study(cfg: data.Settings) -> str | None:
    """The study the sidebar picked; a notice and ``None`` when the storage holds none."""
    names = studies_table(cfg.storage)["study"].tolist()
    name = st.session_state.get("study_pick")
    if name in names:
        return name
    if not names:
        st.info("No studies yet. Start one with `tuner search --style PAINTING`; this page updates on its own.")
        return None
    return names[0]


def fmt_score(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.3f}"


def fmt_time(value) -> str:
    if value is None or pd.isna(value):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
