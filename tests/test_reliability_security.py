"""Security (issue #6): loopback by default, only artifact-store files served, no unsafe loading, no name escapes.

* The dashboard listens on 127.0.0.1 unless told otherwise, both through ``tuner
  dashboard`` and through a plain ``streamlit run dashboard/app.py`` (the app's own
  ``dashboard/.streamlit/config.toml``): checked on the real listening socket.
* Images come only from the storage's artifact store: an artifact id is matched against
  ``[A-Za-z0-9-]{8,64}`` before Optuna's store (which itself refuses absolute paths and
  ``..``) turns it into a path. A study record or trial whose artifact ids point elsewhere
  (someone edited the database) shows no image, and ``trainer fit --from-study`` refuses it.
  The only thing a request chooses (``?study=``, ``?trial=``, ``?run=``) is picked from
  the names the dashboard listed itself.
* Nothing unpickles or runs code from a file: checkpoints are ``.npz`` read with
  ``allow_pickle=False``; ``.keras`` files load with ``safe_mode=True``. Both are tried
  with files that would run code (and the test shows that the unsafe way would).
* Study, run and photo names cannot leave their folder.

    pytest -q tests/test_reliability_security.py -rA
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nst.images import save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo
from tests.studyfactory import make_run, make_study
from tuner.reader import StorageError, check_name, read_artifact, resolve, safe_name

optuna.logging.set_verbosity(optuna.logging.ERROR)
REPO = Path(__file__).resolve().parents[1]
APP = REPO / "dashboard" / "app.py"
PRODUCT = [REPO / d for d in ("nst", "tuner", "trainer", "dashboard")]


# -- the dashboard listens on this machine only -------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port``, from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            addr, hex_port = fields[1].split(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            if v6:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only used to pick the interface
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _serve_and_look(cmd: list[str], port: int, cwd: Path) -> set[str]:
    """Start a dashboard, wait until it listens on ``port``, return where it listens, then stop it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: streamlit is a grandchild
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            addresses = listening_addresses(port)
            if addresses:
                outward = outward_address()
                if outward is not None:  # and nobody else can reach it
                    with socket.socket() as probe, pytest.raises(OSError):
                        probe.settimeout(3)
                        probe.connect((outward, port))
                return addresses
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited early: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.3)
        pytest.fail("the dashboard did not start listening within 90 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    raise AssertionError("unreachable")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux's /proc/net/tcp")
def test_tuner_dashboard_listens_on_loopback_only_by_default(tmp_path):
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    port = free_port()
    exe = Path(sys.executable).with_name("tuner")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tuner.cli"]
    assert _serve_and_look([*cmd, "dashboard", "--storage", url, "--port", str(port)], port, tmp_path) == {"127.0.0.1"}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux's /proc/net/tcp")
