"""styletune dashboard: look at every trial, pick one to train, follow the training.

Usage::

    tuner dashboard                                   # default storage, http://127.0.0.1:8501
    tuner dashboard --storage sqlite:///studies/studies.db --port 8600
    streamlit run dashboard/app.py -- --storage sqlite:///studies/studies.db --runs studies/runs

This file only sets up the page and the navigation; each page is a short script in
``views/`` that lays out what :mod:`dashboard.data` computes and :mod:`dashboard.figures`
draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="styletune", page_icon=":material/palette:", layout="wide")

cfg = ui.settings()
st.session_state["settings"] = cfg
pages = st.navigation([
    st.Page(ui.PAGES["studies"], title="Studies", icon=":material/folder_open:", default=True),
    st.Page(ui.PAGES["study"], title="Study", icon=":material/scatter_plot:"),
    st.Page(ui.PAGES["trial"], title="Trial", icon=":material/image_search:"),
    st.Page(ui.PAGES["gallery"], title="Gallery", icon=":material/photo_library:"),
    st.Page(ui.PAGES["runs"], title="Training runs", icon=":material/model_training:"),
])

ui.storage_or_stop(cfg.storage)
names = ui.studies_table(cfg.storage)["study"].tolist()
ui.study_picker(names)
st.sidebar.caption(f"storage `{cfg.storage}`")
pages.run()
