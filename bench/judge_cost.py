"""What the judge costs at every checkpoint: ``Judge.score`` of a batch, the default judge against the three-view candidate.

Usage::

    python bench/judge_cost.py                      # 3 photos at 128 px (a study's default), examples/monet.jpg
    python bench/judge_cost.py --size 512 --photos 1

The judges are timed in interleaved rounds (:func:`bench.common.interleaved_medians`), so a
shared machine's drifting load hits them alike and the ratio stays meaningful. The
three-view judge (:meth:`nst.judge.JudgeSpec.three_views`) is the default plus one batched
ImageNet VGG16 pass to block 4 and four Gram matrices.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_test_photo_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_test_photo_args(ap, str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)

    import numpy as np

    from bench.common import format_table, interleaved_medians, machine_summary
    from nst import arbitrary
    from nst.images import load_image
    from nst.judge import Judge, JudgeSpec
    from tuner.study import content_paths, load_photos

    painting = load_image(args.style)
    photos = np.stack([p.image for p in load_photos(content_paths(None, args.photos), args.size)])
    results = np.stack([arbitrary.stylize(p, arbitrary.style_vector(painting)) for p in photos])
    specs = {f"default, {JudgeSpec().label} (Magenta + colour)": JudgeSpec(),
             "three views (+ VGG16 Gram)": JudgeSpec.three_views()}
    judges = {name: Judge(spec, photos, painting) for name, spec in specs.items()}
    medians = interleaved_medians({name: (lambda j=j: j.score(results)) for name, j in judges.items()},
                                  rounds=args.rounds)
    base = next(iter(medians.values()))
    print(machine_summary())
    print(f"Judge.score of {args.photos} results at {args.size} px, median of {args.rounds} interleaved rounds")
    print(format_table(["judge", "ms", "ratio"], [[n, f"{s * 1000:.0f}", f"{s / base:.2f}"] for n, s in medians.items()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
