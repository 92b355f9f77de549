"""What painting the test photos at the view size adds to a network-proxy trial.

Usage::

    python -m bench.view_cost                       # default config, 2 photos, 30 steps, view 512 px
    python -m bench.view_cost --view 1024 --repeats 5

Runs the same trial (the default StyleConfig, the bundled photos at the proxy size) with
and without the view-size pictures, interleaved, and prints the median seconds of each and
their ratio. The reference is the trial without them: what a trial cost before the gallery
showed the view size.
"""

from __future__ import annotations

import argparse
import statistics
import time


def measure(view_side: int, steps: int, photos: int, size: int, repeats: int, network: str | None = None):
    import numpy as np

    from nst.config import default_config
    from nst.images import bundled_photos, center_crop_square, load_image
    from nst.netproxy import tune_network

    paths = list(bundled_photos().values())[:photos]
    batch = np.stack([center_crop_square(load_image(p), size) for p in paths])
    view = [center_crop_square(load_image(p), view_side) for p in paths]
    from pathlib import Path

    painting = load_image(Path(__file__).resolve().parent.parent / "examples" / "monet.jpg")
    config = default_config()
    tune_network(batch, painting, config, steps=2)  # build and trace once, outside the clock
    plain, with_view = [], []
    for _ in range(repeats):
        for runs, v in ((plain, ()), (with_view, view)):
            started = time.perf_counter()
            tune_network(batch, painting, config, steps=steps, view=v)
            runs.append(time.perf_counter() - started)
    return statistics.median(plain), statistics.median(with_view)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--view", type=int, default=512, help="view size, long side in px (default 512)")
    p.add_argument("--steps", type=int, default=30, help="proxy steps (default 30, the demo's)")
    p.add_argument("--photos", type=int, default=2)
    p.add_argument("--size", type=int, default=128, help="proxy size (default 128)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    plain, view = measure(a.view, a.steps, a.photos, a.size, a.repeats)
    print(f"{'trial':<34} {'median s':>9}")
    print(f"{'proxy only (reference)':<34} {plain:>9.2f}")
    print(f"{f'proxy + {a.photos} pictures at {a.view} px':<34} {view:>9.2f}")
    print(f"ratio: {view / plain:.2f}x (budget 1.30x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
