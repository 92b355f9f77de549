"""``tuner``: search style-transfer loss settings, and render any one of them.

Usage::

    tuner search --style examples/monet.jpg --trials 50     # run or continue a study
    tuner studies                                           # list studies
    tuner show monet                                        # its Pareto front
    tuner best monet --json                                 # the trial to train
    tuner choose monet 17                                   # pick one yourself
    tuner render --style examples/monet.jpg --content photo.jpg -o out.png
    tuner render --style examples/monet.jpg --content photo.jpg --config cfg.json --size 384 -o out.png
    tuner render --style examples/monet.jpg --print-config > cfg.json   # start from the default

Each subcommand's ``--help`` explains its flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nst.cliutil import OneLineParser, ShownChoices, int_in, run_main

RENDER_EPILOG = """\
examples:
  tuner render --style examples/monet.jpg --content photo.jpg -o out.png
  tuner render --style examples/wave.jpg --content photo.jpg --recipe johnson --network vgg16_hed -o out.png
  tuner render --style examples/monet.jpg --print-config > cfg.json   # edit, then --config cfg.json

A render at 256 px takes about a minute on a 2-core CPU (0.7 s per L-BFGS step);
--size 128 is four times faster for a first look.
"""


def _render(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from nst.config import RECIPES, StyleConfig
    from nst.errors import StyletuneError
    from nst.images import check_output, load_image, save_image

    if args.config:
        config = StyleConfig.load(args.config)
    elif args.recipe:
        config = RECIPES[args.recipe]
    else:
        from nst.config import default_config

        config = default_config()  # vgg16 when its ImageNet weights are here, else vgg16_hed (docs/networks.md)
    if args.network and args.network != config.network:
        from nst.config import adapt_config

        config = adapt_config(config, args.network)
    if args.print_config:
        sys.stdout.write(config.to_json() + "\n")
        return 0
    if not args.style or not args.content or not args.output:
        raise StyletuneError("render needs --style, --content and -o (or --print-config)")
    check_output(args.output)  # before a minute of rendering, not after
    style = load_image(args.style)
    content = load_image(args.content, max_side=args.size)
    out = args.output
    bar = tqdm(total=args.steps, desc="render", unit="step", disable=args.quiet, dynamic_ncols=True)

    def progress(step: int, loss: float, terms: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3g}", style=f"{terms['style']:.3g}", content=f"{terms['content']:.3g}")

    from nst.gatys import stylize

    try:
        result = stylize(content[None], style, config, steps=args.steps, method=args.method, callback=progress)
    finally:
        bar.close()
    if not result.ok:
        raise StyletuneError(f"render failed: {result.reason}")
    image = result.images[0]
    if args.side_by_side:
        image = np.concatenate([content, image], axis=1)
    save_image(out, image)
    print(f"wrote {out} ({result.iterations} steps, {result.seconds:.0f} s; {result.reason})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nst.config import RECIPES
    from nst.lossnets import NETWORKS, PRETRAINED

    parser = OneLineParser(prog="tuner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=OneLineParser)

    r = sub.add_parser("render", help="stylise one photo with one configuration (a Gatys run)",
                       description="Stylise one photo with one loss configuration, to look at it.",
                       epilog=RENDER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--style", help="the painting (JPEG, PNG, WebP, TIFF, BMP)")
    r.add_argument("--content", help="the photo to stylise")
    r.add_argument("-o", "--output", help="where to write the result (PNG or JPEG by extension)")
    r.add_argument("--config", help="StyleConfig JSON (see --print-config); default: the built-in default")
    r.add_argument("--recipe", choices=sorted(RECIPES), help="start from a published recipe instead of the default")
    r.add_argument("--network", choices=ShownChoices(PRETRAINED, NETWORKS),
                   help="override the loss network (layers are mapped to the nearest equivalents)")
    r.add_argument("--size", type=int_in(32, 2048, "--size"), default=256,
                   help="longest side of the result in pixels (default 256)")
    r.add_argument("--steps", type=int_in(1, 5000, "--steps"), default=150, help="maximum optimiser steps (default 150)")
    r.add_argument("--method", choices=("lbfgs", "adam"), default="lbfgs",
                   help="L-BFGS (default, fewer steps) or the TensorFlow tutorial's Adam recipe")
    r.add_argument("--side-by-side", action="store_true", help="write the photo and the result next to each other")
    r.add_argument("--print-config", action="store_true", help="print the configuration as JSON and exit")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_render)
    from tuner.commands import add_parsers
    from tuner.search_command import add_search_parser

    add_search_parser(sub, argparse.RawDescriptionHelpFormatter)  # search first: the main job
    add_parsers(sub)
    from tuner.preview import add_parser as add_preview_parser

    add_preview_parser(sub)
    _add_dashboard_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("tuner", build_parser(), argv)


DASHBOARD_EPILOG = """\
examples:
  tuner dashboard                                  # http://127.0.0.1:8501, default storage
  tuner dashboard --storage sqlite:///studies/studies.db --port 8600
  tuner dashboard --host 0.0.0.0                   # reachable from other machines (no login!)

