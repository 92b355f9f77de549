"""``tuner preview``: any painting onto a photo in about a second, with no training and no search.

Magenta's arbitrary stylisation network (Ghiasi et al. 2017, through :mod:`nst.arbitrary`)
turns a painting into a 100-number style vector and paints the photo with it. Two
paintings are mixed by interpolating their vectors; the strength is the interpolation
between the photo's own vector and the painting's, as Magenta's demos do. It is the
off-the-shelf baseline a tuned and trained network should beat (``tuner show`` and the
dashboard show it beside the trials).

Usage::

    tuner preview --style examples/monet.jpg --content photo.jpg -o out.png
    tuner preview --style examples/wave.jpg --style examples/starry_night.jpg --mix 0.3 --content photo.jpg -o out.png
    tuner preview --style examples/monet.jpg --strength 0.6 --size 768 --content photo.jpg -o out.png
"""

from __future__ import annotations

import argparse

from nst.cliutil import float_in, int_in

PREVIEW_EPILOG = """\
examples:
  tuner preview --style examples/monet.jpg --content photo.jpg -o out.png
  tuner preview --style examples/wave.jpg --style examples/starry_night.jpg --mix 0.3 --content photo.jpg -o mixed.png
  tuner preview --style examples/monet.jpg --strength 0.5 --content photo.jpg -o gentle.png
  tuner preview --style examples/starry_night.jpg --size 768 --content photo.jpg -o finer.png

The result has the photo's size and aspect. The network paints at --size pixels on the
long side (default 384, as Magenta's demos) and the result is resized to the photo:
strokes are a fixed number of the network's pixels, so a smaller --size gives bolder
strokes, a larger one finer strokes and more photo detail, at a cost that grows with its
square (384: about 0.5 s on a 2-core CPU for any photo size; 768: about 4x that).
See docs/preview.md for the trade-off against padding, stretching and tiles.
"""


def _preview(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from nst import arbitrary
    from nst.errors import StyletuneError
    from nst.images import check_output, load_image, save_image

    styles = args.style or []
    if len(styles) > 2:
        raise StyletuneError(f"preview mixes at most two paintings, got {len(styles)} --style; keep two")
    if args.mix is not None and len(styles) < 2:
        raise StyletuneError("--mix needs a second painting; add another --style B.jpg (or drop --mix)")
    check_output(args.output)  # before any work, not after
    paintings = [load_image(path) for path in styles]
    photo = load_image(args.content)
    for name in arbitrary.MODELS:  # load both networks first: a missing or corrupt file fails here, in one line
        arbitrary.session(name)
    started = time.perf_counter()  # the time quoted is the painting, model loading aside
    vectors = [arbitrary.style_vector(p) for p in paintings]
    vector = vectors[0]
    if len(vectors) == 2:
        vector = arbitrary.blend(vectors[0], vectors[1], 0.5 if args.mix is None else args.mix)
    if args.strength < 1.0:
        vector = arbitrary.blend(arbitrary.style_vector(photo), vector, args.strength)
    result = arbitrary.stylize(photo, vector, side=args.size)
    seconds = time.perf_counter() - started
    if args.side_by_side:
        result = np.concatenate([photo, result], axis=1)
    save_image(args.output, result)
    h, w = photo.shape[:2]
    print(f"wrote {args.output} ({w}x{h}, painted at {args.size} px, {seconds:.2f} s)")
    return 0


def add_parser(sub) -> None:
    """Add ``preview`` to ``tuner``'s subparsers (called from :func:`tuner.cli.build_parser`)."""
    p = sub.add_parser("preview", help="any painting onto a photo in about a second (Magenta's arbitrary network; "
                                       "no training)",
                       description="Stylise a photo with any painting using Magenta's arbitrary stylisation "
                                   "network (Ghiasi et al. 2017): no training, no search.",
                       epilog=PREVIEW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", action="append", required=True, metavar="PAINTING",
                   help="the painting; give it twice to mix two paintings (see --mix)")
    p.add_argument("--content", required=True, help="the photo to stylise (any size; the result keeps it)")
    p.add_argument("-o", "--output", required=True, help="where to write the result (PNG or JPEG by extension)")
    p.add_argument("--mix", type=float_in(0.0, 1.0, "--mix"),
                   help="share of the second painting when two are given: 0 = only the first, 1 = only the "
                        "second (default 0.5)")
    p.add_argument("--strength", type=float_in(0.0, 1.0, "--strength"), default=1.0,
                   help="how strongly to paint: 1 = the painting's style (default), 0 = the photo's own")
    p.add_argument("--size", type=int_in(64, 2048, "--size"), default=384,
                   help="long side, in pixels, at which the network paints (default 384); smaller = bolder strokes")
    p.add_argument("--side-by-side", action="store_true", help="write the photo and the result next to each other")
    p.set_defaults(func=_preview)
