"""``trainer``: train the feed-forward style network from the study's winning settings, use it, export it.

Usage::

    trainer fit --from-study best --data ~/coco/train2017            # the chosen (or best) trial of the newest study
    trainer fit --from-study monet:12 --data photos/ --name monet12 --network fast
    trainer fit --config cfg.json --style examples/monet.jpg --data photos/ --steps 2000
    trainer fit --name monet12                                         # resume where it stopped
    trainer stylize monet12 photo.jpg holiday/ -o out/ [--preserve-colors]
    trainer export monet12 --format tflite

Runs live in ``studies/runs/NAME/`` (``--runs-dir``); each describes itself, so
``stylize`` and ``export`` need only its name. Each subcommand's ``--help`` explains its flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nst.cliutil import OneLineParser, float_in, int_in, run_main

STYLIZE_EPILOG = """\
examples:
  trainer stylize monet12 photo.jpg -o photo-monet.png
  trainer stylize monet12 holiday/ more.jpg -o out/       # folders are searched recursively
  trainer stylize monet12 big.tif -o big-monet.png --memory-mb 512 --preserve-colors

Pictures bigger than the memory budget are processed in overlapping tiles that share
the whole picture's normalisation statistics, so no seams appear.
"""

EXPORT_EXAMPLES = """\
examples:
  trainer export monet12 --format tflite              # studies/runs/monet12/export/model.tflite
  trainer export monet12 --format savedmodel -o /tmp/monet_savedmodel
  trainer export monet12 --format web                 # studies/runs/monet12/export/web/ (serve it: docs/web.md)

