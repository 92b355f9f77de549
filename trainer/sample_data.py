"""Training photos for ``trainer fit`` that install from Debian's package archive.

Real training wants tens of thousands of everyday photos (Johnson et al. used MS-COCO's
80k), which nobody has on a fresh machine. Debian's archive, which every developer and CI
machine here can reach, carries a few hundred real colour photographs inside ordinary
packages: GCompris's educational activities (animals, monuments, musicians), KPhotoAlbum's
demo album (people, pets, holidays), desktop wallpapers and jigsaw puzzles. This module
fetches those packages with ``apt-get download`` (no root needed, nothing is installed),
unpacks them with ``dpkg-deb -x`` into a temporary folder, takes the files the table
:data:`PICKS` names, and writes one folder of photos:

* sorted into ``people/``, ``animals/``, ``buildings/``, ``landscapes/``, ``objects/``;
* each a colour photograph with a short side of at least 256 px, scaled down to at most
  512 px (``trainer fit`` crops 256 px or less, and small files load fast);
* no photo twice: a perceptual hash drops resized or re-encoded copies of a kept one;
* ``SOURCES.tsv`` names each photo's package, version, original path and category, and
  ``licences/`` holds each package's copyright file (the photos' licences and credits).

The table is curated by eye: it names folders and files that are photographs, leaving
out drawings, renders and paintings that sit next to them in the same packages. The
downloaded ``.deb`` files are kept in a cache (``~/.cache/styletune/debs``), so a second
run needs no network and writes the same folder.

The old source, random crops of scikit-image's bundled pictures, stays as
``--source skimage``: offline, tiny, for tests and benchmarks of the machinery.

Usage::

    python -m trainer.sample_data studies/photos                    # the Debian photo set (about 190 photos)
    python -m trainer.sample_data /tmp/crops --source skimage --count 300   # (--count alone implies skimage)
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nst.errors import StyletuneError
from trainer.debs import PhotoSetError, default_cache, fetch_debs, iter_members, unpack
from trainer.photo_picks import CATEGORIES, MIN_PHOTOS, PACKAGES, PICKS, Package, Pick

# --------------------------------------------------------------------------- checks on one picture


def colourfulness(rgb: np.ndarray) -> float:
    """Mean spread between a pixel's largest and smallest channel, 0-255.

    Grey pictures score near 0, sepia or nearly grey ones below 10; everyday colour photos 15 to 60.
    A grey photo teaches a style network nothing about colour, and the training data should
    look like the photos people will stylise.
    """
    a = np.asarray(rgb, dtype=np.float32)
    return float((a.max(axis=2) - a.min(axis=2)).mean())


def perceptual_hash(rgb: np.ndarray) -> int:
    """A 64-bit DCT hash (pHash) of the picture's luminance.

    Resizing, re-encoding, small colour shifts and mild blur leave most bits unchanged,
    so two files of the same photo land within a few bits of each other, while different
    photos differ in about half of the 64.
    """
    from PIL import Image
    from scipy.fft import dctn

    grey = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    coeffs = dctn(np.asarray(grey, dtype=np.float64), norm="ortho")[:8, :8].ravel()[1:]  # drop the mean (DC)
    bits = coeffs > np.median(coeffs)
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    """Number of bits in which two hashes differ."""
    return (a ^ b).bit_count()


# --------------------------------------------------------------------------- assembling


@dataclass
class PhotoSetReport:
    """What a build kept and dropped, for the summary line and the tests."""

    kept: list[tuple[str, str, str, str]] = field(default_factory=list)  # (file, category, package, member)
    too_small: list[str] = field(default_factory=list)
    grey: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (dropped member, kept file)
    unmatched: list[Pick] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(category for _, category, _, _ in self.kept)

    def summary(self) -> str:
        per = ", ".join(f"{c} {self.counts()[c]}" for c in CATEGORIES)
        dropped = (f"dropped {len(self.duplicates)} duplicates, {len(self.grey)} grey, {len(self.too_small)} too small"
                   + (f", {len(self.unreadable)} unreadable" if self.unreadable else ""))
        return f"{len(self.kept)} photos ({per}); {dropped}"


def _safe_stem(member: str) -> str:
    """``usr/.../erase.rcc!/gcompris/.../cheetah.webp`` -> ``erase-cheetah``: short, unique, filesystem-safe."""
    parts = member.split("!")
    stem = Path(parts[-1]).stem
    if len(parts) > 1:
        stem = f"{Path(parts[0]).stem}-{stem}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


@dataclass(frozen=True)
class _Limits:
    """What a picture must pass to be kept, and the size it is kept at (see :func:`assemble`)."""

    min_side: int
    max_side: int
    min_colour: float
    max_distance: int


@dataclass
class _Build:
    """One :func:`assemble` run's state: the report so far and the hashes of the photos kept."""

    folder: Path
    limits: _Limits
    short: dict[str, str]  # package name -> its short name in file names
    report: PhotoSetReport = field(default_factory=PhotoSetReport)
    hashes: list[tuple[int, str]] = field(default_factory=list)  # (perceptual hash, kept file)
    seen: set[tuple[str, str]] = field(default_factory=set)  # (package, member) already taken by a pick


