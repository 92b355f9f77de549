"""Print styletune's requirements for a GPU environment, one per line, for `make setup GPU=1`.

The main dependencies pin `tensorflow-cpu`; the `gpu` extra names `tensorflow[and-cuda]`.
Both distributions install the same `tensorflow` package, so pip must never see both:
installing `.[gpu]` would put the CUDA build beside the CPU build and the second install
overwrites the first's files. This prints the main dependencies without `tensorflow-cpu`,
plus the `dev` and `gpu` extras, so `pip install -r` installs exactly one TensorFlow.

Reads pyproject.toml next to this script (Python 3.11+), else the installed project's
metadata (`pip install --no-deps -e .` first).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

EXTRAS = ("dev", "gpu")
CPU_ONLY = "tensorflow-cpu"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def requirements(extras: tuple[str, ...] = EXTRAS) -> list[str]:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        project = tomllib.loads(pyproject.read_text())["project"]
        reqs = list(project["dependencies"])
        for extra in extras:
            reqs += project.get("optional-dependencies", {}).get(extra, [])
    except ModuleNotFoundError:  # Python 3.10: the installed metadata says the same
        from importlib.metadata import requires

        reqs = []
        for line in requires("styletune") or []:
            spec, _, marker = line.partition(";")
            found = re.search(r"extra\s*==\s*[\"']([^\"']+)[\"']", marker)
            if not marker.strip() or (found and found.group(1) in extras):
                reqs.append(spec.strip())
    out = [r for r in reqs if _name(r) != CPU_ONLY]
    if not any(_name(r) == "tensorflow" for r in out):
        raise SystemExit("gpu_requirements: error: the 'gpu' extra in pyproject.toml names no tensorflow; add "
                         "gpu = [\"tensorflow[and-cuda]...\"]")
    return out


if __name__ == "__main__":
    sys.stdout.write("\n".join(requirements()) + "\n")
