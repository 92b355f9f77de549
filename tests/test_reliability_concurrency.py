"""Three ``tuner search`` processes on one study while the dashboard reads it: nothing locked, nothing twice.

The scenario of a user who starts a search in three terminals (or on three machines
against PostgreSQL) and watches it in the dashboard. Three separate CLI processes are
started at the same moment on a *new* study, so they also race to create the database,
the study, its record and the queue of published recipes. Meanwhile this test process
reads the storage over and over through the dashboard's data layer
(:mod:`dashboard.data`), as the Streamlit app does on every refresh, and opens the
trials' images.

Checked: every process exits 0, no "database is locked" (or any traceback) reaches a
user, the dashboard never raised, the study ends with exactly ``--trials`` finished
trials (plus at most one per extra worker that started as the last one finished),
trial numbers are unique, each published recipe was queued and run once, no two
finished trials share parameters, and more than one process did the work.

The PostgreSQL variant needs ``STYLETUNE_TEST_POSTGRES_URL`` (``scripts/postgres_test.sh``
installs a throwaway server from Debian's packages and sets it); without it the test is
skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
WORKERS = 3
TARGET = 7
POSTGRES_ENV = "STYLETUNE_TEST_POSTGRES_URL"

from tests.test_tuner_search import _files  # noqa: E402  (the same painting and photos as the search tests)

optuna.logging.set_verbosity(optuna.logging.ERROR)




def _command(painting: Path, photos: Path, url: str, study: str, artifacts: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "tuner.cli", "search", "--style", str(painting), "--content", str(photos),
           "--size", "32", "--steps", "6", "--trials", str(TARGET), "--networks", "tiny", "--judge-network", "tiny",
           "--noise-limit", "10", "--seed", "1", "--heartbeat", "2", "--proxy", "gatys", "--study", study, "-q",
           "--storage", url]  # concurrency is the subject, not the proxy: the cheaper one
    return cmd + (["--artifacts", str(artifacts)] if artifacts else [])


def _read_like_the_dashboard(url: str, study_name: str, artifacts: Path | None, seen: dict) -> None:
    """One dashboard refresh: studies overview, the study's trials table and pick, and a trial's images."""
    from dashboard import data
    from tuner import reader

    storage = data.reading_storage(url)
    studies = data.studies_frame(storage)
    if study_name not in set(studies["study"]):
        return
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    df = data.trials_frame(trials)
    data.study_info(study)
    finished = int(df["state"].isin(["COMPLETE", "PRUNED"]).sum())
    seen["max_finished"] = max(seen.get("max_finished", 0), finished)
    seen["refreshes"] = seen.get("refreshes", 0) + 1
    sheets = [s for s in df.loc[df["state"] == "COMPLETE", "sheet"] if isinstance(s, str)]
    if sheets:
        img = reader.read_image_artifact(url, sheets[-1], artifacts)
        assert img.ndim == 3 and img.shape[2] == 3
        seen["images"] = seen.get("images", 0) + 1


def _run_three_workers(tmp_path: Path, url: str, study: str, artifacts: Path | None = None) -> None:
    painting, photos = _files(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = _command(painting, photos, url, study, artifacts)
    logs = [(tmp_path / f"w{i}.out", tmp_path / f"w{i}.err") for i in range(WORKERS)]
    procs = []
    for out, err in logs:
        with open(out, "w") as o, open(err, "w") as e:
            procs.append(subprocess.Popen(cmd, cwd=tmp_path, stdout=o, stderr=e, env=env))
    seen: dict = {}
    reader_errors: list[str] = []
    deadline = time.monotonic() + 420
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            try:
                _read_like_the_dashboard(url, study, artifacts, seen)
            except Exception as exc:  # noqa: BLE001 - any error the dashboard would show is a failure
                text = f"{exc.__class__.__name__}: {exc}"
                if "no study database here" not in text:  # before the first worker created the file
                    reader_errors.append(text.splitlines()[0])
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    stderrs = [err.read_text(errors="replace") for _, err in logs]
    for p, text in zip(procs, stderrs, strict=True):
        assert p.returncode == 0, f"a worker exited {p.returncode}: {text[-1500:]}"
    for text in stderrs:
        assert "database is locked" not in text.lower() and "Traceback" not in text, text[-1500:]
    assert not reader_errors, f"the dashboard's reads failed {len(reader_errors)} time(s): {reader_errors[:3]}"
    assert seen.get("refreshes", 0) >= 5, f"the dashboard barely read during the search: {seen}"

    from nst.config import RECIPES
    from tuner import reader

    study_obj = optuna.load_study(study_name=study, storage=reader.open_storage(url))
    trials = study_obj.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # Each worker checks the count before it starts a trial, so when two finish at the same
    # moment both may start one more: at most WORKERS - 1 extra, never fewer than asked.
    assert TARGET <= len(finished) <= TARGET + WORKERS - 1, f"states {dict(states)}"
    assert states["RUNNING"] == 0, f"states {dict(states)}"
    assert seen["max_finished"] <= len(finished)  # the dashboard never counted more than there are
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), f"trial numbers repeated: {sorted(numbers)}"
    recipes = Counter(t.user_attrs.get("recipe") for t in trials if t.user_attrs.get("recipe"))
    assert recipes == Counter(dict.fromkeys(RECIPES, 1)), f"recipe trials queued/run: {dict(recipes)}"
    params = Counter(tuple(sorted(t.params.items())) for t in finished)
    assert max(params.values()) == 1, "two finished trials have the same parameters"
    pids = {t.user_attrs.get("worker_pid") for t in finished}
    assert len(pids) >= 2, f"only one process did the work: {pids}"
    for t in finished:
        if t.state.name == "COMPLETE":
            assert reader.read_image_artifact(url, t.user_attrs["artifacts"]["sheet"], artifacts).ndim == 3


_OPEN_AT = """
import sys, time
from tuner import reader
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
try:
    reader.open_storage(url, create=True)
    print("ok")