def test_plain_streamlit_run_of_the_app_also_listens_on_loopback_only(tmp_path):
    """Without the app's own config.toml Streamlit listens on every interface ("::"); run from another folder."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.headless", "true",
           "--", "--storage", f"sqlite:///{tmp_path}/studies.db"]
    assert _serve_and_look(cmd, port, tmp_path) == {"127.0.0.1"}


def test_dashboard_host_flag_is_passed_to_streamlit_and_defaults_to_loopback(tmp_path, monkeypatch):
    """The exact command ``tuner dashboard`` starts (without starting it)."""
    from tuner.cli import main

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    started: list[list[str]] = []

    def fake_exec(path: str, argv: list[str]) -> None:
        started.append(argv)
        raise SystemExit(0)  # execv does not return either

    monkeypatch.setattr(os, "execv", fake_exec)
    for extra in ([], ["--host", "0.0.0.0"]):
        with pytest.raises(SystemExit):
            main(["dashboard", "--storage", url, "--port", str(free_port()), *extra])
    default, explicit = started
    assert default[default.index("--server.address") + 1] == "127.0.0.1"
    assert explicit[explicit.index("--server.address") + 1] == "0.0.0.0"


# -- only files of the artifact store are served ----------------------------------------------------------


CRAFTED_IDS = ["../secret.png", "../../secret.png", "/etc/passwd", "artifacts/../../secret.png", "..", ".",
               "..%2fsecret.png", "a" * 8 + "/../../secret.png", "secret.png", "", "x" * 65, "0123456789\n",
               "C:\\secret.png", "\x00" * 10]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """A storage whose study record and trial point their artifact ids at a PNG outside the artifact store."""
    tmp_path = tmp_path_factory.mktemp("crafted")
    studies = tmp_path / "studies"
    url = make_study(f"sqlite:///{studies}/studies.db", "honest", n_complete=2, n_pruned=0, n_fail=0)
    secret = save_image(studies / "secret.png", synthetic_photo(32, seed=9))  # valid PNG, one '..' from artifacts/
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name="crafted", storage=storage, directions=["minimize", "minimize"])
    honest = optuna.load_study(study_name="honest", storage=storage).user_attrs["styletune"]
    record = {**honest, "style_artifact": "../secret.png",
              "content_artifacts": {"photo0": str(secret), "photo1": "../../studies/secret.png"}}
    study.set_user_attr("styletune", record)
    trial = study.ask()
    trial.set_user_attr("style_config", TINY_CONFIG.to_dict())
    trial.set_user_attr("scores", {"style": 0.4, "content": 0.2, "noise": 0.1})
    trial.set_user_attr("loss_curve", [3.0, 2.0, 1.0])
    trial.set_user_attr("artifacts", {"sheet": "../secret.png", "photo0": str(secret), "photo1": "../secret.png"})
    study.tell(trial, [0.4, 0.2])
    return {"url": url, "secret": secret, "folder": tmp_path}


@pytest.mark.parametrize("artifact_id", CRAFTED_IDS, ids=repr)
def test_read_artifact_refuses_anything_but_an_artifact_id(crafted, artifact_id):
    with pytest.raises(StorageError, match="is not an artifact id"):
        read_artifact(crafted["url"], artifact_id)


def test_a_well_formed_id_that_is_not_in_the_store_is_missing_not_looked_up_elsewhere(crafted):
    (crafted["folder"] / "studies" / "0123456789abcdef").write_bytes(b"beside the store, not in it")
    with pytest.raises(StorageError, match="is missing from"):
        read_artifact(crafted["url"], "0123456789abcdef")


def test_dashboard_cache_layer_returns_nothing_for_crafted_ids(crafted):
    from dashboard import ui

    for artifact_id in ["../secret.png", str(crafted["secret"]), "../../studies/secret.png"]:
        assert ui.artifact(crafted["url"], None, artifact_id) is None


def test_dashboard_pages_show_no_image_from_outside_the_store(crafted, monkeypatch):
    """The crafted study on the Trial and Gallery pages: every image slot is empty; the honest study shows its images."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("STYLETUNE_STORAGE", crafted["url"])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["study"] = "crafted"
    at.run()
    assert not at.exception, at.exception
    for page in ("trial", "gallery", "study"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.sidebar.selectbox(key="study_pick").value == "crafted"
        assert len(at.image) == 0, f"{page}: an image was read from outside the artifact store"
    at.sidebar.selectbox(key="study_pick").set_value("honest").run()
    at.switch_page("views/trial.py").run()
    assert len(at.image) == 3, "the honest study's sheet and results are shown (the check above can fail)"


def test_request_parameters_only_pick_from_what_the_dashboard_listed(crafted, monkeypatch, tmp_path):
    """``?study=``, ``?trial=`` and ``?run=`` with paths in them select nothing outside the storage or runs folder."""
    from streamlit.testing.v1 import AppTest

    runs = tmp_path / "runs"
    make_run(runs, "legit", study="honest", trial=0)
    make_run(tmp_path, "outside", study="honest", trial=0)  # a run folder beside runs/, reachable as ../outside
    monkeypatch.setenv("STYLETUNE_STORAGE", crafted["url"])
    monkeypatch.setenv("STYLETUNE_RUNS", str(runs))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"study": "../../studies", "trial": "../1", "run": "../outside"})
    at.run()
    at.switch_page("views/trial.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="study_pick").value in {"honest", "crafted"}
    at.query_params["run"] = "../outside"
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="run_pick").value == "legit"
    assert set(at.dataframe[0].value["run"]) == {"legit"}


