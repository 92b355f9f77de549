"""``scale_side``: crops cut from photos resized to a larger side, as the network proxy's ``paint_side``.

A network trained on crops of 384 px pictures learns strokes at the scale of a 384 px
picture, so the style targets, the cached features, the previews and ``trainer stylize``
must all follow that side. Tiny networks and photos of a few dozen pixels, as elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nst.errors import ConfigError
from nst.images import save_image
from tests.conftest import TINY_CONFIG, synthetic_painting, synthetic_photo
from trainer.settings import Settings, preview_side_of, work_side_of


def ramp_photo(side: int) -> np.ndarray:
    """Red rises left to right and green top to bottom, each from 0 to 1: a crop's range tells its share of the photo."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / (side - 1)
    return np.stack([xx, yy, np.full_like(xx, 0.5)], axis=-1)


def new_run(tmp_path: Path, name: str = "run", **settings):
    from trainer.data import scan_photos
    from trainer.fit import create_run
    from trainer.runs import RunFolder

    data = tmp_path / "data"
    if not data.exists():
        for i in range(3):
            save_image(data / f"p{i}.png", synthetic_photo(48, seed=i, width=56))
    painting = save_image(tmp_path / "painting.png", synthetic_painting(64))
    kw = {"arch": "johnson", "width": 0.125, "size": 32, "batch": 2, "steps": 2, "lr": 1e-2, "preview_every": 1000,
          **settings}
    run = RunFolder(tmp_path / "runs" / name)
    create_run(run, Settings(data=str(data), **kw), TINY_CONFIG, style_bytes=painting.read_bytes(), style_suffix=".png",
               source={"kind": "config", "spec": "test", "study": None, "trial": None, "storage": None, "judge": None},
               photos={"photo": synthetic_photo(40, seed=9)}, scan=scan_photos(data, progress=False))
    return run


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale_side", [16, 5000, -1])
def test_a_scale_side_outside_the_crop_size_and_4096_is_a_one_line_error(scale_side):
    with pytest.raises(ConfigError) as err:
        Settings(data="d", size=32, scale_side=scale_side)
    message = str(err.value)
    assert "\n" not in message and "--scale-side" in message and str(scale_side) in message


def test_the_scale_side_round_trips_through_run_json_and_old_runs_read_as_zero():
    settings = Settings(data="d", size=32, scale_side=96)
    assert Settings.from_dict(json.loads(json.dumps(asdict(settings)))) == settings
    old = {k: v for k, v in asdict(settings).items() if k != "scale_side"}  # a run.json from before scale_side
    assert Settings.from_dict(old).scale_side == 0
    assert (work_side_of(old), preview_side_of(old)) == (32, 32)
    assert (settings.work_side, settings.preview_side) == (96, 96)
    assert Settings(data="d", size=32, scale_side=96, preview_size=200).preview_side == 200


def test_resuming_an_old_run_with_scale_side_0_typed_is_not_a_change():
    from trainer.fit_command import _check_resume

    info = SimpleNamespace(name="old", settings={"size": 32, "steps": 2}, source={"kind": "config"})
    args = SimpleNamespace(from_study=None, config=None)
    _check_resume(info, args, {"scale_side": 0})  # the default: accepted
    with pytest.raises(Exception, match="--scale-side 0, not 64"):
        _check_resume(info, args, {"scale_side": 64})


# -- matching the study's proxy ----------------------------------------------------------------


