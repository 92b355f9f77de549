"""``tuner preview``: any painting onto a photo with Magenta's arbitrary network (real ONNX files, no training).

Accepted: the result keeps the photo's size, mixing and strength do what they say.
Refused (issue #11, "Bad input"): one line on stderr, exit 2, no output file written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst import arbitrary
from nst.images import load_image, save_image
from tests.conftest import synthetic_painting, synthetic_photo
from tuner.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("preview")
    save_image(root / "a.png", synthetic_painting(96, seed=1))
    save_image(root / "b.png", synthetic_painting(96, seed=9)[:, :, ::-1].copy())
    save_image(root / "photo.png", synthetic_photo(60, seed=2, width=90))
    (root / "broken.jpg").write_text("not a picture at all\n" * 10)
    (root / "models_corrupt").mkdir()
    for name in arbitrary.MODELS:
        (root / "models_corrupt" / f"{name}.onnx").write_bytes(os.urandom(2048))
    (root / "models_empty").mkdir()
    return root


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_writes_a_result_of_the_photos_size(files, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, stdout, err = run(["preview", "--style", str(files / "a.png"), "--content", str(files / "photo.png"),
                             "-o", str(out)], capsys)
    assert code == 0, err
    assert "wrote" in stdout and "90x60" in stdout
    result, photo = load_image(out), load_image(files / "photo.png")
    assert result.shape == photo.shape
    assert np.abs(result - photo).mean() > 0.02


def test_mix_0_is_the_first_painting_and_mix_1_the_second(files, tmp_path, capsys):
    base = ["--content", str(files / "photo.png")]
    a, b = str(files / "a.png"), str(files / "b.png")
    for name, argv in {"a": ["--style", a], "b": ["--style", b], "mix0": ["--style", a, "--style", b, "--mix", "0"],
                       "mix1": ["--style", a, "--style", b, "--mix", "1"],
                       "half": ["--style", a, "--style", b]}.items():
        assert run(["preview", *argv, *base, "-o", str(tmp_path / f"{name}.png")], capsys)[0] == 0
    img = {n: load_image(tmp_path / f"{n}.png") for n in ("a", "b", "mix0", "mix1", "half")}
    np.testing.assert_array_equal(img["mix0"], img["a"])
    np.testing.assert_array_equal(img["mix1"], img["b"])
    assert np.abs(img["a"] - img["b"]).mean() > 0.02  # the two paintings really differ
    assert 0 < np.abs(img["half"] - img["a"]).mean() < np.abs(img["b"] - img["a"]).mean()


def test_strength_moves_the_result_towards_the_photo(files, tmp_path, capsys):
    photo = load_image(files / "photo.png")
    dist = {}
    for s in ("1", "0.5", "0"):
        out = tmp_path / f"s{s}.png"
        assert run(["preview", "--style", str(files / "a.png"), "--strength", s, "--content", str(files / "photo.png"),
                    "-o", str(out)], capsys)[0] == 0
        dist[s] = np.abs(load_image(out) - photo).mean()
    assert dist["0"] < dist["0.5"] < dist["1"]


BAD = {  # name -> (extra argv, environment overrides, what the one line says)
    "unreadable painting": (["--style", "{f}/broken.jpg"], {}, "not a recognised image"),
    "missing painting": (["--style", "{f}/nosuch.jpg"], {}, "no such file"),
    "missing model file": (["--style", "{f}/a.png"], {"STYLETUNE_ARBITRARY_MODELS": "{f}/models_empty"},
                           "arbitrary_predict.onnx is missing"),
    "corrupt model file": (["--style", "{f}/a.png"], {"STYLETUNE_ARBITRARY_MODELS": "{f}/models_corrupt"},
                           "arbitrary_predict.onnx is corrupt"),
    "--mix above 1": (["--style", "{f}/a.png", "--style", "{f}/b.png", "--mix", "1.5"], {},
                      "--mix must be between 0 and 1, not 1.5"),
    "--mix below 0": (["--style", "{f}/a.png", "--style", "{f}/b.png", "--mix", "-0.1"], {},
                      "--mix must be between 0 and 1, not -0.1"),
    "--mix not a number": (["--style", "{f}/a.png", "--style", "{f}/b.png", "--mix", "lots"], {},
                           "--mix must be a number, not 'lots'"),
    "--strength above 1": (["--style", "{f}/a.png", "--strength", "2"], {}, "--strength must be between 0 and 1, not 2"),
    "--strength below 0": (["--style", "{f}/a.png", "--strength", "-1"], {}, "--strength must be between 0 and 1, not -1"),
    "--mix without a second painting": (["--style", "{f}/a.png", "--mix", "0.3"], {}, "--mix needs a second painting"),
    "three paintings": (["--style", "{f}/a.png", "--style", "{f}/b.png", "--style", "{f}/a.png"], {},
                        "at most two paintings"),
    "--size too small": (["--style", "{f}/a.png", "--size", "8"], {}, "--size must be between 64 and 2048, not 8"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_exit_2_and_no_file(name, files, tmp_path, capsys, monkeypatch):
    extra, env, says = BAD[name]
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(f=files))
    out = tmp_path / "out.png"
    argv = ["preview", *[a.format(f=files) for a in extra], "--content", str(files / "photo.png"), "-o", str(out)]
    code, stdout, err = run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("tuner") and ": error: " in lines[0], err
    assert says in lines[0], lines[0]
    assert "Traceback" not in err and stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _subprocess(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tuner")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tuner.cli"]
    return subprocess.run([*cmd, *argv], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_a_corrupt_model_reaches_a_terminal_as_one_line(files, tmp_path):
    """onnxruntime and protobuf print nothing of their own: the console script shows just our line."""
    proc = _subprocess(["preview", "--style", str(files / "a.png"), "--content", str(files / "photo.png"),
                        "-o", str(tmp_path / "out.png")], {"STYLETUNE_ARBITRARY_MODELS": str(files / "models_corrupt")})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is corrupt" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.png").exists()


def test_preview_help_loads_neither_onnxruntime_nor_tensorflow():
    code = ("import sys; from tuner.cli import main\n"
            "try:\n    main(['preview', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('onnxruntime', 'onnx', 'tensorflow', 'keras') if m in sys.modules]\n"
            "sys.stderr.write(repr(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "--strength" in proc.stdout and "examples:" in proc.stdout
    assert proc.stderr.strip().endswith("[]"), proc.stderr


# -- the same network as the study's baseline, in `tuner show` ------------------------------------


def test_show_prints_the_stored_baseline_without_recomputing_it(tmp_path, capsys, monkeypatch):
    import tuner.baseline
    from tests.studyfactory import make_study
    from tuner.reader import load_study, open_storage

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=3, n_pruned=0, n_fail=0, baseline=True)
    monkeypatch.setattr(tuner.baseline, "compute_baseline", lambda *a, **k: pytest.fail("computed again"))
    base = tuner.baseline.read_baseline(load_study(open_storage(url), "fixture").user_attrs)
    code, out, err = run(["show", "fixture", "--storage", url], capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith("off-the-shelf baseline ("))
    assert line.startswith("off-the-shelf baseline (Magenta arbitrary network, no training): ")
    assert f"style {base.scores['style']:.3f}, content {base.scores['content']:.3f}" in line
    assert "of 3 feasible trial(s) beat it on both scores" in line


def test_show_computes_a_missing_baseline_once_and_no_baseline_leaves_it_alone(tmp_path, capsys, monkeypatch):
    import tuner.baseline
    from tests.studyfactory import make_study
    from tuner.reader import load_study, open_storage

    url = make_study(f"sqlite:///{tmp_path}/studies.db", n_complete=2, n_pruned=0, n_fail=0)
    code, out, _ = run(["show", "fixture", "--storage", url, "--no-baseline"], capsys)
    assert code == 0 and "not computed yet" in out
    assert "baseline" not in load_study(open_storage(url), "fixture").user_attrs
    # The fixture's pixel judge cannot be rebuilt: show still works and says why, in its one line.
    code, out, _ = run(["show", "fixture", "--storage", url], capsys)
    assert code == 0 and "unavailable (the study was judged by fixture-pixels v1" in out
    calls = []

    def fake(record, url_, artifacts=None):
        calls.append(1)
        photos = [np.full((48, 48, 3), 0.5, np.float32) for _ in record["content_names"]]
        base = tuner.baseline.Baseline(scores={"style": 9.0, "content": 9.0, "noise": 0.5}, per_photo={}, artifacts={},
                                       feasible=True, side=384, seconds=0.1)
        return base, photos, photos[0]

    monkeypatch.setattr(tuner.baseline, "compute_baseline", fake)
    for _ in range(2):
        code, out, _ = run(["show", "fixture", "--storage", url], capsys)
        assert code == 0 and "2 of 2 feasible trial(s) beat it on both scores" in out
    assert calls == [1]
    stored = tuner.baseline.read_baseline(load_study(open_storage(url), "fixture").user_attrs)
    assert stored.scores["style"] == 9.0 and set(stored.artifacts) == {"photo0", "photo1", "sheet"}
