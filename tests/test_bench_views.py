"""Smoke tests of the benches behind the view size and the preview (``bench/view_size.py``,
``bench/view_cost.py``, ``bench/preview_speed.py``). All need Magenta's networks (and the
network proxy's VGG16), so all are marked ``weights``; each runs on one small photo, a few
steps, one round.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.weights


@pytest.mark.slow  # the sheet needs real 512 and 1024 px renders: about 30 s under load
def test_view_size_judges_every_render_against_the_proxy_and_writes_the_sheet(tmp_path, capsys):
    from bench.view_size import main
    from nst.images import save_image
    from tests.conftest import synthetic_photo

    save_image(tmp_path / "photos" / "p.png", synthetic_photo(1024, seed=3))
    assert main(["--paintings", "examples/monet.jpg", "--photo-dir", str(tmp_path / "photos"), "--photos", "p.png",
                 "--steps", "2", "--work", "128", "--details", "guided", "--view", "64", "--cell", "64",
                 "--sheets", str(tmp_path / "sheets")]) == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| monet")]
    assert [r[1:5] for r in rows] == [["proxy", "128", "128", "-"], ["native", "512", "512", "-"],
                                      ["ours", "512", "128", "guided"], ["native", "1024", "1024", "-"],
                                      ["ours", "1024", "128", "guided"], ["preview", "512", "384", "-"]]
    assert float(rows[0][8]) == 0 and float(rows[0][9]) == 0  # Δ against itself
    assert (tmp_path / "sheets" / "view_size_monet.jpg").is_file()


def test_view_cost_times_a_trial_with_and_without_the_view_pictures(capsys):
    from bench.view_cost import main

    assert main(["--view", "64", "--steps", "2", "--photos", "1", "--size", "32", "--paint-side", "48",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "judged at the proxy size (reference)" in out and "+ 1 pictures at 64 px, judged on them" in out
    assert out.rstrip().splitlines()[-1].startswith("ratio of today's default") and "(budget 1.30x)" in out


def test_preview_speed_times_every_way_against_the_shipped_file(capsys):
    from bench.preview_speed import main

    assert main(["--sizes", "96", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    ways = [c.split("|")[2].strip() for c in out.splitlines() if c.startswith("| 96x")]
    assert ways[0].endswith("(reference)") and "whole 384 (ours)" in ways and "predict (one painting)" in ways
    assert "tiles 96" in ways and "whole 96" in ways
