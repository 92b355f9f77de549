"""Gallery: each test photo with the painting and the picked trials' results; compare two to four at full size."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui
from dashboard.components import before_after

cfg = ui.settings()
name = ui.current_study(cfg)
if name is None:
    st.stop()
df, info = ui.study_tables(cfg.storage, name)
rec = info.record
st.title(f"Gallery: {name}")
done = df[df["state"] == "COMPLETE"]
if done.empty or not rec:
    st.info("No finished trials with images yet.")
    st.stop()

labels = {int(r["number"]): data.trial_label(r) for _, r in done.iterrows()}
numbers = list(labels)
picked = st.multiselect("Trials", numbers, default=data.default_gallery_trials(df, info.training_pick, 4),
                        format_func=lambda n: labels[n] + (" ★" if n == info.chosen else ""), key="gallery-trials",
                        max_selections=8,
                        help="starts with the training pick and the best of the Pareto front")

for entry in data.gallery_rows(rec, df, picked):
    st.subheader(entry["photo"])
    cols = st.columns(2 + len(picked))
    with cols[0]:
        ui.show_artifact(cfg, entry["photo_artifact"], caption="photo")
    with cols[1]:
        ui.show_artifact(cfg, entry["painting_artifact"], caption="painting")
    for col, n in zip(cols[2:], picked, strict=True):
        with col:
            ui.show_artifact(cfg, entry["results"].get(n), caption=f"trial {n}", missing="no image")
            if st.button("open", key=f"g-open-{entry['photo']}-{n}", type="tertiary"):
                ui.open_trial(name, n)

st.divider()
st.header("Compare at full size")
photo_names = [e["photo"] for e in data.gallery_rows(rec, df, [])]
c1, c2 = st.columns([1, 3])
photo = c1.selectbox("Photo", photo_names, key="compare-photo")
compare = c2.multiselect("Two to four trials", numbers, default=picked[:2], max_selections=4,
                         format_func=lambda n: labels[n], key="compare-trials")
if len(compare) < 2:
    st.caption("Pick at least two trials.")
else:
    row = next(e for e in data.gallery_rows(rec, df, compare) if e["photo"] == photo)
    cols = st.columns(len(compare))
    for col, n in zip(cols, compare, strict=True):
        with col:
            ui.show_artifact(cfg, row["results"].get(n), caption=labels[n])
    if len(compare) == 2:
        a, b = compare
        left = ui.image_uri(cfg.storage, cfg.artifacts, row["results"].get(a))
        right = ui.image_uri(cfg.storage, cfg.artifacts, row["results"].get(b))
        if left and right:
            st.subheader("Before / after")
            st.caption(f"Drag across the picture: trial {a} on the left of the divider, trial {b} on the right.")
            raw = ui.artifact(cfg.storage, cfg.artifacts, row["results"].get(a))
            width = max(480, min(900, data.image_size(raw)[0] * 4)) if raw else 640
            before_after(left, right, f"trial {a}", f"trial {b}", width=width, key=f"ba-{photo}-{a}-{b}")