def test_a_network_proxys_paint_side_becomes_the_scale_side_unless_typed():
    from trainer.recipe import RECIPES, describe_match, proxy_matched_settings

    cpu = RECIPES["cpu"].settings()
    proxy = {"kind": "network", "lr": 0.02, "steps": 50, "paint_side": 384}
    matched = proxy_matched_settings(proxy, cpu, {})
    assert matched["scale_side"] == 384 and isinstance(matched["scale_side"], int)
    line = describe_match(matched, proxy)
    assert "crops of 384 px pictures" in line and "--scale-side" in line
    assert "scale_side" not in proxy_matched_settings(proxy, cpu, {"scale_side": 0})  # typed: left alone
    assert "scale_side" not in proxy_matched_settings({**proxy, "paint_side": None}, cpu, {})  # an old study
    assert "scale_side" not in proxy_matched_settings({k: v for k, v in proxy.items() if k != "paint_side"}, cpu, {})
    assert "scale_side" not in proxy_matched_settings(proxy, {**cpu, "size": 512}, {})  # crops larger than the pictures
    assert "scale_side" not in proxy_matched_settings(proxy, RECIPES["paper"].settings(), {})  # another network
    assert "--scale-side" not in describe_match({"lr": 0.02, "steps": 50}, proxy)


def test_fit_from_a_study_with_a_paint_side_trains_on_its_scale_and_stylize_paints_there(tmp_path, capsys, monkeypatch):
    from tests.test_trainer_cli import make_study, run_cli

    data = tmp_path / "data"
    for i in range(3):
        save_image(data / f"p{i}.jpg", synthetic_photo(48, seed=i, width=60))
    url, _ = make_study(tmp_path / "studies" / "studies.db", proxy={"kind": "network", "lr": 0.03, "paint_side": 64})
    runs = tmp_path / "runs"
    code, _, err = run_cli(["fit", "--from-study", "monet:2", "--storage", url, "--data", data, "--runs-dir", runs,
                            "--recipe", "cpu", "--size", "32", "--batch", "2", "--steps", "1", "-q"], capsys)
    assert code == 0, err
    assert json.loads((runs / "monet-t2-magenta" / "run.json").read_text())["settings"]["scale_side"] == 64
    assert "crops of 64 px pictures, as the proxy's" in err and "32 px crops of 64 px pictures" in err
    # previews are made from the study's view-size photos (sharp at the work side, not enlarged
    # from the proxy size), and judged shrunk to the proxy size, where the trial was judged
    from nst.images import load_image

    previews = sorted((runs / "monet-t2-magenta" / "preview_photos").glob("*.png"))
    assert previews and all(load_image(p).shape == (96, 96, 3) for p in previews)
    scores = json.loads((runs / "monet-t2-magenta" / "scores.json").read_text())
    assert scores["size"] == 48 and "trained" in scores

    import nst.viewsize

    sides = []

    def record(paint, photo, work_side, **kw):
        sides.append(work_side)
        return np.zeros_like(photo)

    monkeypatch.setattr(nst.viewsize, "paint_at_scale", record)
    photo = save_image(tmp_path / "big.png", synthetic_photo(96, seed=4))
    for extra, side in (([], 64), (["--work-side", "48"], 48)):
        code, _, err = run_cli(["stylize", "monet-t2-magenta", photo, "--runs-dir", runs, "-o", tmp_path / "out.png",
                                "-q", *extra], capsys)
        assert code == 0, err
        assert sides.pop() == side


def test_fit_from_a_study_judged_at_the_view_size_paints_and_judges_its_results_there(tmp_path, capsys):
    """The fit's "judge ... (trial ...)" line compares like with like: a study that scored its trials on their
    view-size pictures gets a run whose results are painted as `trainer stylize` paints them, at that size."""
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec
    from tests.test_trainer_cli import make_study, run_cli

    data = tmp_path / "data"
    for i in range(3):
        save_image(data / f"p{i}.jpg", synthetic_photo(48, seed=i, width=60))
    url, _ = make_study(tmp_path / "studies" / "studies.db",
                        proxy={"kind": "network", "lr": 0.03, "paint_side": 64, "judged_at": "view"})
    runs = tmp_path / "runs"
    code, _, err = run_cli(["fit", "--from-study", "monet:2", "--storage", url, "--data", data, "--runs-dir", runs,
                            "--recipe", "cpu", "--size", "32", "--batch", "2", "--steps", "1", "-q"], capsys)
    assert code == 0, err
    run = runs / "monet-t2-magenta"
    scores = json.loads((run / "scores.json").read_text())
    assert scores["size"] == 96
    results = {p.stem: load_image(p) for p in sorted((run / "results").glob("*.png"))}
    photos = {p.stem: load_image(p) for p in sorted((run / "preview_photos").glob("*.png"))}
    assert set(results) == set(photos) and all(r.shape == (96, 96, 3) for r in results.values())
    painting = load_image(tmp_path / "studies" / "files" / "painting.png")  # make_study's painting
    judge = Judge(JudgeSpec.for_network("tiny"), np.stack(list(photos.values())), painting)
    mine = judge.score(np.stack([results[n] for n in photos])).means()
    assert scores["trained"]["content"] == pytest.approx(mine["content"], abs=0.02)


