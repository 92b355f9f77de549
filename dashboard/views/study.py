"""A study: Pareto front (hover = contact sheet, click = open trial), trials table, history, importance, parallel coordinates."""

from __future__ import annotations

import importlib.util

import streamlit as st

from dashboard import data, figures, pictures, ui
from dashboard.components import hover_preview
from tuner.records import state_counts

cfg = ui.settings()
name = ui.current_study(cfg)
if name is None:
    st.stop()
df, info = ui.study_tables(cfg.storage, name)
cfg = ui.study_settings(cfg, info)  # the study's own artifact folder, or one line saying why its pictures are missing
rec = info.record
base, why = ui.baseline(cfg, name, info)
if base is not None and info.baseline is None:  # computed just now: the default pick may now prefer trials that beat it
    df, info = ui.study_tables(cfg.storage, name)
verdict = data.baseline_verdict(df, base, rec.tradeoff if rec else None) if base is not None else None

head, paint = st.columns([4, 1])
with head:
    st.title(f"Study {name}")
    if rec is not None:
        st.markdown(
            f"painting **{rec.style_name or '?'}** · {len(rec.content_names)} test photo(s) · "
            f"{rec.proxy_size or '?'} px proxy · {rec.steps or '?'} steps · objectives {', '.join(rec.objectives)}"
        )
    else:
        st.warning("This study was not made by `tuner search` (it has no styletune record); images are unavailable.")
    counts = state_counts(df["state"])
    st.markdown(" ".join(f":{c}-badge[{counts[s]} {s.lower()}]" for s, c in
                         (("COMPLETE", "blue"), ("PRUNED", "gray"), ("FAIL", "red"), ("RUNNING", "orange"))))
    if info.training_pick is not None:
        st.markdown(f"training pick: **trial {info.training_pick}** ({info.pick_reason})")
    if verdict and verdict["note"]:
        st.warning(verdict["note"])
with paint:
    ui.show_artifact(cfg, rec.style_artifact if rec else None, caption="painting", missing="")


@st.fragment(run_every=ui.REFRESH_S)
def news(loaded: int) -> None:
    """A quiet line that notices new trials of a running search without redrawing the charts."""
    fresh, _ = ui.study_tables(cfg.storage, name)
    new = int((fresh["state"] == "COMPLETE").sum()) - loaded
    running = int((fresh["state"] == "RUNNING").sum())
    if new > 0:
        st.info(f"{new} more trial(s) finished since this page was drawn.")
        if st.button("Show them", key="refresh-study"):
            st.rerun(scope="app")
    elif running:
        st.caption(f"{running} trial(s) running…")


news(int((df["state"] == "COMPLETE").sum()))

pareto_tab, table_tab, history_tab, importance_tab, parallel_tab = st.tabs(
    ["Pareto front", "Trials", "History", "Importance", "Parallel coordinates"])

with pareto_tab:
    st.caption("Hover a point to see that trial's contact sheet; click it to open the trial.")
    event = st.plotly_chart(figures.pareto_figure(df, chosen=info.chosen, baseline=base.scores if base else None,
                                                  baseline_note=verdict["text"] if verdict else ""),
                            key="pareto", on_select="rerun", selection_mode="points", width="stretch")
    st.caption(f"◆ {verdict['text']}." if verdict else f"Off-the-shelf baseline unavailable: {why}")
    sheets = {int(r.number): ui.thumbnail_uri(cfg.storage, cfg.artifacts, r.sheet, 360)
              for r in df[df["state"] == "COMPLETE"].itertuples() if isinstance(r.sheet, str)}
    hover_preview("pareto", {k: v for k, v in sheets.items() if v}, width=360)
    points = event.selection.points if event and event.selection else []
    number = pictures.point_trial(points[0]) if points else None
    if number is not None:
        ui.open_trial(name, number)

with table_tab:
    networks = sorted({str(n) for n in df["network"].dropna()})
    left, right = st.columns([2, 2])
    picked_nets = left.multiselect("Loss network", networks, default=networks, key="net-filter")
    states = right.multiselect("State", list(data.STATES), default=["COMPLETE"], key="state-filter")
    view = df[df["network"].isin(picked_nets) | (df["network"].isna() & (df["state"] != "COMPLETE"))]
    view = view[view["state"].isin(states)].copy()
    view["beats_baseline"] = view["number"].isin(verdict["beaten_by"]) if verdict else None
    view["sheet_image"] = [ui.thumbnail_uri(cfg.storage, cfg.artifacts, s, 200) for s in view["sheet"]]
    params = [c for c in view.columns if c.startswith("param:")]
    columns = ["sheet_image", "number", "state", "style", "content", "noise", "pareto", "beats_baseline", "chosen",
               "feasible", "network", "content_layer", "style_weight", "tv_weight", "style_scale", "init", "style_layers",
               *params, "duration_s", "completed", "note"]
    sel = st.dataframe(
        view[columns], key="trials-table", hide_index=True, on_select="rerun", selection_mode="single-row",
        row_height=64,
        column_config={
            "sheet_image": st.column_config.ImageColumn("sheet", width="medium"),
            "number": st.column_config.NumberColumn("trial", format="%d"),
            "beats_baseline": st.column_config.CheckboxColumn(
                "beats off-the-shelf", help="better than the off-the-shelf baseline by the judge: lower on both "
                                            "scores (on the one weighted sum in a --tradeoff study)"),
            "style": st.column_config.NumberColumn(format="%.3f"),
            "content": st.column_config.NumberColumn(format="%.3f"),
            "noise": st.column_config.NumberColumn(format="%.3f"),
            "style_weight": st.column_config.NumberColumn(format="%.2e"),
            "tv_weight": st.column_config.NumberColumn(format="%.2e"),
            "style_scale": st.column_config.NumberColumn(format="%.2f"),
            "duration_s": st.column_config.NumberColumn("seconds", format="%.0f"),
            **{p: st.column_config.Column(p.removeprefix("param:")) for p in params},
        },
    )
    st.caption(f"{len(view)} of {len(df)} trials · click a column header to sort · select a row to open the trial")
    rows = sel.selection.rows if sel and sel.selection else []
    if rows:
        ui.open_trial(name, int(view.iloc[rows[0]]["number"]))

with history_tab:
    st.plotly_chart(figures.history_figure(data.history_frame(df)), key="history", width="stretch")

with importance_tab:
    importance_lib = importlib.util.find_spec("sklearn") is not None
    evaluators = ["ped-anova"] + (["fanova", "mdi"] if importance_lib else [])
    evaluator = st.segmented_control("Evaluator", evaluators, default="ped-anova", key="importance-evaluator",
                                     help="Optuna's importance evaluators; fANOVA and MDI need scikit-learn") or "ped-anova"
    imp, note = ui.importance_table(cfg.storage, name, int((df["state"] == "COMPLETE").sum()), evaluator)
    st.plotly_chart(figures.importance_figure(imp, note), key="importance", width="stretch")
    if note:
        st.caption(note)
    elif not importance_lib:
        st.caption("PED-ANOVA (Watanabe et al. 2023): which parameters set the top trials apart; "
                   "install scikit-learn for fANOVA too.")

with parallel_tab:
    st.plotly_chart(figures.parallel_figure(df), key="parallel", width="stretch")
