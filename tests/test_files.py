"""The one atomic write: whole file or old file, and ordinary permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from nst.files import atomic_writer, write_atomic
from nst.images import save_image


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_get_the_permissions_of_an_ordinary_open(tmp_path, umask_022):
    text = write_atomic(tmp_path / "a" / "run.json", "{}")
    picture = save_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.float32))
    for path in (text, picture):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = write_atomic(tmp_path / "scores.json", "old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]
