"""trainer.runs.RunRecord: run.json as a type, read by the trainer and the dashboard alike."""

from __future__ import annotations

import json
from dataclasses import fields

from trainer.runs import RUN_VERSION, RunFolder, RunRecord, metric_row

#: run.json as ``trainer fit`` has written it (keys in this order), before the record existed.
WRITTEN = {
    "version": 1, "name": "monet-magenta", "created": "2026-01-01T12:00:00+00:00", "command": "trainer fit --from-study monet",
    "software": {"styletune": "0.1.0", "tensorflow": "2.19.0", "keras": "3.10.0"},
    "settings": {"arch": "magenta", "width": 1.0, "size": 128, "steps": 30, "lr": 0.02, "batch": 4},
    "network": {"arch": "magenta", "width": 1.0, "photo_skip": False, "params": 1234},
    "style_config": {"network": "tiny", "style_weight": 0.05},
    "source": {"kind": "study", "spec": "monet:12", "study": "monet", "trial": 12,
               "storage": "sqlite:///studies/studies.db", "proxy": {"kind": "network", "steps": 30}},
    "style_file": "style.jpg", "style_sha256": "ab" * 32, "data": {"files": 10},
    "preview_photos": ["astronaut", "coffee"],
}


def test_every_run_json_key_is_a_field_and_new_runs_keep_the_bytes(tmp_path):
    assert [f.name for f in fields(RunRecord)] == [*WRITTEN, "extra"]
    run = RunFolder(tmp_path)
    run.write_info(RunRecord.from_dict(WRITTEN))
    assert run.info_file.read_text() == json.dumps(WRITTEN, indent=2) + "\n"
    assert run.read_info() == RunRecord.from_dict(WRITTEN)


def test_round_trip_keeps_unknown_keys_and_changes_steps_only():
    rec = RunRecord.from_dict({**WRITTEN, "later": {"x": 1}})
    assert rec.extra == {"later": {"x": 1}} and RunRecord.from_dict(rec.to_dict()) == rec
    longer = rec.with_steps(60)
    assert longer.settings == {**WRITTEN["settings"], "steps": 60} and rec.settings["steps"] == 30
    assert rec.origin == {"study": "monet", "trial": 12, "storage": "sqlite:///studies/studies.db"}


def test_older_and_broken_run_json_read_as_defaults():
    old = RunRecord.from_dict({"version": 1, "config": {"network": "vgg16"}, "study": "s", "trial": "3"})
    assert old.style_config == {"network": "vgg16"} and old.origin == {"study": "s", "trial": 3, "storage": None}
    assert old.extra == {}, "older spellings are read into their fields, not kept twice"
    broken = RunRecord.from_dict({"settings": [1], "network": "x", "preview_photos": "ab", "name": 5, "version": True})
    assert broken == RunRecord()
    assert RunRecord.from_dict(None) == RunRecord() and RunRecord().version == RUN_VERSION
    assert RunRecord.from_dict({"source": {"trial": "twelve"}}).origin["trial"] is None


def test_metric_rows_keep_finite_numbers_with_a_step():
    assert metric_row('{"step": 3, "loss": 1.5, "img_per_s": 2, "note": "x", "nan": NaN, "ok": true}') == \
        {"step": 3, "loss": 1.5, "img_per_s": 2.0}
    assert all(metric_row(line) is None for line in ('{"loss": 1}', "[1, 2]", '{"step": 4, "lo'))
