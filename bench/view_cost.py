"""What the view size adds to a network-proxy trial: painting the test photos there, and judging them there.

Usage::

    python -m bench.view_cost                       # default config, 2 photos, 30 steps, view 512 px
    python -m bench.view_cost --view 1024 --repeats 5

Runs the same trial as ``tuner search`` runs it (the default StyleConfig, the bundled
photos, 128 px crops at the paint side, the default judge), interleaved three ways, and
prints the median seconds of each and their ratio to the first:

* the reference: no view-size pictures, the final pictures judged at the proxy size
  (what a trial cost before the gallery showed the view size);
* with the view-size pictures, still judged at the proxy size (``--judge-at proxy``);
* with the view-size pictures, judged on them (``--judge-at view``, the default).
"""

from __future__ import annotations

import argparse
import statistics
import time

ARMS = ("proxy only, judged at the proxy size (reference)", "+ {n} pictures at {v} px, judged at the proxy size",
        "+ {n} pictures at {v} px, judged on them")


def measure(view_side: int, steps: int, photos: int, size: int, repeats: int, paint_side: int = 384,
            judge_network: str = "magenta") -> list[float]:
    """Median seconds of one trial for each of :data:`ARMS`."""
    from pathlib import Path

    import numpy as np

    from nst.config import default_config
    from nst.images import bundled_photos, center_crop_square, load_image, resize_each
    from nst.judge import Judge, JudgeSpec
    from nst.netproxy import tune_network

    paths = list(bundled_photos().values())[:photos]
    loaded = [load_image(p) for p in paths]
    # the tuner's cap: no larger than the view, nor than the smallest photo's short side
    side = min(paint_side, view_side, *(min(im.shape[:2]) for im in loaded)) // 4 * 4
    paint = np.stack([center_crop_square(im, side) for im in loaded]) if side > size else None
    batch = np.stack([center_crop_square(im, size) for im in loaded])
    view = [center_crop_square(im, view_side) for im in loaded]
    painting = load_image(Path(__file__).resolve().parent.parent / "examples" / "monet.jpg")
    spec = JudgeSpec.for_network(judge_network)
    at_proxy, at_view = Judge(spec, batch, painting), Judge(spec, np.stack(view), painting)
    config = default_config()
    contents, crop = (paint, size) if paint is not None else (batch, None)

    def trial(with_view: bool, judged_at_view: bool) -> None:
        result = tune_network(contents, painting, config, steps=steps, view=view if with_view else (), crop=crop,
                              image_steps=())
        images = resize_each(result.images, batch.shape[1:3]) if crop else result.images
        if judged_at_view:
            at_view.score(np.stack(result.view_images)).means()
        else:
            at_proxy.score(images).means()

    trial(True, True)  # build and trace once, outside the clock
    runs: list[list[float]] = [[], [], []]
    for _ in range(repeats):
        for times, (with_view, judged) in zip(runs, ((False, False), (True, False), (True, True)), strict=True):
            started = time.perf_counter()
            trial(with_view, judged)
            times.append(time.perf_counter() - started)
    return [statistics.median(t) for t in runs]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--view", type=int, default=512, help="view size, long side in px (default 512)")
    p.add_argument("--steps", type=int, default=30, help="proxy steps (default 30, the demo's)")
    p.add_argument("--photos", type=int, default=2)
    p.add_argument("--size", type=int, default=128, help="proxy size (default 128)")
    p.add_argument("--paint-side", type=int, default=384, help="the side the network paints at (default 384)")
    p.add_argument("--judge-network", default="magenta", help="the judge's network (default magenta; tests: tiny)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    medians = measure(a.view, a.steps, a.photos, a.size, a.repeats, a.paint_side, a.judge_network)
    print(f"{'trial':<52} {'median s':>9} {'ratio':>6}")
    for arm, m in zip(ARMS, medians, strict=True):
        print(f"{arm.format(n=a.photos, v=a.view):<52} {m:>9.2f} {m / medians[0]:>5.2f}x")
    print(f"ratio of today's default (view pictures, judged on them): {medians[2] / medians[0]:.2f}x (budget 1.30x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