The exported file is loaded back (TFLite: with the TFLite interpreter) and compared
with the network on a test photo before it is kept.
"""


# -- stylize -------------------------------------------------------------------------------------


def _collect_inputs(paths: Sequence[str]) -> list[tuple[Path, Path]]:
    """``(file, relative output path)`` for every input; folders are searched recursively."""
    from nst.errors import ImageError
    from trainer.data import scan_photos

    out: list[tuple[Path, Path]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            scan = scan_photos(p, progress=False)
            if scan.skipped:
                print(f"skipping {len(scan.skipped)} unreadable file(s) in {p}, e.g. {scan.skipped[0][0]}: "
                      f"{scan.skipped[0][1]}", file=sys.stderr)
            out += [(Path(f), Path(p.name) / Path(f).relative_to(p)) for f in scan.files]
        elif p.exists():
            out.append((p, Path(p.name)))
        else:
            raise ImageError(f"{raw}: no such file or folder")
    return out


def _stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nst.errors import StyletuneError
    from nst.images import check_output, load_image, save_image
    from trainer.runs import run_path
    from trainer.settings import work_side_of
    from trainer.stylize import load_stylizer

    run_path(args.run, args.runs_dir)  # a wrong run name fails before any work
    inputs = _collect_inputs(args.inputs)
    out = Path(args.output)
    single_file = len(inputs) == 1 and Path(args.inputs[0]).is_file() and out.suffix.lower() in (
        ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
    if not single_file and out.exists() and not out.is_dir():
        raise StyletuneError(f"{out} is a file; with several inputs -o must be a folder")
    check_output(out, folder=not single_file)
    for path, _ in inputs:  # refuse a broken named file before writing anything
        if Path(path) in {Path(a) for a in args.inputs}:
            load_image(path)
    stylizer, info, step = load_stylizer(args.run, args.runs_dir, step=args.step, memory_mb=args.memory_mb)
    targets = [(src, out if single_file else (out / rel).with_suffix(".png")) for src, rel in inputs]
    bar = tqdm(total=len(targets), desc=f"stylize ({info.name}, step {step})", unit="photo",
               disable=args.quiet, dynamic_ncols=True)
    tiled = 0
    work = None if args.native else (args.work_side or work_side_of(info.settings) or None)
    try:
        for src, dst in targets:
            img = load_image(src)
            tiles = stylizer.n_tiles(*img.shape[:2])
            tiled += tiles > 1
            bar.set_postfix(file=src.name[-30:], tiles=tiles, refresh=False)
            if work is None or max(img.shape[:2]) <= work:
                result = stylizer(img, preserve=args.preserve_colors)
            else:  # the look the gallery showed, at any size: paint at the stroke scale, enlarge with detail
                from nst.viewsize import paint_at_scale
                from trainer.stylize import preserve_colors

                result = paint_at_scale(stylizer, img, work)
                result = preserve_colors(img, result) if args.preserve_colors else result
            save_image(dst, result)
            bar.update(1)
    finally:
        bar.close()
    where = targets[0][1] if single_file else out
    print(f"wrote {len(targets)} picture(s) to {where}" + (f" ({tiled} processed in tiles)" if tiled else ""))
    return 0


# -- export --------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    from trainer.export import export
    from trainer.runs import RunFolder, run_path
    from trainer.stylize import load_stylizer

    stylizer, info, step = load_stylizer(args.run, args.runs_dir, step=args.step)
    run = RunFolder(run_path(args.run, args.runs_dir))
    record = export(run, stylizer.model, stylizer.arch, args.format, args.output, info=info, step=step)
    print(f"wrote {record['path']} ({record['bytes'] / 1e6:.1f} MB, step {step}); "
          f"verified on {record['test_photo']} {record['test_shape'][1]}x{record['test_shape'][0]}: "
          f"max difference {record['max_abs_diff']:.2g} (allowed {record['tolerance']:g})")
    return 0


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from trainer.fit_command import add_fit_parser
    from trainer.runs import DEFAULT_RUNS

    parser = OneLineParser(prog="trainer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=OneLineParser)
    raw = argparse.RawDescriptionHelpFormatter

    add_fit_parser(sub)

    s = sub.add_parser("stylize", help="stylise photos or folders with a trained run", formatter_class=raw,
                       description="Stylise photos (any size) with a trained network.", epilog=STYLIZE_EPILOG)
    s.add_argument("run", metavar="RUN", help="run name (in --runs-dir) or run folder path")
    s.add_argument("inputs", nargs="+", metavar="INPUT", help="photos or folders of photos")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    s.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours (luminance-only transfer)")
    size = s.add_mutually_exclusive_group()
    size.add_argument("--work-side", type=int_in(32, 8192, "--work-side"),
                      help="paint at this long side, then enlarge with the photo's detail restored, so strokes keep the "
                           "size relative to the picture that the study's gallery showed (default: the side of the "
                           "pictures the run's crops were cut from: its --scale-side when set, from a network-proxy "
                           "study the side its proxy painted at; else its crop size)")
    size.add_argument("--native", action="store_true",
                      help="paint at the photo's own size instead: strokes keep their size in pixels, so a large photo "
                           "gets a finer texture than the gallery showed")
    s.add_argument("--memory-mb", type=float_in(64, 1_000_000, "--memory-mb"), default=1024,
                   help="memory budget of one pass; larger pictures are tiled (default 1024)")
    s.add_argument("--step", type=int_in(0, 10**9, "--step"), help="use this checkpoint instead of the newest")
    s.add_argument("--runs-dir", default=DEFAULT_RUNS, help=f"where runs live (default {DEFAULT_RUNS})")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_stylize)

    e = sub.add_parser("export", help="export a run as SavedModel, TFLite or a web page (verified)", formatter_class=raw,
                       description="Export a trained network and check the export reproduces it.",
                       epilog=EXPORT_EXAMPLES)
    e.add_argument("run", metavar="RUN", help="run name (in --runs-dir) or run folder path")
    e.add_argument("--format", choices=("savedmodel", "tflite", "web"), required=True,
                   help="savedmodel, tflite, or web (a folder with a page that runs in the browser; docs/web.md)")
    e.add_argument("-o", "--output",
                   help="where to write (default RUN/export/saved_model, RUN/export/model.tflite or RUN/export/web)")
    e.add_argument("--step", type=int_in(0, 10**9, "--step"), help="use this checkpoint instead of the newest")
    e.add_argument("--runs-dir", default=DEFAULT_RUNS, help=f"where runs live (default {DEFAULT_RUNS})")
    e.set_defaults(func=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    parser.set_defaults(argv=argv)
    return run_main("trainer", parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
