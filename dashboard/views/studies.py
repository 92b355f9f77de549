"""Studies: every study with its painting, trial counts, best scores and last update; live while a search runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import ui

cfg = ui.settings()
st.title("Studies")
live = st.toggle("Live", value=True, help=f"refresh this list every {ui.REFRESH_S} s while you watch a search")


@st.fragment(run_every=ui.REFRESH_S if live else None)
def overview() -> None:
    df = ui.studies_table(cfg.storage)
    if df.empty:
        st.info("No studies yet. Start one with `tuner search --style PAINTING`; this page updates on its own.")
        return
    running = int(df["live"].sum())
    a, b, c, d = st.columns(4)
    a.metric("Studies", len(df))
    b.metric("Finished trials", int(df["complete"].sum()))
    c.metric("Searches running", running)
    d.metric("Last update", ui.fmt_time(df["last_update"].max()).split(" ")[-1])
    for row in df.itertuples():
        with st.container(border=True, key=f"study-card-{row.Index}"):
            thumb, body, scores, actions = st.columns([1, 3, 2, 1.2], vertical_alignment="center")
            with thumb:
                recorded = row.artifact_folder if isinstance(row.artifact_folder, str) else None
                uri = ui.thumbnail_uri(cfg.storage, cfg.study_artifacts(recorded), row.painting_artifact, 200)
                if uri:
                    st.image(uri, width=110)
                else:
                    st.caption("no painting")
            with body:
                badge = " :orange-badge[● running]" if row.live else ""
                st.markdown(f"### {row.study}{badge}")
                bits = [f"painting **{row.painting or '?'}**", f"{row.photos} test photo(s)"]
                if pd.notna(row.proxy_size):
                    bits.append(f"{int(row.proxy_size)} px proxy")
                st.markdown(" · ".join(bits))
                st.markdown(
                    f":blue-badge[{row.complete} complete] :gray-badge[{row.pruned} pruned] "
                    f":red-badge[{row.fail} failed] :orange-badge[{row.running} running]"
                )
                if not row.tuner_study:
                    st.caption("not made by `tuner search` (no styletune record): counts only")
                elif not uri and isinstance(row.painting_artifact, str):
                    st.caption(ui.missing_pictures(cfg, ui.study_tables(cfg.storage, row.study)[1].record) or "")
            with scores:
                st.markdown(f"best style **{ui.fmt_score(row.best_style)}** · best content **{ui.fmt_score(row.best_content)}**")
                st.markdown(f"best noise **{ui.fmt_score(row.best_noise)}**")
                pick = f"#{int(row.chosen)} (chosen)" if pd.notna(row.chosen) else "not chosen yet"
                st.caption(f"training pick: {pick} · updated {ui.fmt_time(row.last_update)}")
            with actions:
                if st.button("Open", key=f"open-{row.study}", width="stretch"):
                    ui.open_study(row.study)
                if st.button("Gallery", key=f"gallery-{row.study}", width="stretch"):
                    st.switch_page(ui.PAGES["gallery"], query_params={"study": row.study})


overview()
