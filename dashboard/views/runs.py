"""Training runs: loss curves, previews over time, and the trained network beside the trial (its proxy render) it came from."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import figures, training, ui
from tuner.reader import StorageError, load_study, read_record, trial_record

cfg = ui.settings()
st.title("Training runs")
runs_dir = cfg.runs_dir
live = st.toggle("Live", value=True, help=f"re-read the run folder every {ui.REFRESH_S} s while it trains")

table = training.list_runs(runs_dir)
if table.empty:
    st.info(f"No training runs in `{runs_dir}` yet. Train the picked trial with `trainer fit --from-study best`.")
    st.stop()

st.dataframe(table, hide_index=True, key="runs-table",
             column_config={"modified": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})
wanted = st.query_params.get("run")
names = table["run"].tolist()
if wanted in names and st.session_state.get("run_pick") != wanted:
    st.session_state["run_pick"] = wanted
run_name = st.selectbox("Run", names, key="run_pick",
                        on_change=lambda: st.query_params.update(run=st.session_state["run_pick"]))
st.query_params["run"] = run_name


@st.fragment(run_every=ui.REFRESH_S if live else None)
def run_view(folder) -> None:
    run = training.load_run(folder)
    src = run.source
    bits = [f"**{run.name}**"]
    if src["study"] is not None:
        bits.append(f"from study **{src['study']}** trial **{src['trial']}**")
    if run.last_step is not None:
        bits.append(f"step {run.last_step}")
    bits.append("finished" if run.finished else "training, or stopped before the end")
    if "img_per_s" in run.metrics and run.metrics["img_per_s"].notna().any():
        bits.append(f"{run.metrics['img_per_s'].tail(50).median():.2f} images/s")
    st.markdown(" · ".join(bits))
    for problem in run.problems:
        st.caption(f"note: {problem}")

    if run.loss_columns:
        main = [c for c in run.loss_columns if ":" not in c]
        left, right = st.columns([3, 1])
        shown = left.multiselect("Curves", run.loss_columns, default=main or run.loss_columns, key="run-curves",
                                 help="style:<layer> are the per-layer style terms")
        smooth = right.select_slider("Smoothing (steps)", [1, 5, 10, 25, 50, 100], value=10, key="run-smooth")
    else:
        shown, smooth = [], 1
    st.plotly_chart(figures.training_figure(run.metrics, shown, smooth), key="run-losses", width="stretch")

    if run.previews:
        st.subheader("Previews over time")
        steps = [s for s, _ in run.previews]
        step = st.select_slider("Step", steps, value=steps[-1], key="preview-step") if len(steps) > 1 else steps[0]
        path = dict(run.previews)[step]
        st.image(str(path), caption=f"step {step}: test photos (top), the network's results (bottom)")
        if len(run.previews) > 1:
            strip = run.previews[-8:]
            cols = st.columns(len(strip))
            for col, (s, p) in zip(cols, strip, strict=True):
                col.image(str(p), caption=f"step {s}")

    st.subheader("Trained network vs the trial it learned from")
    if run.scores:
        st.plotly_chart(figures.scores_figure({("trial (proxy)" if k == "gatys" else k): v for k, v in run.scores.items()}), key="run-scores", width="stretch")
        st.caption(f"means over the test photos; judge {run.judge or 'as recorded by the study'}; "
                   "the trial's scores are its proxy render's, at proxy size")
    elif run.note:
        st.caption(run.note)
    else:
        st.caption("The judge scores appear when training finishes.")
    gatys, artifacts = _gatys_results(src)
    photos = sorted(set(run.results) | set(gatys))
    if not photos:
        st.caption("No final results yet.")
    for photo in photos:
        original, left, right = st.columns(3)
        with original:
            if photo in run.photos:
                st.image(str(run.photos[photo]), caption=f"{photo}: photo", width="stretch")
        with left:
            raw = ui.artifact(cfg.storage, artifacts, gatys.get(photo))
            if raw:
                st.image(raw, caption=f"trial {src['trial']} (its proxy, proxy size)", width="stretch")
            else:
                st.caption(f"{photo}: the trial's proxy render is not in this storage")
        with right:
            if photo in run.results:
                score = run.per_photo.get(photo, {})
                detail = " · ".join(f"{k} {score[k]:.3f}" for k in ("style", "content", "noise") if k in score)
                st.image(str(run.results[photo]), caption="trained network" + (f" ({detail})" if detail else ""),
                         width="stretch")
            else:
                st.caption(f"{photo}: trained network: not written yet")
    if run.config:
        with st.expander("Configuration"):
            st.code(json.dumps(run.config, indent=2), language="json")


def _gatys_results(src: dict) -> tuple[dict[str, str], str | None]:
    """The source trial's per-photo artifacts, if that study lives in the storage we read, and their folder."""
    if src["study"] is None or src["trial"] is None:
        return {}, cfg.artifacts
    try:
        study = load_study(ui.storage(cfg.storage), str(src["study"]))
        folder = cfg.study_artifacts(read_record(study).artifact_folder)
        return trial_record(study, src["trial"]).photo_artifacts, folder
    except StorageError:
        return {}, cfg.artifacts


run_view(runs_dir / run_name)
