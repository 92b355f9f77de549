"""The GPU install path (`make setup GPU=1`) brings one TensorFlow, the CUDA build, and it resolves.

The offline tests check the requirement list the Makefile hands to pip. The ``network``
test asks the package index, with ``pip install --dry-run --no-deps``, whether the `gpu`
extra's TensorFlow exists for this Python and platform and still offers the ``and-cuda``
extra with NVIDIA's CUDA wheels; only metadata is fetched, never the 600 MB wheel. It skips
with one line when the index cannot be reached.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")


def _name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _gpu_requirement() -> str:
    (req,) = [r for r in _project()["optional-dependencies"]["gpu"] if _name(r) == "tensorflow"]
    return req


def test_gpu_requirements_swap_tensorflow_cpu_for_the_cuda_build():
    out = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_requirements.py")], capture_output=True,
                         text=True, check=True).stdout.split()
    names = [_name(r) for r in out]
    assert "tensorflow-cpu" not in names
    assert names.count("tensorflow") == 1 and _gpu_requirement() in out
    assert "[and-cuda]" in _gpu_requirement()
    main = [r for r in _project()["dependencies"] if _name(r) != "tensorflow-cpu"]
    assert set(main) <= set(out)  # everything else the CPU install gets
    assert "pytest" in names  # and the dev tools, so `make test GPU=1` runs


def test_gpu_extra_allows_the_same_tensorflow_versions_as_the_cpu_pin():
    cpu = next(r for r in _project()["dependencies"] if _name(r) == "tensorflow-cpu")
    assert cpu.split("tensorflow-cpu", 1)[1] == _gpu_requirement().split("]", 1)[1]


def test_makefile_removes_the_cpu_build_before_installing_the_gpu_one():
    dry = subprocess.run(["make", "-n", "-B", "setup", "GPU=1"], cwd=ROOT, capture_output=True, text=True)
    if dry.returncode != 0:
        pytest.skip(f"make -n failed here: {dry.stderr.strip()[:120]}")
    lines = dry.stdout.splitlines()
    uninstall = next(i for i, ln in enumerate(lines) if "uninstall" in ln and "tensorflow-cpu" in ln)
    install = next(i for i, ln in enumerate(lines) if "-r .venv/requirements-gpu.txt" in ln)
    assert uninstall < install
    assert not any('".[dev]"' in ln or ".[gpu]" in ln for ln in lines)


_OFFLINE = re.compile(r"NewConnectionError|ConnectTimeout|ConnectionError|Max retries|Network is unreachable|"
                      r"Temporary failure in name resolution|ProxyError|No route to host|timed out", re.I)


@pytest.mark.network
def test_gpu_tensorflow_resolves_on_the_index(tmp_path):
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
           "--disable-pip-version-check", "--timeout", "30", "--retries", "1", "--report", str(report),
           _gpu_requirement()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and _OFFLINE.search(proc.stderr + proc.stdout):
        pytest.skip("GPU install: package index not reachable from here")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (item,) = json.loads(report.read_text())["install"]
    meta = item["metadata"]
    assert meta["name"].lower() == "tensorflow"
    low, high = re.search(r">=([\d.]+),<([\d.]+)", _gpu_requirement()).groups()
    version = tuple(int(x) for x in meta["version"].split(".")[:2])
    assert tuple(int(x) for x in low.split(".")[:2]) <= version < tuple(int(x) for x in high.split(".")[:2])
    assert "and-cuda" in meta.get("provides_extra", [])
    cuda = [r for r in meta.get("requires_dist", []) if 'extra == "and-cuda"' in r]
    assert any(r.startswith("nvidia-cudnn") for r in cuda), cuda