def assemble(folder: str | Path, roots: Mapping[str, Path], picks: Sequence[Pick] = PICKS, *,
             packages: Sequence[Package] = PACKAGES, versions: Mapping[str, str] | None = None,
             min_side: int = 256, max_side: int = 512, min_colour: float = 10.0,
             max_distance: int = 10) -> PhotoSetReport:
    """Write the photos that ``picks`` name in the unpacked packages ``roots`` into ``folder``.

    Filters in this order: readable, short side >= ``min_side``, colourfulness >=
    ``min_colour``, perceptual hash farther than ``max_distance`` bits from every photo kept
    so far (the earlier pick wins, so the table's order is the priority). Kept photos are
    scaled so their short side is at most ``max_side`` and saved as JPEG under
    ``folder/<category>/``. Files a previous run listed in ``SOURCES.tsv`` and this run
    does not keep are removed; nothing else in ``folder`` is touched.
    """
    build = _Build(Path(folder), _Limits(min_side, max_side, min_colour, max_distance),
                   {p.name: p.short for p in packages})
    for pick in picks:
        if pick.category not in CATEGORIES:
            raise PhotoSetError(f"pick {pick.pattern!r} has category {pick.category!r}; use one of {', '.join(CATEGORIES)}")
        if pick.package in roots and not _take_pick(build, pick, roots[pick.package]):
            build.report.unmatched.append(pick)
    _write_listing(build.folder, build.report, versions or {})
    _copy_licences(build.folder, roots)
    return build.report


def _take_pick(build: _Build, pick: Pick, root: Path) -> bool:
    """Offer every member ``pick`` matches in its package; False when it matches none."""
    matched = False
    for member, blob in iter_members(root, pick.pattern):
        matched = True
        if (pick.package, member) in build.seen:  # an earlier, more specific pick took it
            continue
        build.seen.add((pick.package, member))
        _offer(build, pick, member, blob)
    return matched


