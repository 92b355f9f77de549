"""Training, resuming, the exact study loss, stylising in tiles, exporting: on tiny networks and 32-64 px photos."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nst.images import load_image, save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo
from trainer.data import scan_photos
from trainer.fit import Settings, Trainer, TrainingDiverged, create_run
from trainer.runs import RunFolder

REPO = Path(__file__).resolve().parents[1]


def new_run(tmp_path: Path, name: str = "run", *, arch: str = "johnson", config=TINY_CONFIG, n_photos: int = 5,
            **settings) -> RunFolder:
    """A run folder as ``trainer fit`` creates it, with synthetic photos and painting."""
    data = tmp_path / "data"
    if not data.exists():
        for i in range(n_photos):
            save_image(data / f"p{i}.png", synthetic_photo(48, seed=i, width=56))
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    kw = {"arch": arch, "width": 0.125, "size": 32, "batch": 2, "steps": 4, "lr": 1e-2, "checkpoint_every": 2,
          "preview_every": 1000, **settings}
    run = RunFolder(tmp_path / "runs" / name)
    create_run(run, Settings(data=str(data), **kw), config, style_bytes=painting.read_bytes(), style_suffix=".png",
               source={"kind": "config", "spec": "test", "study": None, "trial": None, "storage": None, "judge": None},
               photos={"photo": synthetic_photo(40, seed=9)}, scan=scan_photos(data, progress=False))
    return run


def fixed_batch() -> np.ndarray:
    return np.stack([synthetic_photo(32, seed=20 + i) for i in range(2)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run trained for 4 steps (checkpoint every step, keep 2, preview every 2), shared by several tests.

    It records the loss on a fixed batch before and after the first two steps.
    """
    from nst.judge import JudgeSpec

    tmp = tmp_path_factory.mktemp("trained")
    run = new_run(tmp, checkpoint_every=1, keep_checkpoints=2, preview_every=2, photo_skip=True)
    info = run.read_info()
    run.write_info(replace(info, source={**info.source, "judge": JudgeSpec.for_network("tiny").to_dict(),
                                         "gatys_scores": {"style": 0.3, "content": 0.4, "noise": 0.9}}))
    trainer = Trainer(run, progress=False)
    before = trainer.loss_on(fixed_batch())["loss"]
    trainer.train(until=2)
    after = trainer.loss_on(fixed_batch())["loss"]
    trainer.train(until=4)
    return trainer, before, after


def test_two_steps_lower_the_loss(trained):
    _, before, after = trained
    assert after < before


def test_loss_is_exactly_the_engine_loss_the_study_judged(tmp_path):
    """The trainer's loss equals nst.losses.config_loss with the painting scaled by nst.gatys.style_size."""
    import tensorflow as tf

    from nst.gatys import style_size
    from nst.images import resize_longest
    from nst.losses import config_loss, style_targets
    from nst.lossnets import get_extractor

    config = TINY_CONFIG.replace(style_scale=1.5, tv_weight=3.0)
    trainer = Trainer(new_run(tmp_path, config=config), progress=False)
    photos = fixed_batch()
    out = trainer.model(photos, training=False)
    ext = get_extractor(config.network, config.layers, config.pooling)
    painting = resize_longest(load_image(trainer.run.style_file()), style_size((32, 32), config.style_scale))
    grams = style_targets(ext(tf.constant(painting[None])), config.active_style_layers)
    per_item, terms = config_loss(ext(out), out, ext(tf.constant(photos))[config.content_layer], grams, config)
    got = trainer.loss_on(photos)
    assert got["loss"] == pytest.approx(float(tf.reduce_mean(per_item)), rel=1e-5)
    assert got["style"] == pytest.approx(float(tf.reduce_mean(terms["style"])), rel=1e-5)
    assert painting.shape[0] == 48  # 1.5 x the 32 px crop, as in the proxy