def test_trainer_refuses_a_study_whose_painting_id_points_outside_the_store(crafted, tmp_path, capsys):
    from trainer.cli import main

    with pytest.raises(StorageError, match="is not an artifact id"):
        resolve("crafted", crafted["url"])
    code = main(["fit", "--from-study", "crafted", "--storage", crafted["url"], "--data", str(tmp_path),
                 "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'../secret.png' is not an artifact id" in err
    assert not (tmp_path / "runs").exists()


# -- nothing is unpickled, no model file runs code --------------------------------------------------------


class _Trap:
    """Unpickling this creates ``path``: the harmless stand-in for code a malicious file would run."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _malicious_run(runs: Path, marker: Path) -> Path:
    """A run folder whose newest checkpoint is an .npz holding a pickled object."""
    run = runs / "evil"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"version": 1, "name": "evil", "network": {"arch": "johnson", "width": 0.125},
                                              "settings": {"size": 32}}))
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(str(marker))
    np.savez(run / "checkpoints" / "step_000001.npz", model_0000=trap, step=np.asarray(1))
    return run


def test_a_pickled_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys):
    from trainer.cli import main
    from trainer.runs import RunError, RunFolder

    marker = tmp_path / "code-ran"
    run = _malicious_run(tmp_path / "runs", marker)
    with pytest.raises(RunError, match="checkpoint unreadable"):
        RunFolder(run).load_checkpoint()
    photo = save_image(tmp_path / "photo.png", synthetic_photo(32))
    code = main(["stylize", "evil", str(photo), "-o", str(tmp_path / "out.png"), "--runs-dir", str(tmp_path / "runs"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "checkpoint unreadable" in err
    assert not marker.exists() and not (tmp_path / "out.png").exists()
    # The file really is dangerous: loading it the unsafe way runs its code.
    with np.load(run / "checkpoints" / "step_000001.npz", allow_pickle=True) as data:
        data["model_0000"]
    assert marker.exists()


def test_a_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    from trainer.export import ExportError, load_keras

    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Lambda(lambda x: x * 2.0)(inp))
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(ExportError, match="cannot load safely.*[Ll]ambda"):
        load_keras(path)
    # The unsafe way would accept it (and with it whatever code the lambda holds).
    assert keras.saving.load_model(path, safe_mode=False, compile=False) is not None


UNSAFE = [
    (re.compile(r"\b(c?pickle|dill|cloudpickle|joblib|marshal|shelve)\.(load|loads|Unpickler)\b"), "unpickling"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"safe_mode\s*=\s*False|enable_unsafe_deserialization"), "Keras unsafe deserialization"),
    (re.compile(r"\btorch\.load\("), "torch.load"),
    (re.compile(r"\byaml\.(load|unsafe_load)\("), "yaml.load"),
]


def _calls_named(tree: ast.AST, names: set[str]) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Attribute) and n.func.attr in names) or (isinstance(n.func, ast.Name) and n.func.id in names))]


def test_product_code_has_no_unsafe_loader():
    """A guard for the future: no unpickling, no unsafe Keras or NumPy loading, no eval/exec in nst, tuner, trainer, dashboard."""
    problems = []
    files = [p for d in PRODUCT for p in d.rglob("*.py")]
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern, what in UNSAFE:
            for m in pattern.finditer(text):
                problems.append(f"{path.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}: {what}")
        tree = ast.parse(text)
        for call in _calls_named(tree, {"eval", "exec"}):
            problems.append(f"{path.relative_to(REPO)}:{call.lineno}: eval/exec")
        for call in _calls_named(tree, {"load_model"}):
            safe = any(k.arg == "safe_mode" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in call.keywords)
            if not safe:
                problems.append(f"{path.relative_to(REPO)}:{call.lineno}: load_model without safe_mode=True")
        for call in _calls_named(tree, {"load"}):
            func = call.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np":
                pickle_kw = [k for k in call.keywords if k.arg == "allow_pickle"]
                if not pickle_kw or getattr(pickle_kw[0].value, "value", True) is not False:
                    problems.append(f"{path.relative_to(REPO)}:{call.lineno}: np.load without allow_pickle=False")
    assert problems == []


# -- names cannot leave their folder ----------------------------------------------------------------------


ESCAPES = ["../x", "../../etc", "/abs", "/abs/x", "a/b", "a\\b", "..", ".", ".hidden", "-rf", "x/../../y", "x..y",
           "name\n", "", " ", "x" * 101, "été"]


@pytest.mark.parametrize("name", ESCAPES, ids=repr)
def test_unsafe_names_are_refused(name):
    with pytest.raises(StorageError, match="is not allowed"):
        check_name(name)


@pytest.mark.parametrize("stem", ["../../etc/passwd", "..", "/abs/x", "a\\..\\b", "été à Giverny", "日本の絵",
                                  ".hidden", "-rf", "x" * 300, "con:stream", "a..b"])
def test_names_made_from_file_names_are_always_safe(stem):
    name = safe_name(stem)
    assert check_name(name) == name and "/" not in name and "\\" not in name and ".." not in name


@pytest.mark.parametrize("flag, value", [("--study", "../x"), ("--study", "/abs"), ("--study", "a/b"),
                                         ("--study", ".."), ("--study", "x/../../y")])
def test_tuner_study_names_cannot_escape(tmp_path, capsys, monkeypatch, flag, value):
    from tuner.cli import main

    monkeypatch.chdir(tmp_path)
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    code = main(["search", "--style", str(painting), flag, value, "--storage", f"sqlite:///{tmp_path}/s/studies.db",
                 "--networks", "tiny", "--judge-network", "tiny", "--trials", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"study name {value!r} is not allowed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["painting.png"]


@pytest.mark.parametrize("value", ["../x", "/abs", "a/b", "..", "x/../../y", "../../../tmp/owned"])
def test_trainer_run_names_cannot_escape(tmp_path, capsys, monkeypatch, value):
    from trainer.cli import main

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY_CONFIG.to_json())
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    save_image(tmp_path / "data" / "p.png", synthetic_photo(40))
    code = main(["fit", "--config", str(cfg), "--style", str(painting), "--data", str(tmp_path / "data"), "--name", value,
                 "--runs-dir", str(tmp_path / "runs"), "--size", "32", "--steps", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"run name {value!r} is not allowed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "data", "painting.png"]


def test_photo_names_in_a_tampered_study_record_cannot_escape_the_run_folder(tmp_path, capsys):
    """A record (edited in the database) naming a test photo '../../escape' is refused before anything is written."""
    from trainer.cli import main

    url = make_study(f"sqlite:///{tmp_path}/studies/studies.db", "tampered", n_complete=1, n_pruned=0, n_fail=0)
    study = optuna.load_study(study_name="tampered", storage=url)
    record = study.user_attrs["styletune"]
    first = record["content_names"][0]
    record["content_artifacts"] = {"../../escape": record["content_artifacts"][first]}
    study.set_user_attr("styletune", record)
    save_image(tmp_path / "data" / "p.png", synthetic_photo(40))
    code = main(["fit", "--from-study", "tampered", "--storage", url, "--data", str(tmp_path / "data"),
                 "--runs-dir", str(tmp_path / "runs"), "--size", "32", "--steps", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "test photo name '../../escape' is not allowed" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escape.png").exists()


def test_default_study_names_from_awkward_file_names():
    """A painting given as '../../Été à Giverny.png' gives the study 'Ete_a_Giverny'; a name with no Latin letter, 'study'."""
    from tuner.search import study_name_for

    assert study_name_for("../../Été à Giverny.png") == "Ete_a_Giverny"
    assert study_name_for("/tmp/日本.png") == "study"
