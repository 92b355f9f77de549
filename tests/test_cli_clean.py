"""The command line on every machine: only our own lines on stderr, instant ``--help``, clean stop.

These run real subprocesses with the user's environment: no ``TF_CPP_MIN_LOG_LEVEL`` from
us, and oneDNN forced on (``TF_ENABLE_ONEDNN_OPTS=1``), which is what AVX-512 CPUs do by
default and what makes TensorFlow's import print notices of its own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nst.images import save_image
from tests.conftest import synthetic_painting, synthetic_photo
from tests.studyfactory import make_study

REPO = Path(__file__).resolve().parents[1]

#: What only TensorFlow, absl, XLA or oneDNN write: never allowed on our stderr.
FOREIGN = re.compile(r"absl|oneDNN|onednn|^[IWEF]\d{4} |cpu_feature_guard|XLA|tensorflow|cuda|Traceback", re.I)
#: Our own lines: "<prog>: error|note|...: ..." or a tqdm bar ("render:  40%|####  | 2/5 [...]", "fit: 3step [...]").
OURS = re.compile(r"^(tuner|trainer)( \w+)?: |^[\w .-]+: +(\d+%\||\d+\w* \[)")


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "STYLETUNE_TF_LOGS")}
    return {**env, "PYTHONPATH": str(REPO), "TF_ENABLE_ONEDNN_OPTS": "1", **extra}


def foreign_lines(stderr: str) -> list[str]:
    lines = [part.strip() for line in stderr.splitlines() for part in line.split("\r") if part.strip()]
    return [line for line in lines if FOREIGN.search(line) or not OURS.search(line)]


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=user_env(**env), capture_output=True, text=True,
                          timeout=300)


def test_the_line_filter_knows_tensorflows_startup_lines_from_ours():
    tf_noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                "I0000 00:00:1796163210.792611    5495 port.cc:153] oneDNN custom operations are on.\n")
    ours = "tuner: note: x.gif: animated image, using its first frame\nrender:  50%|#####     | 1/2 [00:01<00:01]\n"
    assert len(foreign_lines(tf_noise)) == 2
    assert foreign_lines(ours) == []


# -- TensorFlow's import ------------------------------------------------------------------------------


def test_importing_tensorflow_through_styletune_prints_nothing_even_with_onednn_on():
    bare = python("import tensorflow")
    if not foreign_lines(bare.stderr):
        pytest.skip("this CPU's TensorFlow prints nothing on import even with oneDNN forced on; nothing to hide")
    quiet = python("import nst, keras, tensorflow as tf; tf.function(lambda x: x * 2, jit_compile=True)(tf.ones(2))")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""


def test_the_users_environment_is_left_as_it_was_for_child_processes():
    run = python("import os, nst, tensorflow; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))", TF_CPP_MIN_LOG_LEVEL="0")
    assert run.returncode == 0 and run.stdout.strip() == "0"
    assert foreign_lines(run.stderr) == []  # TensorFlow itself was quietened all the same


def _fake_tensorflow(tmp_path: Path, body: str) -> dict[str, str]:
    pkg = tmp_path / "fake" / "tensorflow"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\nos.write(2, b'libtensorflow_fake.so: cannot open shared object\\n')\n"
                                     + body)
    return {"PYTHONPATH": f"{tmp_path / 'fake'}{os.pathsep}{REPO}"}


def test_a_failing_tensorflow_import_still_tells_the_user_why(tmp_path):
    env = _fake_tensorflow(tmp_path, "raise ImportError('DLL load failed')\n")
    run = python("import nst\nimport tensorflow", **env)
    assert run.returncode != 0
    assert "libtensorflow_fake.so: cannot open shared object" in run.stderr
    assert "ImportError: DLL load failed" in run.stderr


def test_a_successful_import_drops_what_it_wrote_and_restores_stderr(tmp_path):
    env = _fake_tensorflow(tmp_path, "VALUE = 7\n")
    run = python("import sys, nst, tensorflow\nprint('after', tensorflow.VALUE, file=sys.stderr)", **env)
    assert run.returncode == 0 and run.stderr == "after 7\n"


def test_styletune_tf_logs_lets_tensorflow_speak_for_debugging(tmp_path):
    env = _fake_tensorflow(tmp_path, "")
    run = python("import nst, tensorflow", STYLETUNE_TF_LOGS="1", **env)
    assert "libtensorflow_fake.so" in run.stderr


# -- real commands ---------------------------------------------------------------------------------


def test_a_render_with_its_progress_bar_writes_only_our_lines(tmp_path):
    save_image(tmp_path / "painting.png", synthetic_painting(64))
    save_image(tmp_path / "photo.png", synthetic_photo(40))
    config = tmp_path / "cfg.json"
    print_cfg = subprocess.run([sys.executable, "-m", "tuner.cli", "render", "--network", "tiny", "--print-config"],
                               env=user_env(), capture_output=True, text=True, timeout=120)
    assert print_cfg.returncode == 0, print_cfg.stderr
    config.write_text(print_cfg.stdout)
    run = subprocess.run([sys.executable, "-m", "tuner.cli", "render", "--style", str(tmp_path / "painting.png"),
                          "--content", str(tmp_path / "photo.png"), "--config", str(config), "--size", "40",
                          "--steps", "3", "-o", str(tmp_path / "out.png")],
                         env=user_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "render" in run.stderr  # the progress bar is there ...
    assert foreign_lines(run.stderr) == []  # ... and nothing else


# -- --help without TensorFlow ---------------------------------------------------------------------


def test_every_help_builds_without_importing_tensorflow_or_keras():
    code = """