It listens on 127.0.0.1 unless --host says otherwise. Ctrl-C or SIGTERM stops it.
"""


def _dashboard(args: argparse.Namespace) -> int:
    """Run ``streamlit run dashboard/app.py`` on this storage, bound to loopback by default."""
    import os
    import socket

    from nst.errors import StyletuneError
    from tuner.reader import StorageError, open_storage, sqlite_path

    db = sqlite_path(args.storage)
    if db is not None and not db.exists():
        if not db.parent.is_dir():
            raise StorageError(f"{db.parent}: no such folder; run `tuner search` first or pass --storage")
        print(f"tuner dashboard: no study database at {db} yet; studies appear once `tuner search` creates it")
    else:
        open_storage(args.storage)  # a wrong URL or a non-study file fails here, in one line
    if db is None and not args.artifacts:
        print("tuner dashboard: note: without --artifacts DIR the images of a non-SQLite storage cannot be shown")
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        # Bind as the server will (tornado sets SO_REUSEADDR): refused only while something
        # listens there, not for the minute a stopped dashboard's connections linger in TIME_WAIT.
        # On Windows the flag would let two servers share a port, so neither sets it there.
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise StyletuneError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); choose another --port") from None
    app = _dashboard_app()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
           "--", "--storage", args.storage]
    if args.artifacts:
        cmd += ["--artifacts", args.artifacts]
    if args.runs:
        cmd += ["--runs", args.runs]
    print(f"tuner dashboard: http://{args.host}:{args.port}  (storage {args.storage}; Ctrl-C stops)", flush=True)
    sys.stderr.flush()
    # Become the server rather than its parent: SIGTERM from a supervisor and Ctrl-C then reach
    # Streamlit itself, which shuts down cleanly, and no orphaned server keeps the port.
    os.execv(cmd[0], cmd)
    return 0  # not reached: execv does not return


def _dashboard_app() -> Path:
    """The dashboard's Streamlit script, found without importing the package.

    The dashboard imports the tuner (it reads studies through :mod:`tuner.reader`), so the
    tuner only locates its file and runs it in the Streamlit process: packages import one
    way, and ``tuner`` starts without loading any of the dashboard's code.
    """
    import importlib.util

    from nst.errors import StyletuneError

    spec = importlib.util.find_spec("dashboard")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    app = next((Path(f) / "app.py" for f in folders if (Path(f) / "app.py").is_file()), None)
    if app is None:
        raise StyletuneError("the dashboard package is not installed next to the tuner; reinstall styletune")
    return app.resolve()


def _add_dashboard_parser(sub) -> None:
    from tuner.reader import DEFAULT_STORAGE

    d = sub.add_parser("dashboard", help="open the Streamlit dashboard: compare trials, choose one, follow training",
                       description="Serve the dashboard (Streamlit) for the studies in a storage.",
                       epilog=DASHBOARD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--storage", default=DEFAULT_STORAGE, help=f"study storage URL (default {DEFAULT_STORAGE})")
    d.add_argument("--artifacts", help="artifact folder, for storages that are not SQLite files")
    d.add_argument("--runs", help="training runs folder (default: runs/ beside the SQLite database)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int_in(1, 65535, "--port"), default=8501, help="port (default 8501)")
    d.set_defaults(func=_dashboard)


if __name__ == "__main__":
    raise SystemExit(main())
