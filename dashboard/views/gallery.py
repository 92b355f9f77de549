"""Gallery: each test photo with the painting, the off-the-shelf baseline and the picked trials' results; compare
two to four at full size (the baseline can be one of them)."""

from __future__ import annotations

import streamlit as st

from dashboard import data, pictures, ui
from dashboard.components import before_after

cfg = ui.settings()
name = ui.current_study(cfg)
if name is None:
    st.stop()
df, info = ui.study_tables(cfg.storage, name)
cfg = ui.study_settings(cfg, info)  # the study's own artifact folder, or one line saying why its pictures are missing
rec = info.record
st.title(f"Gallery: {name}")
done = df[df["state"] == "COMPLETE"]
if done.empty or rec is None:
    st.info("No finished trials with images yet.")
    st.stop()

st.caption(pictures.size_note(rec))
labels = {int(r["number"]): pictures.trial_label(r) for _, r in done.iterrows()}
numbers = list(labels)
base, why = ui.baseline(cfg, name, info)
if base is not None:
    verdict = data.baseline_verdict(df, base, rec.tradeoff)
    s = base.scores
    labels[data.BASELINE] = f"{data.BASELINE_LABEL} · style {s['style']:.3f} · content {s['content']:.3f}"
    st.caption(f"The off-the-shelf column is Magenta's arbitrary network (no training, no search), scored by the same "
               f"judge: style {s['style']:.3f}, content {s['content']:.3f}. {verdict['text']}.")
else:
    st.caption(f"Off-the-shelf baseline unavailable: {why}")
picked = st.multiselect("Trials", numbers, default=pictures.default_gallery_trials(df, info.training_pick, 4),
                        format_func=lambda n: labels[n] + (" ★" if n == info.chosen else ""), key="gallery-trials",
                        max_selections=8,
                        help="starts with the training pick and the best of the Pareto front")

extra = 1 if base is not None else 0
for entry in pictures.gallery_rows(rec, df, picked, base):
    st.subheader(entry["photo"])
    cols = st.columns(2 + extra + len(picked))
    with cols[0]:
        ui.show_artifact(cfg, entry["photo_artifact"], caption="photo")
    with cols[1]:
        ui.show_artifact(cfg, entry["painting_artifact"], caption="painting")
    if base is not None:
        with cols[2]:
            ui.show_artifact(cfg, entry["baseline_artifact"], caption="off-the-shelf", missing="no image")
    for col, n in zip(cols[2 + extra:], picked, strict=True):
        with col:
            ui.show_artifact(cfg, entry["results"].get(n), caption=f"trial {n}", missing="no image")
            if st.button("open", key=f"g-open-{entry['photo']}-{n}", type="tertiary"):
                ui.open_trial(name, n)

st.divider()
st.header("Compare at full size")
photo_names = [e["photo"] for e in pictures.gallery_rows(rec, df, [])]
c1, c2 = st.columns([1, 3])
photo = c1.selectbox("Photo", photo_names, key="compare-photo")
options = ([data.BASELINE] if base is not None else []) + numbers
compare = c2.multiselect("Two to four trials (or the off-the-shelf baseline)", options, default=picked[:2],
                         max_selections=4, format_func=lambda n: labels[n], key="compare-trials")


def short(n: int) -> str:
    return "off-the-shelf" if n == data.BASELINE else f"trial {n}"


if len(compare) < 2:
    st.caption("Pick at least two trials.")
else:
    row = next(e for e in pictures.gallery_rows(rec, df, compare, base) if e["photo"] == photo)
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
            st.caption(f"Drag across the picture: {short(a)} on the left of the divider, {short(b)} on the right.")
            raw = ui.artifact(cfg.storage, cfg.artifacts, row["results"].get(a))
            width = max(480, min(900, pictures.image_size(raw)[0] * 4)) if raw else 640
            before_after(left, right, short(a), short(b), width=width, key=f"ba-{photo}-{a}-{b}")
