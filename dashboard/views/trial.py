"""One trial: its contact sheet and results, scores, configuration, loss curve, and the Choose button."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import data, figures, pictures, ui
from tuner.reader import StorageError, load_study, trial_record

cfg = ui.settings()
name = ui.current_study(cfg)
if name is None:
    st.stop()
df, info = ui.study_tables(cfg.storage, name)
cfg = ui.study_settings(cfg, info)  # the study's own artifact folder, or one line saying why its pictures are missing
if df.empty:
    st.info(f"Study {name} has no trials yet.")
    st.stop()

st.title(f"Study {name}: trial")
number = ui.trial_picker(df, info.training_pick)
row = df[df["number"] == number].iloc[0]

scores_col, choose_col = st.columns([3, 2])
with scores_col:
    a, b, c = st.columns(3)
    a.metric("style", ui.fmt_score(row["style"]), help="0 = the painting's style statistics, 1 = the unchanged photo")
    b.metric("content", ui.fmt_score(row["content"]), help="0 = the photo's structure kept, 1 = no better than noise")
    c.metric("noise", ui.fmt_score(row["noise"]), help="0 = no more speckle than the photo")
    colour = {"COMPLETE": "blue", "PRUNED": "gray", "FAIL": "red", "RUNNING": "orange"}.get(row["state"], "gray")
    tags = [f":{colour}-badge[{row['state'].lower()}]"]
    if row["pareto"]:
        tags.append(":red-badge[on the Pareto front]")
    if row["chosen"]:
        tags.append(":green-badge[chosen for training]")
    elif info.training_pick == number:
        tags.append(":green-badge[default training pick]")
    st.markdown(" ".join(tags))
with choose_col:
    finished = row["state"] == "COMPLETE" and isinstance(row["network"], str)
    if st.button("Choose this trial for training", type="primary", disabled=not finished or bool(row["chosen"]),
                 key="choose", help="records it on the study, like `tuner choose`; `trainer fit --from-study` then trains it"):
        try:
            data.choose_trial(load_study(ui.storage(cfg.storage), name), number)
        except StorageError as exc:
            st.error(str(exc))
        else:
            ui.study_tables.clear()
            ui.studies_table.clear()
            st.session_state["just_chosen"] = number
            st.rerun()
    if st.session_state.pop("just_chosen", None) == number:
        st.success(f"Trial {number} is now the study's pick.")
    if row["chosen"] or info.training_pick == number:
        st.code(f"trainer fit --from-study {name}", language="bash")
    elif not finished:
        st.caption("Only finished trials can be chosen.")

if isinstance(row["note"], str) and row["note"]:
    st.warning(row["note"])

arts = row["artifacts"] or {}
if arts.get("sheet"):
    st.subheader("Contact sheet")
    sheet = ui.artifact(cfg.storage, cfg.artifacts, arts.get("sheet"))
    if sheet:
        # Proxy-sized cells are small: draw the sheet at twice its size, within the page.
        st.image(sheet, width=min(1000, 2 * pictures.image_size(sheet)[0]))
    else:
        st.caption("contact sheet missing from the artifact store")

photos = [n for n in (info.record.content_names if info.record else ()) if n in arts]
if photos:
    view = info.record.view_size if info.record and arts != (row["proxy_artifacts"] or {}) else None
    st.subheader(f"Results at {view} px" if view else "Results at proxy size")
    st.caption(pictures.size_note(info.record))
    cols = st.columns(len(photos))
    for col, photo in zip(cols, photos, strict=True):
        with col:
            ui.show_artifact(cfg, arts[photo], caption=photo)

left, right = st.columns(2)
with left:
    st.subheader("Configuration")
    try:
        trial = trial_record(load_study(ui.storage(cfg.storage), name), number)
    except StorageError:
        trial = None
    if trial is not None and trial.style_config:
        st.code(json.dumps(trial.style_config, indent=2), language="json")
    else:
        st.caption("no configuration recorded (the trial did not finish)")
    if trial is not None and trial.params:
        st.caption("search parameters")
        st.json(trial.params, expanded=False)
with right:
    st.plotly_chart(figures.loss_curve_figure(row["curve"]), key="trial-curve", width="stretch")
    took = f" · took {row['duration_s']:.0f} s" if pd.notna(row["duration_s"]) else ""
    st.caption(f"started {ui.fmt_time(row['started'])} · finished {ui.fmt_time(row['completed'])}{took}")