def test_resume_continues_from_the_saved_step_with_identical_weights(tmp_path):
    straight = Trainer(new_run(tmp_path / "a"), progress=False)
    straight.train(until=4)

    first = Trainer(new_run(tmp_path / "b"), progress=False)
    first.train(until=2)
    saved = first.model.get_weights()
    resumed = Trainer(first.run, progress=False)  # a new process would do exactly this
    assert resumed.step == 2
    assert all(np.array_equal(a, b) for a, b in zip(saved, resumed.model.get_weights(), strict=True))
    opt_a = [v.numpy() for v in first.optimizer.variables]
    opt_b = [v.numpy() for v in resumed.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(opt_a, opt_b, strict=True))
    resumed.train(until=4)
    # Same data order and optimiser state: the interrupted run ends exactly where the straight one did.
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    steps = [row["step"] for row in resumed.run.read_metrics()]
    assert steps == [1, 2, 3, 4]


def test_a_checkpoint_whose_optimiser_disagrees_with_its_step_is_refused(tmp_path):
    """The step is Adam's own counter; a file claiming another step is named, with the fix."""
    from trainer.runs import RunError

    trainer = Trainer(new_run(tmp_path), progress=False)
    trainer.train(until=2)
    saved, weights, opt_vars = trainer.run.load_checkpoint()
    trainer.run.save_checkpoint(3, weights, opt_vars)  # says step 3; the optimiser took 2 steps
    with pytest.raises(RunError, match=r"step_000003.npz: its optimiser has taken 2 steps, not 3; delete it"):
        Trainer(trainer.run, progress=False)
    trainer.run.checkpoint_file(3).unlink()
    assert Trainer(trainer.run, progress=False).step == saved == 2


def test_checkpoints_are_pruned_and_readable_without_pickle(trained):
    trainer = trained[0]
    assert trainer.run.checkpoint_steps() == [3, 4]
    with np.load(trainer.run.checkpoint_file(4), allow_pickle=False) as data:
        assert int(data["step"]) == 4
    assert not list(trainer.run.checkpoints.glob(".*"))  # no temporary files left behind


def test_diverging_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    trainer = Trainer(new_run(tmp_path), progress=False)
    trainer.train(until=2)
    trainer.optimizer.learning_rate.assign(1e38)  # the next update blows the weights up
    with pytest.raises(TrainingDiverged, match="lower --lr"):
        trainer.train(until=6)
    assert trainer.run.checkpoint_steps() == [2]
    _, weights, _ = trainer.run.load_checkpoint()
    assert all(np.isfinite(w).all() for w in weights)
    assert max(row["step"] for row in trainer.run.read_metrics()) == 2


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_finishes_the_step_checkpoints_and_raises_keyboard_interrupt(tmp_path, sig):
    import os
    import signal

    trainer = Trainer(new_run(tmp_path, checkpoint_every=100, preview_every=2), progress=False)
    # The preview at step 2 stands in for the user: the signal lands in the middle of fit.
    trainer.write_preview = lambda: os.kill(os.getpid(), getattr(signal, sig))
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(until=6)
    assert trainer.step == 2 and trainer.run.checkpoint_steps() == [2]
    assert [row["step"] for row in trainer.run.read_metrics()] == [1, 2]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers put back


def test_precomputed_features_match_and_are_reused(tmp_path):
    import tensorflow as tf

    from nst.lossnets import get_extractor
    from trainer.data import fixed_crop
    from trainer.features import precompute

    cache = tmp_path / "cache"
    trainer = Trainer(new_run(tmp_path, precompute=True, feature_cache=str(cache)), progress=False)
    trainer.train(until=2)
    files = sorted(cache.rglob("*.f16"))
    assert len(files) == len(trainer.files)
    paths, shape, computed = precompute(trainer.files, trainer.needs_pillow, TINY_CONFIG, 32, cache, progress=False)
    assert computed == 0  # every feature came from the cache
    crop = fixed_crop(tf.constant(trainer.files[0]), tf.constant(False), 32)
    want = get_extractor("tiny", ["conv2"], "avg")(crop[None])["conv2"].numpy()[0]
    got = np.frombuffer(Path(paths[0]).read_bytes(), np.float16).reshape(shape)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-2)


