"""The ``trainer`` command: --from-study on a real SQLite study, stylize, export, bad input, Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nst.images import load_image, save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo
from trainer.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--recipe", "paper", "--size", "32", "--batch", "2", "--width", "0.125", "-q"]  # johnson, shrunk


def make_study(db: Path, name: str = "monet", chosen: int | None = None, proxy: dict | None = None) -> tuple[str, dict]:
    """A study laid out as tuner.reader documents it, written with Optuna's public API only."""
    import optuna
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    from nst.judge import JudgeSpec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    store = FileSystemArtifactStore(str(db.parent / "artifacts"))
    (db.parent / "artifacts").mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=url, directions=["minimize", "minimize"])
    files = db.parent / "files"
    painting = save_image(files / "painting.png", synthetic_painting(64))
    photos = {f"photo{i}": save_image(files / f"photo{i}.png", synthetic_photo(40, seed=30 + i, width=48)) for i in range(2)}
    record = {
        "version": 1, "style_name": name,
        "style_sha256": hashlib.sha256(painting.read_bytes()).hexdigest(),
        "style_artifact": upload_artifact(artifact_store=store, file_path=str(painting), study_or_trial=study),
        "content_names": sorted(photos),
        "content_artifacts": {n: upload_artifact(artifact_store=store, file_path=str(p), study_or_trial=study)
                              for n, p in photos.items()},
        "proxy_size": 48, "steps": 10, "judge": JudgeSpec.for_network("tiny").to_dict(),
        "objectives": ["style", "content"], "tradeoff": None,
    }
    if proxy:
        record["proxy"] = proxy
    if proxy and proxy.get("paint_side"):  # such a study keeps its test photos at the view size too
        views = {n: save_image(files / f"{n}-view.png", synthetic_photo(96, seed=30 + i, width=96))
                 for i, n in enumerate(sorted(photos))}
        record["view_size"] = 96
        record["content_view_artifacts"] = {n: upload_artifact(artifact_store=store, file_path=str(p),
                                                               study_or_trial=study) for n, p in views.items()}
    study.set_user_attr("styletune", record)
    configs = {}
    for number, sw in enumerate((1e-3, 5e-2, 2e-2)):
        trial = study.ask()
        config = TINY_CONFIG.replace(style_weight=sw, tv_weight=0.5 + number)
        scores = {"style": 0.5 - 0.1 * number, "content": 0.2 + 0.05 * number, "noise": 0.9}
        trial.set_user_attr("style_config", config.to_dict())
        trial.set_user_attr("scores", scores)
        study.tell(trial, [scores["style"], scores["content"]])
        configs[number] = (config, scores)
    if chosen is not None:
        study.set_user_attr("chosen_trial", chosen)
    return url, {"record": record, "configs": configs, "painting": painting}


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    for i in range(4):
        save_image(folder / f"p{i}.jpg", synthetic_photo(48, seed=i, width=60))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    return folder


def run_cli(args, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_from_study_trains_the_trial_config_with_its_painting(tmp_path, data_dir, capsys):
    url, study = make_study(tmp_path / "studies" / "studies.db")
    runs = tmp_path / "runs"
    code, out, err = run_cli(["fit", "--from-study", "monet:2", "--storage", url, "--data", data_dir, "--runs-dir", runs,
                              "--steps", "2", "--preview-every", "2", *TINY], capsys)
    assert code == 0, err
    assert "skipped 1 unreadable" in err
    run = runs / "monet-t2-johnson"
    info = json.loads((run / "run.json").read_text())
    config, scores = study["configs"][2]
    assert info["style_config"] == config.to_dict()
    assert info["source"]["study"] == "monet" and info["source"]["trial"] == 2
    assert hashlib.sha256((run / "style.png").read_bytes()).hexdigest() == study["record"]["style_sha256"]
    assert sorted(p.stem for p in (run / "preview_photos").glob("*.png")) == ["photo0", "photo1"]
    saved = json.loads((run / "scores.json").read_text())
    assert saved["gatys"] == scores
    assert set(saved["trained"]) == {"style", "content", "noise"}
    assert "trained monet-t2-johnson to step 2" in out and "(trial " in out


def test_a_network_proxy_trial_trains_at_the_proxys_learning_rate(tmp_path, data_dir, capsys):
    url, _ = make_study(tmp_path / "studies" / "studies.db", proxy={"kind": "network", "lr": 0.03, "blend": True})
    runs = tmp_path / "runs"
    code, out, err = run_cli(["fit", "--from-study", "monet:2", "--storage", url, "--data", data_dir, "--runs-dir", runs,
                              "--recipe", "cpu", "--size", "32", "--batch", "2", "--steps", "2", "-q"], capsys)
    assert code == 0, err
    settings = json.loads((runs / "monet-t2-magenta" / "run.json").read_text())["settings"]
    assert settings["lr"] == 0.03 and settings["steps"] == 2 and settings["arch"] == "magenta"  # typed --steps wins
    assert "matched to the study's network proxy" in err and "lr 0.03" in err
    assert settings["photo_skip"] is True and "photo blend on" in err  # the proxy's blend comes along
    assert "recipe cpu: magenta + photo blend, 32 px" in err
    # Resumed to more steps, the run keeps its rate; the user is told what that does and what to do instead.
    code, out, err = run_cli(["fit", "--name", "monet-t2-magenta", "--runs-dir", runs, "--data", data_dir,
                              "--steps", "3", "-q"], capsys)
    assert code == 0, err
    assert "going on to 3 at that rate" in err and "--steps 3 spreads the rate" in err


def test_from_study_best_takes_the_chosen_trial(tmp_path):
    from trainer.source import resolve_source

    url, study = make_study(tmp_path / "s" / "studies.db", chosen=1)
    src = resolve_source(from_study="best", storage=url, artifacts=None, config=None, style=None, preview=None)
    assert src["config"] == study["configs"][1][0]
    assert src["source"]["trial"] == 1 and src["source"]["gatys_scores"] == study["configs"][1][1]
    assert np.allclose(load_image(study["painting"]), np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).open(__import__("io").BytesIO(src["style_bytes"])).convert("RGB"),
        np.float32) / 255)