# -- data, style targets, features, previews -----------------------------------------------------


def test_crops_are_pieces_of_the_photo_resized_to_the_scale_side(tmp_path):
    import tensorflow as tf

    from trainer.data import fixed_crop, training_dataset

    path = str(save_image(tmp_path / "ramp.png", ramp_photo(64)))

    def ranges(batch):  # the red and green spans of each crop: its share of the photo's width and height
        b = np.asarray(batch)
        return np.ptp(b[..., 0], axis=(1, 2)), np.ptp(b[..., 1], axis=(1, 2))

    whole = next(iter(training_dataset([path], [False], size=32, batch=2, seed=1)))
    piece = next(iter(training_dataset([path], [False], size=32, batch=2, seed=1, scale_side=64)))
    assert whole.shape == piece.shape == (2, 32, 32, 3)
    for span in ranges(whole):  # today's behaviour: the whole photo, shrunk to the crop
        assert np.all(span > 0.9)
    for span in ranges(piece):  # half the photo each way, at its own pixels
        np.testing.assert_allclose(span, 31 / 63, atol=0.03)
    centre = fixed_crop(tf.constant(path), tf.constant(False), 32, 64)[None]
    np.testing.assert_allclose(ranges(centre), [[31 / 63], [31 / 63]], atol=0.03)
    assert abs(float(np.mean(centre[..., 0])) - 0.5) < 0.03  # the centre of the photo


def test_style_targets_features_and_previews_follow_the_scale_side(tmp_path):
    import tensorflow as tf

    from nst.gatys import style_size
    from nst.images import load_image, resize_longest
    from nst.losses import style_targets
    from nst.lossnets import get_extractor
    from trainer.fit import Trainer

    config = TINY_CONFIG
    cache = tmp_path / "cache"
    trainer = Trainer(new_run(tmp_path, scale_side=64, precompute=True, feature_cache=str(cache)), progress=False)
    ext = get_extractor(config.network, config.layers, config.pooling)
    painting = load_image(trainer.run.style_file())
    want = style_targets(ext(tf.constant(resize_longest(painting, style_size((64, 64), config.style_scale))[None])),
                         config.active_style_layers)
    crop_sized = style_targets(ext(tf.constant(resize_longest(painting, style_size((32, 32), config.style_scale))[None])),
                               config.active_style_layers)
    for name in want:
        np.testing.assert_allclose(np.asarray(trainer.grams[name]), np.asarray(want[name]), rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(np.asarray(want[n]), np.asarray(crop_sized[n]), rtol=1e-3) for n in want)

    trainer.train(until=1)  # precomputes the content features of the 64 px pictures' centre crops
    folders = [p.name for p in cache.iterdir()]
    assert folders == [f"{config.network}-{config.pooling}-{config.content_layer}-32-of64"]
    assert json.loads((cache / folders[0] / "meta.json").read_text())["scale_side"] == 64

    assert {max(p.shape[:2]) for p in trainer.preview_photos().values()} == {64}  # painted at the work side
