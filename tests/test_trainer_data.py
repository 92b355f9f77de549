"""Training data: the scan skips what cannot be read, the tf.data pipeline is deterministic per step."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nst.images import load_image, save_image
from tests.conftest import synthetic_photo
from trainer.data import DataError, fit_shortest, scan_photos, training_dataset


@pytest.fixture
def messy_folder(tmp_path):
    """Good photos in nested folders, plus every kind of file a real photo folder contains."""
    root = tmp_path / "photos"
    save_image(root / "a.jpg", synthetic_photo(64, seed=1, width=80))
    save_image(root / "nested" / "deeper" / "b.png", synthetic_photo(48, seed=2))
    rgba = (np.concatenate([synthetic_photo(40, seed=3), np.full((40, 40, 1), 0.5, np.float32)], -1) * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(root / "c_rgba.png")
    Image.fromarray((synthetic_photo(40, seed=4) * 255).astype(np.uint8)).save(root / "d.tif")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = (root / "a.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "tiny.png")
    (root / "labels.json").write_text("{}")
    (root / ".hidden.jpg").write_bytes(good)
    return root


def test_scan_keeps_good_photos_and_counts_the_rest(messy_folder):
    scan = scan_photos(messy_folder, progress=False)
    names = sorted(p.split("/")[-1] for p in scan.files)
    assert names == ["a.jpg", "b.png", "c_rgba.png", "d.tif"]
    skipped = {p.split("/")[-1] for p, _ in scan.skipped}
    assert skipped == {"corrupt.jpg", "truncated.jpg", "empty.png", "tiny.png"}
    assert scan.ignored == 1  # labels.json
    assert all(reason for _, reason in scan.skipped)
    # TensorFlow decodes plain JPEG/PNG; transparency and TIFF go through Pillow.
    pillow = {p.split("/")[-1]: flag for p, flag in zip(scan.files, scan.needs_pillow, strict=True)}
    assert pillow == {"a.jpg": False, "b.png": False, "c_rgba.png": True, "d.tif": True}
    assert "skipped 4 unreadable" in scan.describe()


def test_folder_without_photos_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="no usable training photos.*could not be read"):
        scan_photos(tmp_path, progress=False)
    with pytest.raises(DataError, match="no such folder"):
        scan_photos(tmp_path / "missing", progress=False)


def test_pipeline_batches_crops_of_the_requested_size(messy_folder):
    scan = scan_photos(messy_folder, progress=False)
    ds = training_dataset(scan.files, scan.needs_pillow, size=32, batch=3, seed=0)
    batch = next(iter(ds)).numpy()
    assert batch.shape == (3, 32, 32, 3)
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    assert batch.std() > 0.05  # real picture content, not a blank


def test_pipeline_resumes_at_any_step_with_the_same_batches(messy_folder):
    scan = scan_photos(messy_folder, progress=False)
    def first(n, **kw):
        ds = training_dataset(scan.files, scan.needs_pillow, size=32, batch=3, seed=4, **kw)
        return [b.numpy() for _, b in zip(range(n), ds, strict=False)]

    full, later = first(5), first(2, start_step=3)
    np.testing.assert_array_equal(later[0], full[3])
    np.testing.assert_array_equal(later[1], full[4])
    other_seed = next(iter(training_dataset(scan.files, scan.needs_pillow, size=32, batch=3, seed=5))).numpy()
    assert not np.array_equal(other_seed, full[0])


def test_pillow_path_decodes_like_the_engine(messy_folder):
    """A TIFF (which TensorFlow cannot decode) arrives exactly as nst.images.load_image reads it."""
    import tensorflow as tf

    from trainer.data import decode

    path = str(messy_folder / "d.tif")
    got = decode(tf.constant(path), tf.constant(True)).numpy()
    np.testing.assert_allclose(got, load_image(path), atol=1e-6)
    jpg = str(messy_folder / "a.jpg")
    native = decode(tf.constant(jpg), tf.constant(False)).numpy()
    # Two JPEG decoders (TensorFlow's fast IDCT, Pillow's libjpeg) differ by a few levels here and there.
    diff = np.abs(native - load_image(jpg))
    assert diff.max() <= 6 / 255 and diff.mean() < 2 / 255


def test_fit_shortest_keeps_aspect_and_reaches_the_crop_size():
    import tensorflow as tf

    out = fit_shortest(tf.constant(synthetic_photo(40, width=100)), 32).numpy()
    assert out.shape[:2] == (32, 80)