except Exception as exc:
    print(type(exc).__name__, str(exc).splitlines()[0])
"""


def _open_all_at_once(url: str, n: int = 6) -> list[str]:
    """``n`` processes open ``url`` at the same instant (after their imports); what each printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.time() + 8  # imports take a few seconds on a busy machine
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, url, str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env) for _ in range(n)]
    return [p.communicate(timeout=120)[0].strip() for p in procs]


def test_processes_opening_a_new_sqlite_database_at_once_all_succeed(tmp_path):
    # Every process runs Optuna's CREATE TABLEs; unguarded, some fail with "table ... already
    # exists" or a duplicate alembic_version row (seen in 3 of 3 tries with six processes).
    outcomes = _open_all_at_once(f"sqlite:///{tmp_path / 'new.db'}")
    assert outcomes == ["ok"] * len(outcomes), outcomes


@pytest.mark.slow
def test_three_processes_and_the_dashboard_share_one_sqlite_study(tmp_path):
    db = tmp_path / "studies" / "studies.db"
    url = f"sqlite:///{db}"
    _run_three_workers(tmp_path, url, "shared")
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against; run scripts/postgres_test.sh "
                    "(installs Debian's postgresql and starts a throwaway server on 127.0.0.1)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is missing: pip install 'psycopg[binary]'")
    return url


def _new_postgres_database(url: str) -> str:
    """A new, empty database on the same server (so Optuna's tables are created by the test)."""
    import sqlalchemy

    name = f"st_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_processes_opening_a_new_postgresql_database_at_once_all_succeed():
    # Unguarded, the losers fail with: duplicate key value violates unique constraint "pg_type_typname_nsp_index".
    outcomes = _open_all_at_once(_new_postgres_database(_postgres_url()))
    assert outcomes == ["ok"] * len(outcomes), outcomes


@pytest.mark.postgres
@pytest.mark.slow
def test_three_processes_and_the_dashboard_share_one_postgresql_study(tmp_path):
    url = _new_postgres_database(_postgres_url())
    _run_three_workers(tmp_path, url, "shared", artifacts=tmp_path / "artifacts")
