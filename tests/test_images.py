"""Image loading: every legitimate oddity is accepted, every broken file is one clear error."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from nst.errors import ImageError
from nst.images import center_crop_square, contact_sheet, load_image, resize_longest, save_image


def _gradient(w=64, h=48):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], -1).astype(np.uint8)


def _check_rgb(arr, shape=None):
    assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[2] == 3
    assert arr.min() >= 0.0 and arr.max() <= 1.0
    if shape:
        assert arr.shape[:2] == shape


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp")])
def test_common_formats_load_as_rgb(tmp_path, fmt, ext):
    path = tmp_path / f"photo.{ext}"
    Image.fromarray(_gradient()).save(path, format=fmt)
    arr = load_image(path)
    _check_rgb(arr, (48, 64))
    # The red channel is a horizontal ramp in every format (lossy ones within a tolerance).
    assert arr[:, -1, 0].mean() - arr[:, 0, 0].mean() > 0.8


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(_gradient()[..., 0]).save(path)
    arr = load_image(path)
    _check_rgb(arr)
    assert np.allclose(arr[..., 0], arr[..., 1]) and np.allclose(arr[..., 1], arr[..., 2])


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(_gradient()).convert("CMYK").save(path)
    arr = load_image(path)
    _check_rgb(arr, (48, 64))
    assert arr[:, -1, 0].mean() > arr[:, 0, 0].mean() + 0.5


def test_16bit_png_keeps_its_range(tmp_path):
    path = tmp_path / "deep.png"
    ramp = (np.tile(np.linspace(0, 65535, 64), (48, 1))).astype(np.uint16)
    Image.fromarray(ramp).save(path)  # uint16 -> mode I;16
    arr = load_image(path)
    _check_rgb(arr, (48, 64))
    assert arr[0, 0, 0] < 0.01 and arr[0, -1, 0] > 0.99


def test_palette_png_with_transparency_is_flattened_on_white(tmp_path):
    path = tmp_path / "palette.png"
    im = Image.new("P", (32, 32), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (16, 0, 32, 32))
    im.info["transparency"] = 0  # palette index 0 (red) is fully transparent
    im.save(path, transparency=0)
    arr = load_image(path)
    assert np.allclose(arr[5, 5], [1, 1, 1], atol=0.01)  # transparent -> white, not red or black
    assert np.allclose(arr[5, 25], [0, 0, 1], atol=0.01)


def test_rgba_is_flattened_on_white(tmp_path):
    path = tmp_path / "rgba.png"
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :16, 3] = 0
    rgba[:, 16:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    arr = load_image(path)
    assert np.allclose(arr[0, 0], [1, 1, 1]) and np.allclose(arr[0, 20], [1, 0, 0])


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    im = Image.fromarray(_gradient(64, 32))  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(path, exif=exif.tobytes())
    arr = load_image(path)
    assert arr.shape[:2] == (64, 32)  # displayed as portrait, as a camera viewer would


def test_animated_gif_uses_first_frame_and_says_so(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = load_image(path)
    assert arr[0, 0, 0] > 0.9 and arr[0, 0, 1] < 0.1
    assert any("first frame" in str(w.message) for w in caught)


def test_paths_with_spaces_and_non_ascii(tmp_path):
    path = tmp_path / "mes photos" / "été à Giverny.png"
    path.parent.mkdir()
    Image.fromarray(_gradient()).save(path)
    _check_rgb(load_image(path), (48, 64))


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def _truncated_jpeg(tmp_path):
    full = tmp_path / "full.jpg"
    Image.fromarray(_gradient(256, 256)).save(full, quality=95)
    data = full.read_bytes()
    return data[: len(data) // 3]


BAD_FILES = {
    "missing": (None, "no such file"),
    "directory": ("DIR", "is a directory"),
    "empty": (b"", "empty"),
    "text renamed .jpg": (b"this is not a picture\n" * 10, "not a recognised image"),
    "truncated jpeg": ("TRUNC", "corrupt or truncated"),
    "1x1 image": ("TINY", "too small"),
    "decompression bomb": (_png_claiming(100_000, 100_000), "too large"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_give_one_line_naming_the_file(tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / "input.jpg"
    if content == "DIR":
        path.mkdir()
    elif content == "TRUNC":
        path.write_bytes(_truncated_jpeg(tmp_path))
    elif content == "TINY":
        Image.new("RGB", (1, 1)).save(path, format="PNG")
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_resize_longest_keeps_aspect():
    img = np.random.default_rng(0).uniform(size=(60, 120, 3)).astype(np.float32)
    out = resize_longest(img, 64)
    assert out.shape == (32, 64, 3)


def test_center_crop_square_is_square_and_centred():
    img = np.zeros((40, 80, 3), np.float32)
    img[:, 20:60] = 1.0  # bright centre band
    out = center_crop_square(img, 32)
    assert out.shape == (32, 32, 3)
    assert out[:, 4:28].mean() > 0.95


def test_save_image_is_atomic_and_round_trips(tmp_path):
    img = np.random.default_rng(1).uniform(size=(20, 30, 3)).astype(np.float32)
    path = save_image(tmp_path / "out" / "x.png", img)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temporary left behind
    back = np.asarray(Image.open(path), np.float32) / 255
    assert np.abs(back - img).max() <= 1 / 255 + 1e-6


def test_contact_sheet_places_every_image():
    a, b = np.zeros((20, 40, 3), np.float32), np.ones((30, 30, 3), np.float32) * 0.5
    sheet = contact_sheet([[a, b], [b]], cell=32, gap=2)
    assert sheet.shape == (2 * 34 + 2, 2 * 34 + 2, 3)
    assert np.isclose(sheet[2 + 16, 2 + 34 + 16, 0], 0.5)  # b in row 0, col 1