import sys, contextlib, io
from tuner.cli import build_parser as tuner_parser
from trainer.cli import build_parser as trainer_parser
seen = []
for build in (tuner_parser, trainer_parser):
    parser = build()
    sub = next(a for a in parser._actions if a.__class__.__name__ == '_SubParsersAction')
    for argv in [['--help']] + [[name, '--help'] for name in sub.choices]:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            build().parse_args(argv)
        seen.append(argv[0])
heavy = sorted(m for m in ('tensorflow', 'keras', 'onnxruntime', 'optuna', 'streamlit') if m in sys.modules)
print(len(seen), ','.join(heavy) or 'none')
"""
    run = python(code)
    assert run.returncode == 0, run.stderr
    count, heavy = run.stdout.split()
    assert int(count) >= 10  # both tools and all their subcommands were asked
    assert heavy == "none"


# -- tuner dashboard stops cleanly ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(port: int) -> bool:
    """Streamlit answers its health check once it has fully started (a signal before that is its own race)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for leftover processes in Linux's /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_dashboard_stops_its_server_on_a_signal_and_leaves_nothing_behind(tmp_path, sig):
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "dashboard", "--storage", url, "--port", str(port)],
                            env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(port):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the dashboard did not start within 120 s"
            time.sleep(0.2)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    leftovers = [pid for pid in _processes_mentioning(f"--server.port\x00{port}\x00")]
    assert leftovers == [], f"server processes left running: {leftovers}"
    assert not _port_busy(port)
    assert [line for line in err.splitlines() if FOREIGN.search(line)] == [], err  # Streamlit may speak; TF may not


def test_an_interrupt_that_surfaces_as_an_import_error_is_reported_as_an_interrupt(capsys):
    """A Ctrl-C inside a C extension's import comes back as ImportError; the user sees the stop, not a traceback."""
    import argparse

    from nst.cliutil import EXIT_INTERRUPTED, run_main

    def cut_short(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    parser = argparse.ArgumentParser(prog="demo")
    parser.set_defaults(func=cut_short, resume_hint="demo again")
    assert run_main("demo", parser, []) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.strip() == "demo: interrupted; resume with: demo again" and "Traceback" not in err

    def broken(args):
        raise ImportError("no module named x")

    parser.set_defaults(func=broken)
    with pytest.raises(ImportError):  # a real import error is not hidden as an interrupt
        run_main("demo", parser, [])


def _start_dashboard(url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "dashboard", "--storage", url, "--port", str(port)],
                            env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _healthy(port):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the dashboard did not start within 120 s"
        time.sleep(0.2)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _bind_without_reuse(port: int) -> OSError | None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc
    return None


@pytest.mark.skipif(os.name == "nt", reason="TIME_WAIT and SO_REUSEADDR as on Linux and macOS")
def test_a_stopped_dashboard_restarts_at_once_on_the_same_port(tmp_path):
    """Connections the stopped server closed linger in TIME_WAIT for a minute; they must not block the restart."""
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    port = _free_port()
    first = _start_dashboard(url, port)
    try:
        # A browser's keep-alive connection, open when the server stops: the server closes it
        # first, so its side of the connection is what lingers in TIME_WAIT.
        browser = socket.create_connection(("127.0.0.1", port), timeout=10)
        browser.sendall(b"GET /_stcore/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b" 200 " in browser.recv(4096)
    finally:
        _stop(first)
    with browser:
        while browser.recv(4096):  # the rest of the reply, then the end the stopped server sent
            pass
    assert not _port_busy(port)
    assert _bind_without_reuse(port) is not None, "precondition: the port should be held by TIME_WAIT"
    second = _start_dashboard(url, port)  # fails with "cannot listen on ... (Address already in use)" if refused
    _stop(second)


def test_a_port_something_listens_on_is_one_line_and_exit_2(tmp_path):
    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=1, n_pruned=0, n_fail=0)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # even a server that allows reuse holds it
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tuner.cli", "dashboard", "--storage", url, "--port", str(port)],
                              env=user_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"tuner: error: cannot listen on 127.0.0.1:{port} (Address already in use); "
                                        "choose another --port"], done.stderr
