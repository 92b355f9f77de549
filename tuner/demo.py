"""``make demo``: a short search on the bundled example, then its Pareto front and pictures.

Usage::

    python -m tuner.demo            # about 5 minutes on 2 CPU cores

It runs ``tuner search`` on ``examples/monet.jpg`` with two photos that ship inside
scikit-image and the default loss networks (ImageNet ``vgg16`` and ``vgg16_hed``, both
offline after ``make setup``; ``vgg16_hed`` alone where the first could not be set up), into the default storage
(``studies/studies.db``) under the study name ``monet-demo``, so it never mixes with a
real ``monet`` study. A second run finds the study finished and only prints it. The
contact sheets of the Pareto-front trials are copied to ``studies/demo/`` as plain PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEMO_STUDY = "monet-demo"
DEMO_TRIALS = 8
DEMO_SIZE = 128
DEMO_STEPS = 30
DEMO_PHOTOS = 2
STYLE = Path(__file__).resolve().parent.parent / "examples" / "monet.jpg"


def demo_args() -> list[str]:
    return ["search", "--style", str(STYLE), "--study", DEMO_STUDY, "--trials", str(DEMO_TRIALS),
            "--size", str(DEMO_SIZE), "--steps", str(DEMO_STEPS), "--photos", str(DEMO_PHOTOS),
            "--seed", "0"]


def export_front(url: str, study_name: str, folder: Path) -> list[Path]:
    """Copy the contact sheet of every Pareto-front trial to ``folder``; returns the files."""
    from nst.files import write_atomic
    from tuner.reader import load_study, open_storage, read_artifact
    from tuner.records import SHEET, pareto_front

    study = load_study(open_storage(url), study_name)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for t in pareto_front(study):
        sheet = t.pictures().get(SHEET)  # at the view size when the trial painted it
        if sheet:
            out.append(write_atomic(folder / f"{study_name}-trial{t.number}.png", read_artifact(url, sheet)))
    return out


def main() -> int:
    from tuner.cli import main as tuner
    from tuner.reader import DEFAULT_STORAGE, artifact_dir, sqlite_path

    print(f"demo: a {DEMO_TRIALS}-trial search of {STYLE.name} ({DEMO_PHOTOS} photos, {DEMO_SIZE} px, {DEMO_STEPS} steps)")
    code = tuner(demo_args())
    if code != 0:
        return code
    print()
    tuner(["show", DEMO_STUDY])
    db = sqlite_path(DEFAULT_STORAGE)
    folder = (db.parent if db else Path("studies")) / "demo"
    files = export_front(DEFAULT_STORAGE, DEMO_STUDY, folder)
    print(f"\nimages: every trial's pictures are artifacts in {artifact_dir(DEFAULT_STORAGE)}; "
          f"the Pareto front's contact sheets (photos above, results below) are in {folder}/:")
    for f in files:
        print(f"  {f}")
    print(f"next: tuner dashboard   |   tuner best {DEMO_STUDY} --json   |   trainer fit --from-study {DEMO_STUDY} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
