"""The machinery of ``python -m bench.chaos``: its report, inputs, child processes, kill triggers, file checks.

:mod:`bench.chaos_tuner` and :mod:`bench.chaos_trainer` build one chaos run each from these
pieces; :mod:`bench.chaos` is the command (the module docstring there says what is checked).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The same synthetic pictures the unit tests use (deterministic per seed).
from nst.testing import synthetic_painting as _painting
from nst.testing import synthetic_photo as _photo

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("p0", "p1")


# -- reports -------------------------------------------------------------------------------------

@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """What one chaos run did and found; ``ok`` only if every check passed."""

    command: str
    kills: int = 0
    runs: int = 0
    phases: Counter = field(default_factory=Counter)
    reruns: int = 0        # tuner: killed trials run again; trainer: resumes from a checkpoint
    lost: int = 0          # tuner: trials started and never finished nor re-queued; trainer: steps missing
    duplicated: int = 0    # tuner: finished twice; trainer: metric rows of one step written twice
    redone: int = 0        # trainer: steps trained again because they came after the last checkpoint
    given_up: int = 0      # tuner: trials killed more than MAX_RETRY times in a row, failed by design
    files_checked: int = 0
    stray_tmp: int = 0
    integrity: str = "-"
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(what, bool(ok), detail))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and self.lost == 0 and self.duplicated == 0

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["phases"] = dict(self.phases)
        out["ok"] = self.ok
        return out


# -- inputs ----------------------------------------------------------------------------------------

def make_inputs(folder: Path) -> dict[str, Path]:
    """Painting, two test photos, a training folder, a preview photo and a tiny StyleConfig JSON."""
    from nst.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    out = {"painting": save_image(folder / "painting.png", _painting(64))}
    for i, name in enumerate(PHOTOS):
        save_image(folder / "photos" / f"{name}.png", _photo(40, seed=i))
    out["photos"] = folder / "photos"
    for i in range(6):
        save_image(folder / "data" / f"d{i}.png", _photo(48, seed=10 + i, width=56))
    out["data"] = folder / "data"
    out["look"] = save_image(folder / "look.png", _photo(40, seed=9))
    from nst.config import StyleConfig

    tiny = StyleConfig(network="tiny", pooling="avg", content_layer="conv2",  # the tests' TINY_CONFIG
                       style_layers=(("conv1", 1.0), ("conv2", 1.0), ("conv3", 1.0)), content_weight=1.0,
                       style_weight=1e-2, tv_weight=1.0)
    (folder / "cfg.json").write_text(tiny.to_json())
    out["cfg"] = folder / "cfg.json"
    return out


# -- child processes ---------------------------------------------------------------------------

class Child:
    """One run of the command, its output in files (a full pipe must never stall it)."""

    def __init__(self, argv: list[str], cwd: Path, logs: Path, index: int):
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / f"run{index:02d}.out", logs / f"run{index:02d}.err"
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env=env)
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self) -> bool:
        """SIGKILL; True when the signal, not a normal exit, ended the process."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.proc.returncode == -signal.SIGKILL

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def wait_for(child: Child, fired: Callable[[], bool], timeout: float, poll: float = 0.002) -> bool:
    """Poll ``fired`` every ``poll`` s while the child lives; True if it fired (child still running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not child.alive():
            return False
        try:
            if fired():
                return child.alive()
        except OSError:
            pass
        time.sleep(poll)
    return child.alive()


def sleep_alive(child: Child, seconds: float) -> bool:
    return wait_for(child, lambda: False, seconds, poll=0.01) if seconds > 0 else child.alive()


def new_entry(folder: Path, before: set[str], match: Callable[[str], bool] = lambda n: True) -> Callable[[], bool]:
    """A trigger: a file not in ``before`` (a temporary name counts) appeared in ``folder``."""
    def fired() -> bool:
        if not folder.is_dir():
            return False
        return any(match(e.name) and e.name not in before for e in os.scandir(folder))
    return fired


def nth_new_entry(child: Child, folder: Path, n: int, timeout: float) -> bool:
    """Wait for the ``n``-th new file in ``folder`` (each trial writes three images: n > 3 is a later trial)."""
    for _ in range(n):
        if not wait_for(child, new_entry(folder, listing(folder)), timeout):
            return False
    return child.alive()


def listing(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


def wal_changes(db: Path, count: int) -> Callable[[], bool]:
    """A trigger: the SQLite write-ahead log changed ``count`` times (each change is a commit in progress or done)."""
    wal = Path(str(db) + "-wal")
    state = {"last": None, "seen": 0}

    def fired() -> bool:
        try:
            st = wal.stat()
            now = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            now = None
        if now != state["last"]:
            if state["last"] is not None and now is not None:
                state["seen"] += 1
            state["last"] = now
        return state["seen"] >= count
    return fired


# -- file checks -----------------------------------------------------------------------------------

def readable(path: Path) -> str | None:
    """None when ``path`` opens completely as what its name says, else why not."""
    from PIL import Image

    try:
        data = path.read_bytes()
        if not data:
            return "empty"
        if data[:8] == b"\x89PNG\r\n\x1a\n" or path.suffix == ".png":
            with Image.open(path) as im:
                im.load()
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                for k in z.files:
                    z[k]
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad:
                    return f"corrupt member {bad}"
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        return f"{exc.__class__.__name__}: {exc}"


def check_files(root: Path, report: Report, seen: dict[Path, float]) -> None:
    """Open every file under its real name below ``root``; temporary (dot) names are only counted."""
    if not root.exists():
        return
    for path in root.rglob("*"):
        if not path.is_file() or path.name == "metrics.jsonl" or path.suffix in (".db", ".db-wal", ".db-shm"):
            continue
        if path.name.startswith(".") or any(part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue
        mtime = path.stat().st_mtime_ns
        if seen.get(path) == mtime:
            continue
        why = readable(path)
        report.check(f"{path.relative_to(root)} readable under its real name", why is None, why or "")
        seen[path] = mtime
    report.files_checked = len(seen)


def count_tmp(root: Path) -> int:
    """Leftovers of writes a kill interrupted: hidden temporary files and staging folders."""
    if not root.exists():
        return 0
    return sum(1 for p in root.rglob(".*") if p.is_file() or p.is_dir())
