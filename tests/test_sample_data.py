"""The training-photo assembler: filters, de-duplication, Qt resource files, errors.

Everything except the last test runs on synthetic pictures and fake package trees in a
temporary folder (well under a second each). The last test builds the real set from
Debian's archive and is marked ``network`` (and ``slow``).
"""

from __future__ import annotations

import csv
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer import sample_data as sd
from trainer.debs import read_rcc


def smooth_photo(seed: int, size: tuple[int, int] = (360, 300), colour: bool = True) -> Image.Image:
    """A 'photo': random smooth colour fields, different for each seed (so different pHashes)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
    img = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    if not colour:
        img = img.convert("L").convert("RGB")
    return img


def write_rcc(path: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    """A minimal Qt resource file (version 2): ``/pics/<name>`` for each file, optionally zlib-compressed."""
    names = b""
    data = b""
    name_off: dict[str, int] = {}

    def add_name(name: str) -> int:
        nonlocal names
        if name not in name_off:
            name_off[name] = len(names)
            names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        return name_off[name]

    file_nodes = []
    for name, (blob, compressed) in files.items():
        payload = struct.pack(">I", len(blob)) + zlib.compress(blob) if compressed else blob
        file_nodes.append(struct.pack(">IHHHI", add_name(name), 1 if compressed else 0, 0, 0, len(data)) + b"\0" * 8)
        data += struct.pack(">I", len(payload)) + payload
    root = struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8
    pics = struct.pack(">IHII", add_name("pics"), 2, len(files), 2) + b"\0" * 8
    tree = root + pics + b"".join(file_nodes)
    header_size = 20
    tree_off = header_size
    data_off = tree_off + len(tree)
    names_off = data_off + len(data)
    path.write_bytes(b"qres" + struct.pack(">IIII", 2, tree_off, data_off, names_off) + tree + data + names)


def encode(img: Image.Image, fmt: str = "JPEG") -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_colourfulness_separates_grey_from_colour():
    assert sd.colourfulness(np.asarray(smooth_photo(1, colour=False))) < 1
    assert sd.colourfulness(np.asarray(smooth_photo(1))) > 20


def test_perceptual_hash_finds_copies_and_tells_photos_apart():
    a = smooth_photo(3)
    copy = Image.open(__import__("io").BytesIO(encode(a.resize((180, 150)))))  # half size, re-encoded as JPEG
    ha = sd.perceptual_hash(np.asarray(a.resize((128, 107))))
    hc = sd.perceptual_hash(np.asarray(copy.convert("RGB").resize((128, 107))))
    assert sd.hamming(ha, hc) <= 4
    others = [sd.perceptual_hash(np.asarray(smooth_photo(s).resize((128, 107)))) for s in range(10, 20)]
    assert min(sd.hamming(ha, h) for h in others) > 10


def test_read_rcc_returns_plain_and_compressed_files(tmp_path):
    write_rcc(tmp_path / "x.rcc", {"a.webp": (b"plain bytes", False), "b.webp": (b"squeezed " * 50, True)})
    assert dict(read_rcc(tmp_path / "x.rcc")) == {"/pics/a.webp": b"plain bytes", "/pics/b.webp": b"squeezed " * 50}
    (tmp_path / "bad.rcc").write_bytes(b"not a resource file")
    with pytest.raises(sd.PhotoSetError, match="qres"):
        list(read_rcc(tmp_path / "bad.rcc"))


@pytest.fixture
def fake_packages(tmp_path):
    """Two unpacked 'packages': one with loose files, one with a Qt resource file."""
    loose = tmp_path / "pkg-loose"
    pics = loose / "usr/share/pics"
    pics.mkdir(parents=True)
    smooth_photo(1, (900, 600)).save(pics / "big.jpg")                        # kept, scaled to 512 short side
    smooth_photo(1, (450, 300)).save(pics / "big_copy.jpg", quality=70)       # same photo, smaller: duplicate
    smooth_photo(2, (300, 200)).save(pics / "small.jpg")                      # short side 200: too small
    smooth_photo(3, colour=False).save(pics / "grey.jpg")                     # grey: dropped
    smooth_photo(4, (400, 300)).save(pics / "sideways.jpg")                   # kept, turned to portrait
    (pics / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")       # unreadable: counted
    (loose / "usr/share/doc/pkg-loose").mkdir(parents=True)
    (loose / "usr/share/doc/pkg-loose/copyright").write_text("Files: *\nLicense: CC0-1.0\n")
    packed = tmp_path / "pkg-rcc"
    (packed / "usr/share/app").mkdir(parents=True)
    write_rcc(packed / "usr/share/app/pictures.rcc",
              {"cat.webp": (encode(smooth_photo(5), "WEBP"), False), "dog.png": (encode(smooth_photo(6), "PNG"), True)})
    picks = (
        sd.Pick("pkg-loose", "usr/share/pics/sideways.jpg", "people", rotate=90),
        sd.Pick("pkg-loose", "usr/share/pics/*.jpg", "landscapes"),
        sd.Pick("pkg-rcc", "usr/share/app/*.rcc!/pics/*.webp", "animals"),
        sd.Pick("pkg-rcc", "usr/share/app/*.rcc!/pics/*.png", "objects"),
        sd.Pick("pkg-rcc", "usr/share/app/*.rcc!/pics/none-such-*", "objects"),
    )
    packages = (sd.Package("pkg-loose", "loose", "CC0-1.0"), sd.Package("pkg-rcc", "rcc", "GPL-3+"))
    return {"pkg-loose": loose, "pkg-rcc": packed}, picks, packages


def test_assemble_filters_dedups_rotates_and_lists_sources(tmp_path, fake_packages):
    roots, picks, packages = fake_packages
    out = tmp_path / "photos"
    report = sd.assemble(out, roots, picks, packages=packages, versions={"pkg-rcc": "1.0-1"})
    kept = {rel: cat for rel, cat, _, _ in report.kept}
    assert kept == {"people/loose-sideways.jpg": "people", "landscapes/loose-big.jpg": "landscapes",
                    "animals/rcc-pictures-cat.jpg": "animals", "objects/rcc-pictures-dog.jpg": "objects"}
    assert [m for m, _ in report.duplicates] == ["usr/share/pics/big_copy.jpg"]
    assert report.too_small == ["usr/share/pics/small.jpg"]
    assert report.grey == ["usr/share/pics/grey.jpg"]
    assert report.unreadable == ["usr/share/pics/broken.jpg"]
    assert [p.pattern for p in report.unmatched] == ["usr/share/app/*.rcc!/pics/none-such-*"]
    assert Image.open(out / "landscapes/loose-big.jpg").size == (768, 512)
    assert Image.open(out / "people/loose-sideways.jpg").size == (300, 400)
    rows = list(csv.DictReader((out / "SOURCES.tsv").open(), delimiter="\t"))
    assert {r["file"] for r in rows} == set(kept)
    assert {r["version"] for r in rows if r["package"] == "pkg-rcc"} == {"1.0-1"}
    assert (out / "licences/pkg-loose.copyright").read_text().startswith("Files: *")
    assert "4 photos (people 1, animals 1, buildings 0, landscapes 1, objects 1)" in report.summary()


def test_assemble_is_idempotent_and_removes_only_its_own_stale_files(tmp_path, fake_packages):
    roots, picks, packages = fake_packages
    out = tmp_path / "photos"
    sd.assemble(out, roots, picks, packages=packages)
    before = {p: p.read_bytes() for p in out.rglob("*.jpg")}
    (out / "landscapes/mine.jpg").write_bytes(b"a user's own file")
    sd.assemble(out, roots, picks, packages=packages)
    assert {p: p.read_bytes() for p in out.rglob("*.jpg") if p.name != "mine.jpg"} == before
    sd.assemble(out, roots, picks[1:], packages=packages)  # the rotated pick is gone now
    assert not (out / "people/loose-sideways.jpg").exists()
    assert (out / "landscapes/mine.jpg").exists()


def test_contact_sheet_is_written(tmp_path, fake_packages):
    roots, picks, packages = fake_packages
    sd.assemble(tmp_path / "photos", roots, picks, packages=packages)
    sheet = sd.contact_sheet(tmp_path / "photos", tmp_path / "sheet.png", thumb=32, columns=4)
    assert Image.open(sheet).size[0] == 128


def test_no_apt_get_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = sd.main([str(tmp_path / "photos"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "apt-get not found" in err[0] and "--source skimage" in err[0]


def test_unknown_package_names_it_and_the_fix(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text("#!/bin/sh\necho \"E: Unable to locate package $3\" >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    with pytest.raises(sd.PhotoSetError, match=r"'no-such-photos'.*Unable to locate.*apt-get update"):
        sd.fetch_debs(["no-such-photos"], tmp_path / "cache")


def test_cached_debs_need_no_apt_get(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "pics_1.0-1_all.deb").write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert sd.fetch_debs(["pics"], cache) == {"pics": cache / "pics_1.0-1_all.deb"}
    assert sd._deb_version(cache / "palapeli-data_4%3a22.12.3-1_all.deb") == "4:22.12.3-1"


def test_skimage_fallback_still_makes_crops(tmp_path, capsys):
    assert sd.main([str(tmp_path / "crops"), "--source", "skimage", "--count", "3"]) == 0
    assert len(list((tmp_path / "crops").glob("*.jpg"))) == 3
    assert sd.main([str(tmp_path / "old"), "--count", "2"]) == 0  # the pre-Debian command line still means crops
    assert len(list((tmp_path / "old").glob("*.jpg"))) == 2
    assert sd.main([str(tmp_path / "x"), "--source", "debian", "--count", "2"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.network
@pytest.mark.slow
def test_real_photo_set_from_debian(tmp_path):
    """The real set: at least 100 colour photos, short side 256-512, every category covered."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("photo set: no apt-get/dpkg-deb on this machine (not Debian)")
    cache = Path(os.environ.get("STYLETUNE_DEB_CACHE", sd.default_cache()))
    try:
        report = sd.build_photo_set(tmp_path / "photos", cache=cache)
    except sd.PhotoSetError as exc:
        if "Unable to locate" in str(exc) or "Could not resolve" in str(exc) or "Failed to fetch" in str(exc):
            pytest.skip(f"photo set: Debian's archive not reachable here ({exc})")
        raise
    counts = report.counts()
    assert len(report.kept) >= 100, report.summary()
    assert all(counts[c] >= 15 for c in sd.CATEGORIES), report.summary()
    assert not report.unmatched, [p.pattern for p in report.unmatched]
    for rel, *_ in report.kept[::7]:
        with Image.open(tmp_path / "photos" / rel) as im:
            assert 256 <= min(im.size) <= 512
            assert sd.colourfulness(np.asarray(im.convert("RGB").resize((64, 64)))) >= 10
