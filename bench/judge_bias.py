"""Can trials on every searched network reach the judge's front? Two ways to look.

Usage::

    python bench/judge_bias.py --networks vgg16_hed,vgg16 --ratio 10     # render variants, judge them
    python bench/judge_bias.py --study starry-networks --storage sqlite:////tmp/nw/study/networks.db
                                                                         # rescore a real study's renders

Since judge version 2 the style score goes through Magenta's style predictor (``nst.judge``),
a MobileNetV2 that no trial optimises through, so no loss network shares the judge's
features. What is left to check is that the judge does not prefer one *family* of loss
network for reasons a person would not share.

Rendering mode: the same search parameters (style ratio R, TV ratio T, style scale 1,
content layer block4_conv2, equal layer shares) are run on each network in ``--networks``
with several layer sets and poolings, and judged:

* ``gatys``: average pooling, blockN_conv1 for N = 1..5 (Gatys et al. 2016);
* ``gatys-max``: the same layers with max pooling;
* ``johnson``: max pooling, the ends of blocks 1-4 (Johnson et al. 2016);
* ``shallow`` / ``deep``: average pooling, block1-2 only / block3-5 only.

The table marks the rows that no other row dominates (lower style *and* content score).

Study mode (``--study``): a finished study's stored renders are scored again with today's
judge, and compared with the scores the study stored (its own judge): Spearman rank
correlations, and each network's trials on either front. Nothing is rendered or written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import format_table, machine_summary, require_trials, trial_numbers  # noqa: E402
from bench.fidelity_stats import nondominated_layers  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GATYS_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
#: name -> (pooling, style layers); the same names exist in every VGG16-shaped network.
VARIANTS = {
    "gatys": ("avg", GATYS_LAYERS),
    "gatys-max": ("max", GATYS_LAYERS),
    "johnson": ("max", ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")),
    "shallow": ("avg", ("block1_conv1", "block2_conv1")),
    "deep": ("avg", ("block3_conv1", "block4_conv1", "block5_conv1")),
}


def rescore(url: str, name: str, artifacts: str | None, sheet: str | None, network: str = "magenta",
            sheet_trials: list[int] | None = None) -> int:
    """Score a finished study's stored renders again with another judge; compare with the stored scores.

    ``network`` is the other judge's style network: ``magenta`` (today's judge) for a study
    made before version 2, ``vgg16_hed`` (the same computation as judge version 1) for a
    study made since.

    Nothing is rendered and nothing is written to the study: the trials' pictures are read
    from its artifacts, so the two judges see exactly the same pictures. Prints each trial's
    network and both judges' scores, the Spearman rank correlations, and which networks'
    trials are on today's judge's Pareto front (feasible trials, style and content).
    """
    import numpy as np
    import optuna
    from scipy.stats import spearmanr

    from nst.images import contact_sheet, save_image
    from nst.judge import Judge, JudgeSpec, describe
    from tuner.reader import open_storage, read_image_artifact, read_record
    from tuner.records import pareto_front, trial_records

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    rec = read_record(study)
    trials = trial_records(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    require_trials(sheet_trials or (), [t.number for t in trials], prog="python -m bench.judge_bias",
                   flag="--sheet-trials", study=name)
    photos = np.stack([read_image_artifact(url, rec.content_artifacts[n], artifacts) for n in rec.content_names])
    import io

    from PIL import Image

    from tuner.reader import read_artifact

    with Image.open(io.BytesIO(read_artifact(url, rec.style_artifact, artifacts))) as im:
        painting = np.asarray(im.convert("RGB"), np.float32) / 255.0
    spec = JudgeSpec.for_network(network)
    judge = Judge(spec, photos, painting)
    rows, old, new, images = [], [], [], {}
    for t in trials:
        images[t.number] = np.stack([read_image_artifact(url, t.artifacts[n], artifacts) for n in rec.content_names])
        s = judge.score(images[t.number]).means()
        o = t.scores
        old.append(o)
        new.append(s)
        rows.append([t.number, t.style_config["network"], t.recipe or "",
                     round(o["style"], 3), round(o["content"], 3), round(o["noise"], 2),
                     round(s["style"], 3), round(s["content"], 3), round(s["noise"], 2)])

    old_front = {t.number for t in pareto_front(study)}
    layers = nondominated_layers({t.number: (s["style"], s["content"]) for t, s in zip(trials, new, strict=True)
                                  if s["noise"] <= spec.noise_limit})  # the rescored front: not the study's
    new_front = set(layers[0]) if layers else set()
    for r in rows:
        r += ["front" if r[0] in old_front else "", "front" if r[0] in new_front else ""]
    print(f"study {name!r}: {len(trials)} finished trials; 'stored' = the study's scores, by {describe(rec.judge)}; "
          f"'again' = rescored by {spec.label}")
    print(format_table(["trial", "network", "recipe", "stored style", "stored content", "stored noise", "again style",
                        "again content", "again noise", "stored front", "again front"], rows))
    print()
    corr = []
    for key in ("style", "content", "noise"):
        rho = spearmanr([o[key] for o in old], [s[key] for s in new]).statistic
        corr.append([key, f"{rho:.2f}"])
    rho = spearmanr([o["style"] + o["content"] for o in old], [s["style"] + s["content"] for s in new]).statistic
    corr.append(["style + content (tuner best's rule)", f"{rho:.2f}"])
    print(format_table(["score", "Spearman rho, stored vs again"], corr))
    nets = {}
    for t in trials:
        nets.setdefault(t.style_config["network"], []).append(t.number)
    print()
    print(format_table(["network", "trials", "on the stored front", "on the again front"],
                       [[k, len(v), len(old_front & set(v)), len(new_front & set(v))] for k, v in sorted(nets.items())]))
    if sheet:
        def total(s: dict) -> float:
            return s["style"] + s["content"]

        o_best = trials[int(np.argmin([total(s) if s["noise"] <= 1.5 else np.inf for s in old]))].number
        n_best = trials[int(np.argmin([total(s) if s["noise"] <= spec.noise_limit else np.inf for s in new]))].number
        if sheet_trials:
            save_image(sheet, contact_sheet([list(photos)] + [list(images[n]) for n in sheet_trials], cell=photos.shape[1]))
            print(f"wrote {sheet}: photos, then trials {', '.join(f'#{n}' for n in sheet_trials)}, one row each")
        else:
            order = [o_best] + ([n_best] if n_best != o_best else [])
            save_image(sheet, contact_sheet([list(photos)] + [list(images[n]) for n in order], cell=photos.shape[1]))
            print(f"wrote {sheet}: photos, then the stored judge's best trial #{o_best}"
                  + (f", then the other judge's best trial #{n_best}" if n_best != o_best else " (the other judge's best too)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", help="instead of rendering: rescore this finished study's renders with today's judge")
    ap.add_argument("--storage", default="sqlite:///studies/studies.db", help="the study's storage (with --study)")
    ap.add_argument("--artifacts", help="the study's artifact folder, if not beside the SQLite file (with --study)")
    ap.add_argument("--judge-network", default="magenta",
                    help="with --study: the other judge's style network (magenta = today's; vgg16_hed = version 1's)")
    ap.add_argument("--sheet-trials", type=trial_numbers, help="with --study --sheet: these trials (comma-separated), not the two judges' picks")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated layer/pooling variants to render (default all: {', '.join(VARIANTS)})")
    ap.add_argument("--networks", default="vgg16_hed",
                    help="comma-separated loss networks whose variants to render (default vgg16_hed; e.g. vgg16_hed,vgg16)")
    ap.add_argument("--ratio", type=float, action="append", help="style ratio R (repeatable; default 30)")
    ap.add_argument("--tv", type=float, default=1e-3, help="TV ratio T (default 1e-3)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--style", default=str(ROOT / "examples" / "monet.jpg"))
    ap.add_argument("--sheet", help="write a contact sheet of the results (rows = variants) to this PNG")
    args = ap.parse_args(argv)
    if args.study:
        trials = list(args.sheet_trials) if args.sheet_trials else None
        return rescore(args.storage, args.study, args.artifacts, args.sheet, args.judge_network, trials)

    import numpy as np

    from nst.gatys import stylize
    from nst.images import contact_sheet, load_image, save_image
    from nst.judge import Judge, JudgeSpec
    from nst.lossnets import get_spec
    from tuner.space import SearchSpace, calibrate, to_config
    from tuner.study import content_paths, load_photos

    print(machine_summary())
    photos = load_photos(content_paths(None, args.photos), args.size)
    batch = np.stack([p.image for p in photos])
    painting = load_image(args.style)
    networks = tuple(n.strip() for n in args.networks.split(",") if n.strip())
    space = SearchSpace(networks, calibrate(networks, batch, painting))
    judge = Judge(JudgeSpec(), batch, painting)
    print(f"judge: {judge.spec.label}")
    rows, sheet = [], [list(batch)]
    for ratio in args.ratio or [30.0]:
        results = {}
        for network in networks:
            for variant in args.variants.split(","):
                pooling, layers = VARIANTS[variant.strip()]
                name = f"{network} {variant.strip()}"
                shares = {n: (1.0 if n in layers else 1e-3) for n in get_spec(network).style_layers}
                cfg = to_config(space, network, pooling, "block4_conv2", shares, ratio, args.tv, 1.0)
                t0 = time.perf_counter()
                r = stylize(batch, painting, cfg, steps=args.steps)
                s = judge.score(r.images).means()
                sheet.append(list(r.images))
                results[name] = (s["style"], s["content"], s["noise"], time.perf_counter() - t0)
                print(f"R {ratio:g} {name}: style {s['style']:.3f} content {s['content']:.3f} noise {s['noise']:.2f}",
                      flush=True)
        feasible = {k: v for k, v in results.items() if v[2] <= judge.spec.noise_limit}
        for name, (st, co, no, sec) in results.items():
            dominated_by = [o for o, v in feasible.items()
                            if o != name and v[0] <= st and v[1] <= co and (v[0], v[1]) != (st, co)]
            status = ("too noisy" if name not in feasible else
                      "front" if not dominated_by else "dominated by " + ", ".join(dominated_by))
            rows.append([ratio, name, round(st, 3), round(co, 3), round(no, 2), status, round(sec)])
    if args.sheet:
        save_image(args.sheet, contact_sheet(sheet, cell=args.size))
    print()
    print(format_table(["R", "variant", "style", "content", "noise", "Pareto", "s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