def test_finish_writes_previews_results_model_and_scores(trained):
    from trainer.export import load_keras

    trainer = trained[0]
    run = trainer.run
    scores = trainer.finish()
    assert sorted(p.name for p in run.previews.glob("*.png")) == ["step_000002.png", "step_000004.png"]
    assert (run.results / "photo.png").exists()
    saved = json.loads(run.scores_file.read_text())
    assert saved["gatys"] == {"style": 0.3, "content": 0.4, "noise": 0.9}
    assert set(saved["trained"]) == {"style", "content", "noise"} and saved == scores
    loaded = load_keras(run.model_file)
    x = synthetic_photo(32)[None]
    np.testing.assert_allclose(loaded(x).numpy(), trainer.model(x).numpy(), atol=1e-6)


# -- stylize -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch, skip", [("johnson", True), ("fast", False), ("magenta", True)])  # the blend: a superset of plain magenta
def test_tiles_reproduce_the_untiled_result(arch, skip):
    from trainer.nets import build_network
    from trainer.stylize import Stylizer, _pad_to

    model = build_network(arch, 0.125, seed=2, photo_skip=skip)
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in model.get_weights()])
    stylizer = Stylizer(model, arch, 0.125, photo_skip=skip)
    side = {"johnson": 200, "fast": 336, "magenta": 200}[arch]
    rng = np.random.default_rng(0)
    img = np.clip(synthetic_photo(side, seed=4) + rng.normal(0, 0.05, (side, side, 3)), 0, 1).astype(np.float32)
    whole = stylizer(img)
    tile = 2 * stylizer.margin + 16 + 2 * stylizer.factor
    padded = _pad_to(img, stylizer.factor)
    assert len(list(stylizer.tiles(padded.shape[:2], tile))) >= 4
    tiled = np.clip(stylizer.tiled(padded, tile=tile)[:side, :side], 0.0, 1.0)  # as __call__ returns it
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # Each tile normalising by its own statistics instead (what a naive tiler does) shows seams.
    naive = np.zeros_like(padded)
    for top, left, _ in stylizer.tiles(padded.shape[:2], tile):
        piece = padded[top:top + tile, left:left + tile]
        naive[top:top + tile, left:left + tile] = stylizer.model(piece[None]).numpy()[0]
    assert np.abs(naive[:side, :side] - whole).max() > 10 * 1e-4


def test_memory_budget_switches_to_tiles_without_changing_the_size():
    from trainer.nets import build_network
    from trainer.stylize import Stylizer, _pad_to

    model = build_network("johnson", 0.125, seed=2)
    small_budget = Stylizer(model, "johnson", 0.125, memory_mb=32)
    img = synthetic_photo(250, seed=1, width=301)  # odd sizes: padded, then cropped back
    assert small_budget.n_tiles(250, 301) > 1
    out = small_budget(img)
    assert out.shape == img.shape
    whole = Stylizer(model, "johnson", 0.125, memory_mb=4096)(img)
    # Statistics from a shrunk copy are an approximation; tiles normalising on their own are far worse.
    padded = _pad_to(img, small_budget.factor)
    own_stats = np.zeros_like(padded)
    weight = np.zeros(padded.shape[:2] + (1,), np.float32)
    tile = small_budget.tile_size()
    for top, left, wt in small_budget.tiles(padded.shape[:2], tile):
        piece = padded[top:top + tile, left:left + tile]
        th, tw = piece.shape[:2]
        own_stats[top:top + th, left:left + tw] += model(piece[None]).numpy()[0] * wt[:th, :tw, None]
        weight[top:top + th, left:left + tw] += wt[:th, :tw, None]
    naive_error = np.abs(own_stats / weight - _pad_to(whole, small_budget.factor))[:250, :301].mean()
    error = np.abs(out - whole).mean()
    assert error < 0.05 and error < 0.5 * naive_error


