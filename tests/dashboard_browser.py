"""Drive the real dashboard in headless Chromium: start it, load each page, take screenshots.

Used by ``tests/test_dashboard_browser.py`` and, as a command, to refresh the README's
screenshots::

    python -m tests.dashboard_browser --storage sqlite:///studies/studies.db --out docs/images

Chromium comes from Debian's package (``scripts/browser_deps.sh``); Playwright (a pip
package) only speaks the DevTools protocol to it, it never downloads a browser. The app
is started exactly as a user starts it, with ``tuner dashboard`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The flags the project runs Chromium with: no sandbox (containers run as root), no GPU,
#: and nothing that phones home or updates itself during a test.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]

#: Streamlit marks its root element with the script state; "notRunning" = page complete.
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(storage: str, runs: str | None = None, timeout: float = 90.0) -> Iterator[str]:
    """Run ``tuner dashboard`` on a free loopback port; yield its base URL; stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "tuner.cli", "dashboard", "--storage", storage, "--port", str(port)]
    if runs:
        cmd += ["--runs", runs]
    log_fd, log_name = tempfile.mkstemp(prefix="dashboard-", suffix=".log")
    log = Path(log_name)
    with os.fdopen(log_fd, "wb") as log_fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        # The process group is the one we created above (tuner + its streamlit child).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.unlink(missing_ok=True)


@contextlib.contextmanager
def browser(width: int = 1400, height: int = 1000) -> Iterator:
    """A Playwright page in Debian's headless Chromium with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed; run scripts/browser_deps.sh (or `make browser-deps`)")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=exe, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": width, "height": height}, device_scale_factor=1,
            )
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit finished the run and every image on the page has loaded."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)
    page.wait_for_timeout(800)  # charts animate in
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def goto(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    settle(page)
    errors = page.locator('[data-testid="stException"]')
    if errors.count():
        raise AssertionError(f"{url}: the page shows an exception:\n{errors.first.inner_text()[:2000]}")


def pixel_spread(png: bytes) -> tuple[float, int]:
    """(standard deviation of grey levels, number of distinct colours): a blank page has ~0 and ~1."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        rgb = np.asarray(im.convert("RGB"))
    grey = rgb.mean(axis=-1)
    colours = len(np.unique(rgb.reshape(-1, 3)[:: max(1, rgb.size // 3 // 200_000)], axis=0))
    return float(grey.std()), colours


#: page name → (URL path, query); ``{study}`` / ``{trial}`` / ``{run}`` are filled in.
PAGES = {
    "studies": ("/", ""),
    "study": ("/study", "study={study}"),
    "trial": ("/trial", "study={study}&trial={trial}"),
    "gallery": ("/gallery", "study={study}"),
    "runs": ("/runs", "run={run}"),
}


def page_url(base: str, name: str, **values: object) -> str:
    path, query = PAGES[name]
    query = query.format(**values)
    return f"{base}{path}{'?' + query if query else ''}"


def screenshot_all(base: str, out: Path, study: str, trial: int, run: str | None = None, *,
                   prefix: str = "dashboard_", page=None, width: int = 1400, height: int = 1000,
                   max_height: int = 2600, check=None) -> dict[str, Path]:
    """Load every page and save ``<prefix><page>.png`` in ``out``; return the files.

    ``check(name, page)``, when given, runs on each loaded page before its screenshot.

    Each screenshot shows the whole page: Streamlit scrolls inside its main section rather
    than the document, so the window is made as tall as that section (up to ``max_height``).
    """
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    with contextlib.ExitStack() as stack:
        if page is None:
            page = stack.enter_context(browser(width, height))
        for name in PAGES:
            if name == "runs" and run is None:
                continue
            page.set_viewport_size({"width": width, "height": height})
            goto(page, page_url(base, name, study=study, trial=trial, run=run))
            if check is not None:
                check(name, page)
            tall = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            if tall > height:
                page.set_viewport_size({"width": width, "height": min(int(tall) + 20, max_height)})
                settle(page)
            path = out / f"{prefix}{name}.png"
            path.write_bytes(page.screenshot())
            files[name] = path
        page.set_viewport_size({"width": width, "height": height})
    return files


def hover_trial(page, trial: int | None = None) -> int:
    """Rest the pointer on the Pareto point of ``trial`` (default: the first point); return its number."""
    points = page.locator(".st-key-pareto .scatterlayer .trace .points path.point")
    tip = page.locator("#styletune-hover-tip")
    for i in range(points.count()):
        box = points.nth(i).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tip.wait_for(state="visible", timeout=10_000)
        number = int(tip.inner_text().split()[1])
        if trial is None or number == trial:
            return number
    raise AssertionError(f"no point for trial {trial} on the Pareto chart")


def screenshot_hover(base: str, out: Path, study: str, page, name: str = "dashboard_hover.png",
                     trial: int | None = None, width: int = 1400, height: int = 1000) -> Path:
    """The study page with the pointer resting on a Pareto point, so the contact-sheet preview shows."""
    page.set_viewport_size({"width": width, "height": height})
    goto(page, page_url(base, "study", study=study))
    hover_trial(page, trial)
    page.wait_for_function("() => { const i = document.querySelector('#styletune-hover-tip img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    path = out / name
    path.write_bytes(page.screenshot())
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Screenshot every dashboard page (headless Chromium).")
    p.add_argument("--storage", required=True)
    p.add_argument("--runs")
    p.add_argument("--study", required=True)
    p.add_argument("--trial", type=int, required=True)
    p.add_argument("--run")
    p.add_argument("--out", default="docs/images")
    p.add_argument("--hover-trial", type=int, help="the trial to hover in dashboard_hover.png (default: first point)")
    args = p.parse_args(argv)
    with serve(args.storage, args.runs) as base, browser() as page:
        files = screenshot_all(base, Path(args.out), args.study, args.trial, args.run, page=page)
        files["hover"] = screenshot_hover(base, Path(args.out), args.study, page, trial=args.hover_trial)
    for name, path in files.items():
        print(name, path, "std {:.1f}, {} colours".format(*pixel_spread(path.read_bytes())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
