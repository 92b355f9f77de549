"""The one atomic write and the one folder move: whole new or whole old, and ordinary permissions."""

from __future__ import annotations

import errno
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nst import files
from nst.files import atomic_path, atomic_writer, recover_dir, replace_dir, staged_dir, write_atomic
from nst.images import save_image

ROOT = Path(__file__).resolve().parents[1]


def test_written_files_get_the_permissions_of_an_ordinary_open(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    text = write_atomic(tmp_path / "a" / "run.json", "{}")
    picture = save_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.float32))
    plain = tmp_path / "plain"
    plain.write_text("")  # what open() gives under this umask; mkstemp alone would give 0o600
    for path in (text, picture):
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask, path


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "scores.json", "old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_a_writer_that_needs_a_path_gets_the_same_guarantees(tmp_path):
    """``model.save(path)`` and the like: the suffix is kept, failure keeps the old file, success looks ordinary."""
    target = write_atomic(tmp_path / "model.keras", "old model")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".keras") as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".keras") and tmp != target
        tmp.write_text("half a model")
        raise RuntimeError("killed mid-save")
    assert target.read_text() == "old model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    with atomic_path(target, suffix=".keras") as tmp:
        tmp.write_text("new model")
    plain = tmp_path / "plain"
    plain.write_text("")
    assert target.read_text() == "new model"
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "plain"]


# -- the one folder move ---------------------------------------------------------------------------

FILES = 12


def _tree(folder, version: str) -> None:
    (folder / "sub").mkdir()
    for i in range(FILES):
        (folder / ("sub" if i % 2 else ".") / f"{i}.txt").write_text(version)


def _version(folder) -> str:
    """The one version every file of ``folder`` holds; fails if a file is missing or from another version."""
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.txt"))
    assert names == sorted(f"{'sub/' if i % 2 else ''}{i}.txt" for i in range(FILES)), names
    versions = {p.read_text() for p in folder.rglob("*.txt")}
    assert len(versions) == 1, versions
    return versions.pop()


def _no_exchange(monkeypatch):
    """Pretend the system has no RENAME_EXCHANGE (macOS, old kernels), so the two-rename fallback runs."""
    monkeypatch.setattr(files, "_renameat2", lambda src, dst, flags: errno.ENOSYS)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_staged_folder_replaces_the_old_one_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        _no_exchange(monkeypatch)
    target = tmp_path / "export" / "web"
    with staged_dir(target) as folder:
        _tree(folder, "1")
    assert _version(target) == "1"
    (target / "only-in-old").write_text("")
    with staged_dir(target) as folder:
        _tree(folder, "2")
    assert _version(target) == "2" and not (target / "only-in-old").exists()
    plain = tmp_path / "plain"
    plain.mkdir()  # what mkdir gives under this umask; mkdtemp alone would give 0o700
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert sorted(p.name for p in target.parent.iterdir()) == ["web"]


def test_a_failed_folder_keeps_the_old_one_and_leaves_nothing(tmp_path):
    target = tmp_path / "web"
    with staged_dir(target) as folder:
        _tree(folder, "old")
    with pytest.raises(RuntimeError), staged_dir(target) as folder:
        (folder / "half").write_text("half of the new")
        raise RuntimeError("failed mid-export")
    assert _version(target) == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["web"]


def test_a_new_folder_never_replaces_an_existing_one_when_told_not_to(tmp_path, monkeypatch):
    target = tmp_path / "run"
    with staged_dir(target, replace=False) as folder:
        _tree(folder, "first")
    for fallback in (False, True):
        if fallback:
            _no_exchange(monkeypatch)
        with pytest.raises(FileExistsError), staged_dir(target, replace=False) as folder:
            _tree(folder, "second")
        assert _version(target) == "first" and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_replace_dir_moves_a_folder_made_by_hand(tmp_path):
    target, staged = tmp_path / "out", tmp_path / "made"
    target.write_text("a file was here")
    staged.mkdir()
    _tree(staged, "new")
    assert replace_dir(staged, target) == target
    assert _version(target) == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


MOVER = f"""
import errno, sys
from pathlib import Path
import nst.files as files
target, start, fallback = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if fallback:
    files._renameat2 = lambda src, dst, flags: errno.ENOSYS
print("ready", flush=True)
version = start
while True:
    with files.staged_dir(target) as folder:
        (folder / "sub").mkdir()
        for i in range({FILES}):
            (folder / ("sub" if i % 2 else ".") / f"{{i}}.txt").write_text(str(version))
    version += 1
"""


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
def test_a_folder_move_killed_at_any_moment_leaves_the_old_folder_or_the_new(tmp_path, fallback):
    """SIGKILL a process that replaces a folder over and over, at random moments, many times.

    With RENAME_EXCHANGE the folder is never missing, not even while the process runs; with
    the two-rename fallback a kill can leave it missing, and the next call puts the old copy
    back. Either way it then holds one whole version, never a mix, and no temporary remains.
    """
    target = tmp_path / "web"
    with staged_dir(target) as folder:
        _tree(folder, "0")
    rng = random.Random(7)
    versions = set()
    for kill in range(15):
        mover = subprocess.Popen([sys.executable, "-c", MOVER, str(target), str(1000 * (kill + 1)), str(int(fallback))],
                                 stdout=subprocess.PIPE, cwd=ROOT)
        assert mover.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + rng.uniform(0.02, 0.4)
        while time.monotonic() < deadline:
            if not fallback:
                assert target.is_dir(), f"{target} went missing during a move"
        mover.send_signal(signal.SIGKILL)
        mover.wait()
        mover.stdout.close()
        if fallback:
            recover_dir(target)  # what the next move, or a reader, does first
        versions.add(_version(target))
    assert len(versions) > 5, "the kills should land after different numbers of moves"
    recover_dir(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web"], "temporaries left after the kills"


def test_the_next_move_removes_what_a_killed_one_left(tmp_path):
    target = tmp_path / "web"
    with staged_dir(target) as folder:
        _tree(folder, "old")
    (tmp_path / ".web.abcd1234.new").mkdir()  # a killed move's half-assembled folder
    (tmp_path / ".web.abcd1234.new" / "half").write_text("")
    (tmp_path / ".web.5678efgh.old").mkdir()  # a killed fallback's old copy, target back in place
    (tmp_path / ".website.abcd1234.new").mkdir()  # another folder's: not ours to remove
    with staged_dir(target) as folder:
        _tree(folder, "new")
    assert _version(target) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".website.abcd1234.new", "web"]


def test_a_folder_missing_after_a_killed_fallback_is_restored(tmp_path):
    target = tmp_path / "web"
    with staged_dir(target) as folder:
        _tree(folder, "old")
    target.rename(tmp_path / ".web.0a1b2c3d.old")  # killed between the fallback's two renames
    recover_dir(target)
    assert _version(target) == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["web"]
