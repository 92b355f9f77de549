"""The Streamlit app under streamlit.testing.v1.AppTest, on fixture studies made here.

Each test opens the real ``dashboard/app.py`` (navigation, sidebar, pages) pointed at a
temporary SQLite storage through the ``STYLETUNE_*`` variables, then checks what a
person would look for: no exception, the expected tables and charts with the right
content, and the Choose button writing the record ``trainer fit --from-study`` reads.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, pictures
from tests.studyfactory import make_run, make_study
from tuner.reader import CHOSEN_ATTR, load_study, open_storage

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash")
    url = make_study(f"sqlite:///{folder}/studies.db", n_complete=6, n_pruned=1, n_fail=1, n_running=1)
    make_run(folder / "runs", "fit-a", study="fixture", trial=2)
    make_run(folder / "runs", "fit-b", study="fixture", trial=3, partial=True)
    return {"url": url, "folder": folder}


@pytest.fixture
def app(store, monkeypatch):
    monkeypatch.setenv("STYLETUNE_STORAGE", store["url"])
    monkeypatch.delenv("STYLETUNE_RUNS", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list:
    """The Plotly figures on the page, decoded (Plotly sends NumPy arrays as typed base64 blobs)."""
    import plotly.io

    return [plotly.io.from_json(c.proto.spec) for c in at.get("plotly_chart")]


def _array(value) -> np.ndarray:
    """A Plotly array as sent to the browser: a list, or ``{"dtype", "bdata", "shape"}`` (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return arr.reshape([int(x) for x in str(shape).split(",")]) if shape else arr
    return np.asarray(value)


def _trials(store) -> tuple:
    study = load_study(open_storage(store["url"]), "fixture")
    return data.trials_frame(study.get_trials(deepcopy=False)), study


def test_studies_page_lists_the_study_with_counts(app):
    text = " ".join(m.value for m in app.markdown)
    assert "### fixture" in text and "running" in text
    assert "6 complete" in text and "1 pruned" in text and "1 failed" in text and "1 running" in text
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Studies"] == "1" and metrics["Finished trials"] == "6" and metrics["Searches running"] == "1"
    assert app.sidebar.selectbox(key="study_pick").value == "fixture"
    assert len(app.image) == 1, "the painting's thumbnail"
    app.button(key="open-fixture").click().run()
    assert not app.exception and app.title[0].value == "Study fixture"


def test_study_page_charts_and_table(app, store):
    _go(app, "study")
    df, _ = _trials(store)
    done = df[df["state"] == "COMPLETE"]
    charts = _charts(app)
    assert len(charts) == 4  # pareto, history, importance, parallel coordinates
    pareto = charts[0]
    shown = sorted(int(n) for t in pareto.data if t.name in ("Pareto front", "dominated")
                   for n in _array(t.customdata).ravel())
    assert shown == sorted(done["number"].tolist())
    assert any(t.type == "parcoords" for c in charts for t in c.data)
    assert any(t.type == "bar" for c in charts for t in c.data), "importance bars"
    table = app.dataframe[0].value
    assert sorted(table["number"]) == sorted(done["number"]) and {"style", "content", "network"} <= set(table)
    # Filter by loss network.
    tiny = sorted(done.loc[done["network"] == "tiny", "number"])
    app.multiselect(key="net-filter").set_value(["tiny"]).run()
    assert sorted(app.dataframe[0].value["number"]) == tiny
    app.multiselect(key="state-filter").set_value(["COMPLETE", "PRUNED", "FAIL"]).run()
    assert not app.exception, [e.value for e in app.exception]
    states = set(app.dataframe[0].value["state"])
    assert {"PRUNED", "FAIL"} <= states
    hover = [e.proto for e in app.get("bidi_component") if e.proto.component_name == "styletune_hover_preview"]
    assert len(hover) == 1, "the hover-preview component is mounted next to the Pareto chart"
    payload = json.loads(hover[0].json)
    assert payload["chart_key"] == "pareto"
    assert sorted(int(k) for k in payload["images"]) == sorted(done["number"]), "one contact sheet per point"
    assert all(v.startswith("data:image/jpeg;base64,") for v in payload["images"].values())


def test_choose_button_writes_the_record(store, monkeypatch, tmp_path):
    url = make_study(f"sqlite:///{tmp_path}/choose.db", n_complete=3, n_pruned=1, n_fail=0)
    monkeypatch.setenv("STYLETUNE_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.query_params["trial"] = "1"
    _go(at, "trial")
    assert at.selectbox(key="trial_pick").value == 1
    assert "chosen" not in " ".join(m.value for m in at.markdown)
    at.button(key="choose").click().run()
    assert not at.exception
    assert load_study(open_storage(url), "fixture").user_attrs[CHOSEN_ATTR] == 1
    assert any("Trial 1 is now the study's pick" in s.value for s in at.success)
    assert at.button(key="choose").disabled, "already chosen"
    assert any("trainer fit --from-study fixture" in c.value for c in at.code)
    # A pruned trial cannot be chosen.
    at.selectbox(key="trial_pick").set_value(3).run()
    assert at.button(key="choose").disabled
    assert load_study(open_storage(url), "fixture").user_attrs[CHOSEN_ATTR] == 1


def test_trial_page_shows_sheet_results_and_config(app, store):
    df, _ = _trials(store)
    number = int(df[df["state"] == "COMPLETE"]["number"].iloc[0])
    app.query_params["trial"] = str(number)
    _go(app, "trial")
    assert len(app.image) == 3, "contact sheet + one result per test photo"
    cfg = json.loads(next(c.value for c in app.code if c.language == "json"))
    assert cfg["network"] == df.loc[df["number"] == number, "network"].item()
    assert {m.label for m in app.metric} == {"style", "content", "noise"}
    assert len(app.get("plotly_chart")) == 1, "the trial's loss curve"


def test_gallery_grid_and_comparison(app, store):
    _go(app, "gallery")
    df, study = _trials(store)
    info = data.study_info(study)
    expected = pictures.default_gallery_trials(df, info.training_pick, 4)
    assert app.multiselect(key="gallery-trials").value == expected
    # 2 photos x (photo + painting + 4 trials) in the grid, then 2 full-size results to compare.
    assert len(app.image) == 2 * (2 + len(expected)) + 2
    assert len(app.get("bidi_component")) == 1, "the before/after slider for exactly two trials"
    app.multiselect(key="compare-trials").set_value(expected[:3]).run()
    assert not app.exception and len(app.get("bidi_component")) == 0


def test_runs_page_reads_finished_and_partial_runs(app, store, monkeypatch):
    monkeypatch.setenv("STYLETUNE_RUNS", str(store["folder"] / "runs"))
    _go(app, "runs")
    assert set(app.dataframe[0].value["run"]) == {"fit-a", "fit-b"}
    app.selectbox(key="run_pick").set_value("fit-a").run()
    assert not app.exception
    titles = [c.layout.title.text for c in _charts(app)]
    assert titles[0] == "Training losses" and any("Judge scores" in t for t in titles)
    # 1 large preview + a strip of 3, then photo, Gatys result and trained result for each of 2 photos.
    assert len(app.image) == 1 + 3 + 3 * 2, "previews, and photo / Gatys / trained for each photo"
    app.selectbox(key="run_pick").set_value("fit-b").run()
    assert not app.exception
    assert any("unreadable line" in c.value for c in app.caption)
    assert any("appear when training finishes" in c.value for c in app.caption)


def test_missing_database_is_explained_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLETUNE_STORAGE", f"sqlite:///{tmp_path}/not-yet.db")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "No study database" in at.info[0].value
    monkeypatch.setenv("STYLETUNE_STORAGE", "nonsense")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and "not a storage URL" in at.error[0].value


def test_empty_storage_says_how_to_start(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/empty.db"
    open_storage(url, create=True)
    monkeypatch.setenv("STYLETUNE_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and "tuner search" in at.info[0].value
    _go(at, "study")
    assert "tuner search" in at.info[0].value


def test_cli_dashboard_refuses_bad_input(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "tuner.cli", "dashboard", *args], capture_output=True, text=True,
                              timeout=120)

    bad = run("--storage", "nonsense")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a storage URL" in bad.stderr
    nodir = run("--storage", f"sqlite:///{tmp_path}/nope/studies.db")
    assert nodir.returncode == 2 and "no such folder" in nodir.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        url = make_study(f"sqlite:///{tmp_path}/s.db", n_complete=1, n_pruned=0, n_fail=0)
        taken = run("--storage", url, "--port", str(port))
    assert taken.returncode == 2 and "choose another --port" in taken.stderr and "Traceback" not in taken.stderr


@pytest.fixture(scope="module")
def based(tmp_path_factory):
    """A study that already holds its off-the-shelf baseline (as after its first view)."""
    folder = tmp_path_factory.mktemp("based")
    return make_study(f"sqlite:///{folder}/studies.db", n_complete=4, n_pruned=0, n_fail=0, baseline=True)


def _open(url: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("STYLETUNE_STORAGE", url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def test_pareto_chart_draws_the_baseline_and_says_how_many_trials_beat_it(based, monkeypatch):
    at = _go(_open(based, monkeypatch), "study")
    study = load_study(open_storage(based), "fixture")
    info = data.study_info(study)
    pareto = _charts(at)[0]
    (point,) = [t for t in pareto.data if "off-the-shelf" in (t.name or "")]
    assert list(_array(point.x)) == [info.baseline.scores["style"]]
    assert list(_array(point.y)) == [info.baseline.scores["content"]]
    verdict = data.baseline_verdict(data.trials_frame(study.get_trials(deepcopy=False)), info.baseline)
    assert any(verdict["text"] in c.value for c in at.caption)


def test_gallery_shows_the_baseline_beside_the_trials_and_compares_it(based, monkeypatch):
    at = _go(_open(based, monkeypatch), "gallery")
    picked = at.multiselect(key="gallery-trials").value
    # 2 photos x (photo + painting + off-the-shelf + trials), then 2 full-size results to compare.
    assert len(at.image) == 2 * (3 + len(picked)) + 2
    captions = [c for img in at.image for c in ([img.proto.imgs[0].caption] if img.proto.imgs else [])]
    assert captions.count("off-the-shelf") == 2
    at.multiselect(key="compare-trials").set_value([data.BASELINE, picked[0]]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("bidi_component")) == 1, "the before/after slider: baseline against a trial"


def test_a_study_whose_judge_cannot_be_rebuilt_says_why_there_is_no_baseline(app):
    _go(app, "study")
    assert any("Off-the-shelf baseline unavailable" in c.value and "fixture-pixels" in c.value for c in app.caption)
    _go(app, "gallery")
    assert any("Off-the-shelf baseline unavailable" in c.value for c in app.caption)


@pytest.mark.parametrize("beaten", [False, True])
def test_study_page_warns_when_no_trial_beats_the_baseline_and_marks_those_that_do(tmp_path, monkeypatch, beaten):
    from tuner.baseline import BASELINE_ATTR, Baseline

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=3, n_pruned=0, n_fail=0)
    score = 9.0 if beaten else 0.001  # every trial beats it, or none can
    base = Baseline(scores={"style": score, "content": score, "noise": 0.1}, per_photo={}, artifacts={},
                    feasible=True, side=384, seconds=0.1)
    load_study(open_storage(url), "fixture").set_user_attr(BASELINE_ATTR, base.to_dict())
    at = _go(_open(url, monkeypatch), "study")
    warnings = [w.value for w in at.warning if "off-the-shelf baseline" in w.value]
    table = at.dataframe(key="trials-table").value
    if beaten:
        assert warnings == []
        assert table["beats_baseline"].tolist() == [True] * 3
    else:
        assert warnings == ["no trial beats the off-the-shelf baseline (style 0.001, content 0.001) on both scores; "
                            "for this painting `tuner preview --style PAINTING --content PHOTO -o out.png` "
                            "may serve you better"]
        assert table["beats_baseline"].tolist() == [False] * 3


def test_a_study_searched_with_its_own_artifact_folder_shows_its_pictures(monkeypatch, tmp_path):
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0,
                     artifacts=tmp_path / "elsewhere")
    at = _open(url, monkeypatch)
    assert len(at.image) == 1 and "no painting" not in [c.value for c in at.caption], "the painting's thumbnail"
    _go(at, "gallery")
    assert not at.warning and "no image" not in " ".join(c.value for c in at.caption)
    assert len(at.image) >= 4, "photo, painting and the trials' results"


def test_pictures_that_cannot_be_found_are_explained_in_one_line(monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0, artifacts=elsewhere)
    elsewhere.rename(tmp_path / "moved")
    hint = (f"pictures not found in {elsewhere} (recorded by the study) or {tmp_path / 'artifacts'} "
            "(beside the database); start the dashboard with --artifacts DIR")
    at = _open(url, monkeypatch)
    captions = [c.value for c in at.caption]
    assert "no painting" in captions and hint in captions, captions
    for page in ("study", "gallery", "trial"):
        _go(at, page)
        assert [w.value for w in at.warning] == [hint], page


def test_the_gallery_shows_a_network_study_at_its_view_size_and_says_so(monkeypatch, tmp_path):
    from dashboard.data import study_frame
    from dashboard.pictures import gallery_rows
    from tuner.reader import load_study, open_storage, read_record

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0, view_size=96)
    study = load_study(open_storage(url), "fixture")
    record = read_record(study)
    rows = gallery_rows(record, study_frame(study), [0, 1])
    assert all(r["photo_artifact"] in record.content_view_artifacts.values() for r in rows)
    at = _go(_open(url, monkeypatch), "gallery")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Pictures at 96 px") and "trainer stylize" in c for c in captions), captions
    assert not at.warning and "no image" not in " ".join(captions)
    assert len(at.image) >= 4, "photo, painting and the trials' view-size pictures"


def test_the_gallery_of_a_gatys_study_says_its_pictures_are_at_the_proxy_size(monkeypatch, tmp_path):
    from tuner.reader import load_study, open_storage, read_record

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0)
    assert read_record(load_study(open_storage(url), "fixture")).proxy_kind == "gatys"
    at = _go(_open(url, monkeypatch), "gallery")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Pictures at the proxy size (48 px)") and "Gatys" in c for c in captions), captions