def _decode(blob: bytes):
    """The picture upright (EXIF orientation applied) in RGB, or None when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except Exception:  # noqa: BLE001 - any undecodable file is skipped and counted
        return None


def _offer(build: _Build, pick: Pick, member: str, blob: bytes) -> None:
    """Keep one picture if it passes the filters (:func:`assemble`), else count why it was dropped."""
    report, limits = build.report, build.limits
    img = _decode(blob)
    if img is None:
        report.unreadable.append(member)
        return
    if pick.rotate:
        img = img.rotate(-pick.rotate, expand=True)
    if min(img.size) < limits.min_side:
        report.too_small.append(member)
        return
    thumb = img.copy()
    thumb.thumbnail((128, 128))
    small = np.asarray(thumb)
    if colourfulness(small) < limits.min_colour:
        report.grey.append(member)
        return
    h = perceptual_hash(small)
    twin = next((name for other, name in build.hashes if hamming(h, other) <= limits.max_distance), None)
    if twin is not None:
        report.duplicates.append((member, twin))
        return
    rel = f"{pick.category}/{build.short.get(pick.package, pick.package)}-{_safe_stem(member)}.jpg"
    _save(img, build.folder / rel, limits.max_side)
    build.hashes.append((h, rel))
    report.kept.append((rel, pick.category, pick.package, member))


def _save(img, out: Path, max_side: int) -> None:
    """Save as JPEG, scaled down so the short side is at most ``max_side``."""
    from PIL import Image

    scale = max_side / min(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, quality=92)


def _write_listing(folder: Path, report: PhotoSetReport, versions: Mapping[str, str]) -> None:
    """Remove what the previous ``SOURCES.tsv`` listed and this run dropped, then write the new listing."""
    listing = folder / "SOURCES.tsv"
    if listing.exists():
        kept = {rel for rel, *_ in report.kept}
        with listing.open(newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                old = row.get("file", "")
                if old and old not in kept and not Path(old).is_absolute() and ".." not in Path(old).parts:
                    (folder / old).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    with listing.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "category", "package", "version", "member"])
        for rel, category, package, member in report.kept:
            writer.writerow([rel, category, package, versions.get(package, ""), member])


def _copy_licences(folder: Path, roots: Mapping[str, Path]) -> None:
    """Each package's copyright file (the photos' licences and credits) into ``folder/licences/``."""
    for package, root in roots.items():
        copyright_file = root / "usr/share/doc" / package / "copyright"
        if copyright_file.is_file():
            (folder / "licences").mkdir(exist_ok=True)
            shutil.copyfile(copyright_file, folder / "licences" / f"{package}.copyright")


def contact_sheet(folder: str | Path, out: str | Path, *, thumb: int = 64, columns: int = 20) -> Path:
    """One picture of the whole set, a row block per category, to check coverage by eye.

    Thumbnails are centre-cropped squares; the sheet is quantised to 256 colours so it
    stays small enough to keep in the repository.
    """
    from PIL import Image, ImageDraw, ImageOps

    folder = Path(folder)
    blocks = [(c, sorted((folder / c).glob("*.jpg"))) for c in CATEGORIES]
    label = 14
    rows = sum(-(-len(files) // columns) for _, files in blocks if files)
    sheet = Image.new("RGB", (columns * thumb, rows * thumb + label * len(blocks)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for category, files in blocks:
        draw.text((2, y + 1), f"{category} ({len(files)})", fill="black")
        y += label
        for i, path in enumerate(files):
            with Image.open(path) as im:
                im.draft("RGB", (thumb * 2, thumb * 2))
                tile = ImageOps.fit(im.convert("RGB"), (thumb, thumb), Image.Resampling.LANCZOS)
            sheet.paste(tile, ((i % columns) * thumb, y + (i // columns) * thumb))
        y += -(-len(files) // columns) * thumb
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def _deb_version(deb: Path) -> str:
    parts = deb.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else ""


def build_photo_set(folder: str | Path, *, cache: Path | None = None, picks: Sequence[Pick] = PICKS,
                    packages: Sequence[Package] = PACKAGES, log=None) -> PhotoSetReport:
    """Fetch the packages (cached), unpack them into a temporary folder and :func:`assemble` the set."""
    cache = cache or default_cache()
    needed = [p.name for p in packages if any(k.package == p.name for k in picks)]
    debs = fetch_debs(needed, cache)
    with tempfile.TemporaryDirectory(prefix="styletune-photos-") as tmp:
        roots = {}
        for name, deb in debs.items():
            if log:
                log(f"unpacking {deb.name}")
            roots[name] = unpack(deb, Path(tmp) / name)
        return assemble(folder, roots, picks, packages=packages,
                        versions={n: _deb_version(d) for n, d in debs.items()})


# --------------------------------------------------------------------------- the offline fallback

#: scikit-image's bundled pictures that are photographs (colour or grey), minus the preview set.
SOURCES = ("motorcycle_left.png", "motorcycle_right.png", "camera.png", "grass.png", "gravel.png", "brick.png",
           "moon.png", "coins.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "page.png")
PREVIEW_SET = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def make_sample_photos(folder: str | Path, count: int = 300, *, seed: int = 0, include_previews: bool = False,
                       min_side: int = 128, max_side: int = 400) -> list[Path]:
    """Write ``count`` random crops (JPEG) of scikit-image's pictures into ``folder`` and return their paths.

    Offline and deterministic, so tests and benchmarks of the training machinery have data
    on any machine; the pictures are mostly textures and greyscale, so this is not a
    training set (use :func:`build_photo_set`). The four preview photos are left out by
    default, so previews show pictures the network never trained on.
    """
    import skimage.data

    from nst.images import load_image, resize, save_image

    base = Path(skimage.data.__file__).parent
    names = SOURCES + (PREVIEW_SET if include_previews else ())
    pictures = [load_image(base / n) for n in names if (base / n).exists()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        img = pictures[int(rng.integers(len(pictures)))]
        h, w = img.shape[:2]
        side = int(rng.integers(min(max(96, min(h, w) // 4), min(h, w)), min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[top:top + side, left:left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        target = int(rng.integers(min_side, max_side + 1))
        crop = resize(np.ascontiguousarray(crop), (target, target))
        out.append(save_image(Path(folder) / f"sample_{i:04d}.jpg", crop))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.sample_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--source", choices=("debian", "skimage"), default=None,
                        help="debian: real photos from Debian packages (the default); skimage: offline crops "
                             "(the default when --count is given, as before the Debian set existed)")
    parser.add_argument("--count", type=int, default=None, help="skimage: number of crops (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="skimage only")
    parser.add_argument("--include-previews", action="store_true", help="skimage only: also crop the preview photos")
    parser.add_argument("--cache", type=Path, default=None, help=f"where .deb files are kept (default {default_cache()})")
    args = parser.parse_args(argv)
    prog = "sample_data"
    if args.count is not None and args.count < 1:
        sys.stderr.write(f"{prog}: error: --count {args.count}: give a positive number\n")
        return 2
    source = args.source or ("skimage" if args.count is not None else "debian")
    if source == "debian" and args.count is not None:
        sys.stderr.write(f"{prog}: error: --count applies to --source skimage; the Debian set is fixed\n")
        return 2
    if source == "skimage":
        paths = make_sample_photos(args.folder, args.count or 300, seed=args.seed,
                                   include_previews=args.include_previews)
        print(f"wrote {len(paths)} crops to {args.folder}")
        return 0
    target = Path(args.folder)
    if target.exists() and not target.is_dir():
        sys.stderr.write(f"{prog}: error: {target} is a file; give a folder for the photos\n")
        return 2
    started = time.monotonic()
    try:
        report = build_photo_set(target, cache=args.cache, log=lambda m: print(m, file=sys.stderr))
    except StyletuneError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    for pick in report.unmatched:
        sys.stderr.write(f"{prog}: note: nothing in {pick.package} matches {pick.pattern} (package layout changed?)\n")
    print(f"wrote {report.summary()} to {target} in {time.monotonic() - started:.0f} s; sources and licences in "
          f"{target / 'SOURCES.tsv'} and {target / 'licences'}/")
    if len(report.kept) < MIN_PHOTOS:
        sys.stderr.write(f"{prog}: note: only {len(report.kept)} photos (expected at least {MIN_PHOTOS}); "
                         "a package's layout changed, see the notes above\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