def test_preserve_colors_keeps_the_photo_chrominance_and_the_result_luminance():
    from trainer.stylize import _YIQ, preserve_colors

    photo, stylised = synthetic_photo(32, seed=1), synthetic_painting(32)
    out = preserve_colors(photo, stylised)
    inside = (out > 0.01).all(-1) & (out < 0.99).all(-1)  # away from clipping
    assert inside.mean() > 0.5
    np.testing.assert_allclose((out @ _YIQ[0])[inside], (stylised @ _YIQ[0])[inside], atol=1e-4)
    np.testing.assert_allclose((out @ _YIQ[1:].T)[inside], (photo @ _YIQ[1:].T)[inside], atol=1e-4)


# -- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["johnson", "fast"])
def test_tflite_export_matches_the_keras_network(tmp_path, trained, arch):
    from trainer.export import export, run_tflite

    if arch == "johnson":
        run, model = trained[0].run, trained[0].model
    else:
        fast = Trainer(new_run(tmp_path, arch="fast"), progress=False)
        run, model = fast.run, fast.model
    record = export(run, model, arch, "tflite", test_side=64)
    assert record["max_abs_diff"] <= record["tolerance"]
    data = Path(record["path"]).read_bytes()
    img = synthetic_photo(48, seed=3, width=64)  # another size than the check used
    np.testing.assert_allclose(run_tflite(data, img), model(img[None]).numpy()[0], atol=1e-3)
    verification = json.loads((run.export_dir / "verification.json").read_text())
    assert verification["tflite"]["max_abs_diff"] == record["max_abs_diff"]


def test_savedmodel_export_round_trip(trained):
    import tensorflow as tf

    from trainer.export import export

    trainer = trained[0]
    record = export(trainer.run, trainer.model, "johnson", "savedmodel", test_side=64)
    loaded = tf.saved_model.load(record["path"])
    img = synthetic_photo(40, width=48)[None]
    out = next(iter(loaded.signatures["serving_default"](image=tf.constant(img)).values())).numpy()
    np.testing.assert_allclose(out, trainer.model(img).numpy(), atol=1e-5)


def test_unsafe_keras_file_is_refused(tmp_path):
    import keras

    from trainer.export import ExportError, load_keras

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Lambda(lambda x: x * 2)(inp))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ExportError, match="cannot load safely"):
        load_keras(tmp_path / "lambda.keras")


# -- devices -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_mirrored_strategy_over_two_devices_matches_one_device(tmp_path):
    """Two logical CPUs under MirroredStrategy take the same step as one device (gradients summed)."""
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        sys.path.insert(0, {str(REPO)!r})
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from pathlib import Path
        from tests.conftest import synthetic_photo
        from tests.test_trainer_fit import new_run
        from trainer.fit import Trainer
        x = np.stack([synthetic_photo(32, seed=s) for s in range(2)])
        one = Trainer(new_run(Path({str(tmp_path)!r}) / "one"), progress=False)
        untrained = one.model(x).numpy()
        one.train(until=2)
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        two = Trainer(new_run(Path({str(tmp_path)!r}) / "two"), progress=False, strategy=mirrored)
        assert two.replicas == 2
        two.train(until=2)
        # Compare what the networks do, not every weight: the shift of a norm layer inside a residual
        # block has an exactly zero gradient (a later norm layer removes it), so Adam moves it by
        # +-lr on rounding noise, differently on one and two devices, without changing any output.
        worst = float(np.abs(one.model(x).numpy() - two.model(x).numpy()).max())
        assert worst < 1e-4, worst
        assert float(np.abs(one.model(x).numpy() - untrained).max()) > 1e-3  # training did change the outputs
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