@pytest.mark.parametrize("extra, message", [
    (["--size", "8"], "--size must be between 32 and 2048"),
    (["--size", "100000"], "--size must be between 32 and 2048"),
    (["--size", "100"], "multiple of 8"),
    (["--name", "../escape"], "run name '../escape' is not allowed"),
    (["--from-study", "nosuch"], "no study named 'nosuch'"),
    (["--from-study", "monet:99"], "has no trial 99"),
])
def test_bad_fit_input_is_one_line_and_exit_2(tmp_path, data_dir, capsys, extra, message):
    url, _ = make_study(tmp_path / "studies" / "studies.db")
    args = ["fit", "--storage", url, "--data", data_dir, "--runs-dir", tmp_path / "runs", "--steps", "1"]
    if "--from-study" not in extra:
        args += ["--from-study", "monet"]
    code, out, err = run_cli(args + extra, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_training_folder_without_photos_is_refused_before_anything_is_written(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY_CONFIG.to_json())
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    code, _, err = run_cli(["fit", "--config", cfg, "--style", painting, "--data", empty, "--runs-dir",
                            tmp_path / "runs", *TINY], capsys)
    assert code == 2 and "no usable training photos" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    code, _, err = run_cli(["fit", "--data", empty, "--runs-dir", tmp_path / "runs"], capsys)
    assert code == 2 and "--from-study" in err


def test_config_run_stylize_export_and_resume(tmp_path, data_dir, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY_CONFIG.to_json())
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    preview = save_image(tmp_path / "look.png", synthetic_photo(40, seed=3))
    runs = tmp_path / "runs"
    base = ["fit", "--runs-dir", runs, "--name", "cfgrun"]
    code, _, err = run_cli([*base, "--config", cfg, "--style", painting, "--preview", preview, "--data", data_dir,
                            "--steps", "2", "--network", "fast", *TINY], capsys)
    assert code == 0, err
    run = runs / "cfgrun"
    assert json.loads((run / "run.json").read_text())["network"]["arch"] == "fast"
    assert (run / "style.png").read_bytes() == painting.read_bytes()

    # Resuming refuses changed settings, and continues with more steps.
    code, _, err = run_cli([*base, "--width", "0.5"], capsys)
    assert code == 2 and "--width 0.125, not 0.5" in err
    code, _, err = run_cli([*base, "--steps", "3", "-q"], capsys)
    assert code == 0 and "resuming run cfgrun at step 2 of 3" in err
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]

    # Stylize a folder and a single file of odd sizes.
    inputs = tmp_path / "in"
    save_image(inputs / "a.png", synthetic_photo(37, seed=1, width=53))
    save_image(inputs / "sub" / "b.jpg", synthetic_photo(64, seed=2))
    code, out, err = run_cli(["stylize", "cfgrun", inputs, "--runs-dir", runs, "-o", tmp_path / "out", "-q"], capsys)
    assert code == 0, err
    assert load_image(tmp_path / "out" / "in" / "a.png").shape == (37, 53, 3)
    assert load_image(tmp_path / "out" / "in" / "sub" / "b.png").shape == (64, 64, 3)
    code, _, err = run_cli(["stylize", str(run), inputs / "a.png", "-o", tmp_path / "one.png", "--preserve-colors",
                            "-q"], capsys)
    assert code == 0, err and (tmp_path / "one.png").exists()
    (inputs / "bad.png").write_bytes(b"not a png")
    code, _, err = run_cli(["stylize", "cfgrun", inputs / "bad.png", "--runs-dir", runs, "-o", tmp_path / "bad.png"],
                           capsys)
    assert code == 2 and "bad.png" in err and not (tmp_path / "bad.png").exists()
    code, _, err = run_cli(["stylize", "nosuchrun", inputs, "--runs-dir", runs, "-o", tmp_path / "x"], capsys)
    assert code == 2 and "not a training run" in err and "cfgrun" in err

    code, out, err = run_cli(["export", "cfgrun", "--runs-dir", runs, "--format", "tflite"], capsys)
    assert code == 0, err
    assert (run / "export" / "model.tflite").stat().st_size > 1000 and "max difference" in out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_and_says_how_to_resume(tmp_path, data_dir, sig):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY_CONFIG.to_json())
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "trainer.cli", "fit", "--config", str(cfg), "--style", str(painting), "--data",
           str(data_dir), "--runs-dir", str(runs), "--name", "stopme", "--steps", "100000", "--checkpoint-every",
           "100000", *TINY]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    metrics = runs / "stopme" / "metrics.jsonl"
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 20:
            break
        time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert f"resume with: trainer fit --name stopme --runs-dir {runs}" in err
    steps = sorted(int(p.stem.split("_")[1]) for p in (runs / "stopme" / "checkpoints").glob("step_*.npz"))
    last_metric = max(json.loads(line)["step"] for line in metrics.read_text().splitlines())
    assert steps == [last_metric] and last_metric >= 20
