"""The one atomic write: whole file or old file, and ordinary permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from nst.files import atomic_path, atomic_writer, write_atomic
from nst.images import save_image


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
