"""``tuner preview`` speed: seconds per photo at 512 and 1024 px, beside the naive single 384x384 pass.

Usage::

    python bench/preview_speed.py                       # scikit-image's coffee photo, Starry Night
    python bench/preview_speed.py --photo photo.jpg --style examples/wave.jpg --rounds 7
    python bench/preview_speed.py --image docs/images/preview_fits.png   # also write the comparison picture

The reference is the first version of ``nst.arbitrary.stylize``, as shipped: the photo
stretched to the export's 384x384 input, Magenta's int8 transformer file run unchanged, and
the result stretched back. It is timed in the same interleaved rounds as ours (``whole
384``: the float form of the transformer with its height and width freed, at the photo's
aspect, long side 384) and as ``stretch 384``, the reference's geometry with the float
transformer, which separates what the float form costs from what the geometry saves. The
other ways of meeting the fixed input are timed beside them: reflection padding to the
384 square (``pad``), overlapping 384 px tiles of the photo at its full size (``tiles``),
and the whole photo at full size in one pass (``whole full``). Target: at most
1 s per photo up to 1024 px on 2 cores, model loading aside.

Besides time, two numbers say what each way does to the picture:

``stroke aspect``
    the result's mean horizontal over mean vertical luminance gradient, divided by the same
    for ``whole`` at the same working size: 1 = strokes shaped as the network paints them;
    below 1 = strokes drawn out sideways (``stretch`` on a landscape photo).
``vs whole``
    mean absolute difference (0-1 pixels) to ``whole`` at the same working size: what
    padding's statistics or tiles' seams change.

The ``predict`` row is the style network alone (one painting), which ``tuner preview``
adds once per painting (twice more with ``--strength`` below 1: the photo's own vector).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/preview_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import format_table, interleaved_medians, machine_summary  # noqa: E402
from nst.cliutil import OneLineParser, int_in, run_main  # noqa: E402


def _stroke_aspect(img) -> float:
    import numpy as np

    lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.mean(np.abs(np.diff(lum, axis=1))) / max(np.mean(np.abs(np.diff(lum, axis=0))), 1e-9))


REFERENCE = "stretch 384, int8 (reference)"


def _shipped_transformer():
    """The first ``stylize``: the int8 file as shipped, on the photo stretched to its 384x384 input and back."""
    import numpy as np
    import onnxruntime as ort

    from nst import arbitrary
    from nst.images import resize

    session = ort.InferenceSession(str(arbitrary.model_path("arbitrary_transform")), providers=["CPUExecutionProvider"])
    side = arbitrary.CONTENT_SIZE

    def paint(img, vector):
        h, w = img.shape[:2]
        feeds = {s.name: (np.asarray(vector, np.float32).reshape(s.shape) if s.shape[-1] == arbitrary.VECTOR_SIZE
                          else resize(img, (side, side))[None]) for s in session.get_inputs()}
        return resize(np.clip(session.run(None, feeds)[0][0], 0.0, 1.0), (w, h))

    return paint


def _bench(args: argparse.Namespace) -> int:
    import numpy as np
    import onnxruntime

    from nst import arbitrary
    from nst.images import bundled_photos, load_image, resize_longest

    photo_path = args.photo or bundled_photos().get("coffee")
    if photo_path is None:
        raise SystemExit("no photo: pass --photo")
    photo = load_image(photo_path)
    painting = load_image(args.style)
    for name in arbitrary.MODELS:
        arbitrary.session(name)  # model loading aside, as the target says
    shipped = _shipped_transformer()
    vector = arbitrary.style_vector(painting)
    print(machine_summary() + f", onnxruntime {onnxruntime.__version__}")
    print(f"photo {Path(photo_path).name} ({photo.shape[1]}x{photo.shape[0]}), painting {Path(args.style).name}, "
          f"{args.rounds} interleaved rounds")
    rows = []
    pictures = {}
    for side in args.sizes:
        img = resize_longest(photo, side)
        h, w = img.shape[:2]
        ways = {
            "stretch 384, float": dict(fit="stretch"),
            "whole 384 (ours)": dict(fit="whole"),
            "pad 384": dict(fit="pad"),
            f"tiles {side}": dict(fit="tiles", side=side),
            f"whole {side}": dict(fit="whole", side=side),
        }
        fns = {REFERENCE: lambda img=img: shipped(img, vector)}
        fns.update({name: (lambda kw=kw, img=img: arbitrary.stylize(img, vector, **kw)) for name, kw in ways.items()})
        fns["predict (one painting)"] = lambda: arbitrary.style_vector(painting)
        times = interleaved_medians(fns, rounds=args.rounds, warmup=1)
        outs = {REFERENCE: shipped(img, vector)}
        outs.update({name: arbitrary.stylize(img, vector, **kw) for name, kw in ways.items()})
        pictures[side] = (img, outs)
        ref = times[REFERENCE]
        for name, seconds in times.items():
            row = [f"{w}x{h}", name, f"{seconds:.3f}", f"{seconds / ref:.2f}"]
            if name in outs:
                same = outs["whole 384 (ours)"] if "384" in name else outs[f"whole {side}"]
                row += [f"{_stroke_aspect(outs[name]) / _stroke_aspect(same):.2f}",
                        f"{np.abs(outs[name] - same).mean():.3f}"]
            else:
                row += ["", ""]
            rows.append(row)
    print(format_table(["photo", "way", "median s", "x reference", "stroke aspect", "vs whole"], rows))
    print("x reference: time over the shipped int8 file on the photo stretched to 384x384, in the same rounds; "
          "stroke aspect and vs whole: "
          "against whole at the same working size (see the module docstring)")
    if args.image:
        _picture(args.image, pictures[max(pictures)])
    return 0


def _picture(path: str, pair) -> None:
    """A strip of 320 px crops from the largest size: photo, then each way, left to right."""
    import numpy as np

    from nst.images import save_image

    img, outs = pair
    h, w = img.shape[:2]
    top, left = max(0, h // 2 - 160), max(0, w // 2 - 320)
    crops = [img[top:top + 320, left:left + 320]] + [o[top:top + 320, left:left + 320] for o in outs.values()]
    gap = np.ones((crops[0].shape[0], 6, 3), np.float32)
    strip = [c for pair_ in zip(crops, [gap] * len(crops), strict=True) for c in pair_][:-1]
    save_image(path, np.concatenate(strip, axis=1))
    print(f"wrote {path}: photo, " + ", ".join(outs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="preview_speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", help="the photo (default: scikit-image's coffee)")
    parser.add_argument("--style", default="examples/starry_night.jpg", help="the painting")
    parser.add_argument("--sizes", type=int_in(64, 4096, "--sizes"), nargs="+", default=[512, 1024],
                        help="long sides to test (default 512 1024)")
    parser.add_argument("--rounds", type=int_in(1, 50, "--rounds"), default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--image", help="also write a strip of crops comparing the ways at the largest size")
    parser.set_defaults(func=_bench)
    return run_main("preview_speed", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
