"""The dashboard in a real browser: Debian's headless Chromium driven through Playwright.

Starts the app with ``tuner dashboard`` on a free loopback port, loads every page, saves
screenshots and checks they are not blank, then uses the things AppTest cannot: hover
previews, clicking a point of the Pareto front, the before/after slider, and the live
refresh of the studies list while another process adds trials.

Needs the ``chromium`` command (``scripts/browser_deps.sh`` or ``make browser-deps``
installs Debian's package); without it these tests are skipped with that reason.
Screenshots go to ``$DASHBOARD_SCREENSHOTS`` when set (else a temporary folder).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tests import dashboard_browser as web
from tests.studyfactory import make_run, make_study

pytestmark = pytest.mark.browser

if web.find_chromium() is None:
    pytest.skip("chromium is not installed; run `make browser-deps` (scripts/browser_deps.sh: apt-get install chromium)",
                allow_module_level=True)
pytest.importorskip("playwright", reason="playwright (pip) is needed to drive Chromium; pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    url = make_study(f"sqlite:///{folder}/studies.db", n_complete=6, n_pruned=1, n_fail=1, view_size=96)
    make_run(folder / "runs", "fit-a", study="fixture", trial=2)
    with web.serve(url) as base:
        yield {"base": base, "url": url, "folder": folder}


@pytest.fixture(scope="module")
def page(site):
    with web.browser() as p:
        yield p


def test_every_page_renders_shows_its_content_and_is_not_blank(site, page, tmp_path):
    expect = {"studies": ["Studies", "6 complete"], "study": ["Study fixture", "Pareto front"],
              "trial": ["Choose this trial for training", "Contact sheet"], "gallery": ["Gallery: fixture", "photo0", "Pictures at 96 px"],
              "runs": ["Training runs", "Training losses", "trained network"]}

    def check(name, p):
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        # On a loaded machine a section can render after Streamlit first reports idle; a
        # timeout falls through to the assertion, which names what is missing.
        with contextlib.suppress(PlaywrightTimeout):
            p.wait_for_function("words => words.every(w => document.body.innerText.includes(w))",
                                arg=expect[name], timeout=30_000)
        text = p.inner_text("body")
        missing = [w for w in expect[name] if w not in text]
        assert not missing, f"{name}: {missing} missing from the page"

    out = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    files = web.screenshot_all(site["base"], out, "fixture", 2, "fit-a", prefix="test_", page=page, check=check)
    assert set(files) == set(web.PAGES)
    for name, path in files.items():
        std, colours = web.pixel_spread(path.read_bytes())
        assert std > 8 and colours > 200, f"{name} screenshot looks blank (std {std:.1f}, {colours} colours): {path}"


def test_the_gallery_draws_the_view_size_pictures(site, page):
    """The study stores its pictures at 96 px beside the 48 px proxy renders: the gallery draws the 96 px ones.

    (Runs before the running-search test, which adds trials without view-size pictures.)"""
    web.goto(page, web.page_url(site["base"], "gallery", study="fixture"))
    page.wait_for_function("() => document.body.innerText.includes('Pictures at 96 px')", timeout=30_000)
    page.wait_for_function("() => [...document.images].filter(i => i.naturalWidth === 96).length >= 4", timeout=30_000)
    widths = page.evaluate("() => [...document.images].map(i => i.naturalWidth)")
    assert 48 not in widths, widths  # no proxy-size render among them

def test_hover_shows_the_contact_sheet_and_click_opens_the_trial(site, page):
    web.goto(page, web.page_url(site["base"], "study", study="fixture"))
    points = page.locator(".st-key-pareto .scatterlayer .trace .points path.point")
    assert points.count() >= 6
    number = web.hover_trial(page)
    page.wait_for_function("() => { const i = document.querySelector('#styletune-hover-tip img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    tip = page.locator("#styletune-hover-tip").bounding_box()
    assert tip["x"] >= 0 and tip["x"] + tip["width"] <= 1400, "the preview stays inside the window"
    box = points.nth(0).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"**/trial?*trial={number}*", timeout=30_000)
    web.settle(page)
    assert page.locator(".st-key-trial_pick input").input_value().startswith(f"#{number} ·")


def test_before_after_slider_moves_the_divider(site, page):
    web.goto(page, web.page_url(site["base"], "gallery", study="fixture"))
    slider = page.locator(".ba .slider")
    slider.wait_for(state="attached", timeout=10_000)
    clip = page.locator(".ba img.above")
    assert "50%" in clip.evaluate("e => e.style.clipPath")
    slider.evaluate("e => { e.value = 20; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert "80%" in clip.evaluate("e => e.style.clipPath"), "the top image is revealed up to 20 %"
    assert page.locator(".ba img.below").evaluate("e => e.naturalWidth") > 0


def test_studies_list_follows_a_running_search(site, page):
    """The overview refreshes itself (a fragment, no page reload) when trials finish elsewhere."""
    web.goto(page, site["base"] + "/")
    marker = page.evaluate("() => { window.__notReloaded = true; return true; }")
    assert marker
    assert "6 complete" in page.inner_text("body")
    make_study(site["url"], n_complete=2, n_pruned=0, n_fail=0)  # the search goes on in another "process"
    page.wait_for_function("() => document.body.innerText.includes('8 complete')", timeout=30_000)
    assert page.evaluate("() => window.__notReloaded === true"), "updated without a full reload"

