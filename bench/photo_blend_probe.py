"""The photo blend against none, on the same trials, steps and photos (issue 13).

The network proxy and ``trainer fit`` tune the normalisation layers of Magenta's
transformer and, in studies made since the blend, three more numbers:
``out = y + a * (photo - y)``, ``a`` per colour channel, starting at 0
(:class:`nst.layers.PhotoBlend`). Without them a content-heavy trial's proxy, tuned on
the study's few photos, returns them in their own colours while the network tuned on many
photos lays an average colour cast instead (docs/trainer.md, "The content-heavy corner").

For each trial this tunes the proxy on the study's photos and a second copy on batches of
4 random crops from ``--data`` with the same steps and rate, judges both on the study's
photos with the study's judge and prints the differences; ``--plain`` runs both without
the blend. Whatever proxy the study recorded, both sides are tuned here, so one study
gives both columns.

    python -m bench.photo_blend_probe --storage sqlite:///studies/studies.db --artifacts studies/artifacts \\
        --study monet-demo --trials 4,0 --data studies/photos --steps 30 [--plain] --sheet out.png
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np

from bench.common import trial_numbers


def _crops(scan, rng: random.Random, count: int, size: int) -> np.ndarray:
    """``count`` random ``size`` crops, each photo read and resized as ``trainer fit`` does (:mod:`trainer.data`)."""
    import tensorflow as tf

    from trainer.data import decode, fit_shortest

    out = []
    for _ in range(count):
        i = rng.randrange(len(scan.files))
        img = fit_shortest(decode(scan.files[i], tf.constant(scan.needs_pillow[i])), size).numpy()
        y, x = rng.randrange(img.shape[0] - size + 1), rng.randrange(img.shape[1] - size + 1)
        out.append(img[y:y + size, x:x + size])
    return np.stack(out).astype(np.float32)


def tune(painting, config, batches, photos, *, blend: bool, lr: float):
    """Adam on the trial's loss over ``batches``; returns the pictures of ``photos`` and the blend's ``a`` (zeros without it)."""
    import keras
    import tensorflow as tf

    from nst.gatys import style_size
    from nst.images import resize_longest
    from nst.losses import style_targets, total_loss
    from nst.lossnets import get_extractor
    from nst.netproxy import _pretrained_model

    ext = get_extractor(config.network, config.layers, config.pooling)
    layers = tuple(config.active_style_layers)
    grams = style_targets(ext(tf.constant(resize_longest(painting, style_size(photos.shape[1:3], config.style_scale))[None])),
                          layers)
    weights = {n: config.style_weights[n] for n in layers}
    model = _pretrained_model(painting, blend)
    variables = model.trainable_variables
    opt = keras.optimizers.Adam(lr)

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            out = model(batch, training=True)
            per_item, _ = total_loss(ext(out), out, ext(batch)[config.content_layer], grams, config.content_layer,
                                     weights, config.content_weight, config.style_weight, config.tv_weight)
            loss = tf.reduce_mean(per_item)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    for batch in batches:
        step(tf.constant(batch))
    a = model.get_layer("photo_blend").a.numpy() if blend else np.zeros(3, np.float32)
    return np.clip(model(tf.constant(photos)).numpy(), 0.0, 1.0), a


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.photo_blend_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--artifacts")
    parser.add_argument("--study", required=True)
    parser.add_argument("--trials", required=True, type=trial_numbers, help="comma-separated trial numbers")
    parser.add_argument("--data", required=True, help="training photos (not the study's)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--plain", action="store_true", help="without the blend (the product today)")
    parser.add_argument("--sheet", help="write photo | proxy | network rows here")
    args = parser.parse_args(argv)

    from bench.fidelity import judge_means, study_judge
    from nst.config import StyleConfig
    from nst.images import contact_sheet, load_image, save_image
    from nst.judge import Judge
    from trainer.data import scan_photos
    from tuner import reader

    study = reader.load_study(reader.open_storage(args.storage), args.study)
    record = reader.read_record(study)
    names = list(record.content_names)
    photos = np.stack([reader.read_image_artifact(args.storage, record.content_artifacts[n], args.artifacts)
                       for n in names]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        painting_file = Path(tmp) / "painting"
        painting_file.write_bytes(reader.read_artifact(args.storage, record.style_artifact, args.artifacts))
        painting = load_image(painting_file)
    judge = Judge(study_judge(record), photos, painting)
    scan = scan_photos(args.data, progress=False)
    rng = random.Random(0)
    rows = []
    for number in args.trials:
        config = StyleConfig.from_dict(reader.trial_record(study, number).style_config)
        proxy, a_proxy = tune(painting, config, [photos] * args.steps, photos, blend=not args.plain, lr=args.lr)
        batches = [_crops(scan, rng, 4, photos.shape[1]) for _ in range(args.steps)]
        net, a_net = tune(painting, config, batches, photos, blend=not args.plain, lr=args.lr)
        p, n = judge_means(judge, list(proxy)), judge_means(judge, list(net))
        print(f"trial {number} ({'plain' if args.plain else 'blend'}, {args.steps} steps): "
              f"proxy style {p['style']:.3f} content {p['content']:.3f}; network style {n['style']:.3f} "
              f"content {n['content']:.3f}; d style {n['style'] - p['style']:+.3f} d content "
              f"{n['content'] - p['content']:+.3f}; blend a proxy {np.round(a_proxy, 2)} network {np.round(a_net, 2)}",
              flush=True)
        rows += [[photos[j], proxy[j], net[j]] for j in range(len(names))]
    if args.sheet:
        save_image(args.sheet, contact_sheet(rows, cell=photos.shape[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
