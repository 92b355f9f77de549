"""Stored attributes are read and written through :mod:`tuner.records` only (STYLE.md item 12).

Scans the product's source (``nst/ tuner/ trainer/ dashboard/ bench/``, not ``tests/``)
for raw access to Optuna user attributes: subscripting or calling a method on
``….user_attrs`` (or a variable named ``user_attrs``), testing ``in ….user_attrs``,
binding ``….user_attrs`` to a name, and ``set_user_attr("literal", …)`` or
``user_attrs={"literal": …}``. Handing ``….user_attrs`` whole to a function
(``StudyRecord.from_user_attrs(study.user_attrs)``) is fine: that function is the reader.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("nst", "tuner", "trainer", "dashboard", "bench")
#: Where the names and defaults live, the one module allowed to touch user attributes.
HOME = "tuner/records.py"
#: Raw accesses left, by exact count per file: a new one there fails the test too.
ALLOWED: dict[str, int] = {
    # Not part of the stored contract: the bench's own measurement (BENCH_ATTR), written and
    # read back by ``--analyse`` in the same file, which no other code reads (1).
    "bench/study_cost.py": 1,
}


def _raw_accesses(path: Path) -> list[int]:
    """Line numbers of raw user-attribute access in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(tree):
        parent = parents.get(node)
        if isinstance(node, ast.Attribute) and node.attr == "user_attrs" and isinstance(node.ctx, ast.Load):
            handed_whole = isinstance(parent, ast.Call) and node in parent.args or isinstance(parent, ast.keyword)
            if not handed_whole:
                lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id == "user_attrs" and isinstance(parent, ast.Subscript | ast.Attribute):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            literal = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            if name == "set_user_attr" and literal:
                lines.append(node.lineno)
            for kw in node.keywords:
                if kw.arg == "user_attrs" and isinstance(kw.value, ast.Dict) and any(
                        isinstance(k, ast.Constant) and isinstance(k.value, str) for k in kw.value.keys):
                    lines.append(node.lineno)
    return sorted(lines)


def test_user_attributes_are_touched_only_through_the_records():
    found = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel != HOME and (lines := _raw_accesses(path)):
                found[rel] = lines
    counts = Counter({rel: len(lines) for rel, lines in found.items()})
    unexpected = {rel: lines for rel, lines in found.items() if counts[rel] != ALLOWED.get(rel, 0)}
    stale = {rel: n for rel, n in ALLOWED.items() if rel not in found}
    listing = "\n".join(f"{rel}:{line}" for rel, lines in unexpected.items() for line in lines)
    assert not unexpected, (f"raw user_attrs access outside {HOME} (read it through a TrialRecord/StudyRecord; "
                            f"allowed counts {ALLOWED}):\n{listing}")
    assert not stale, f"allowed raw accesses that are gone; remove them from ALLOWED: {stale}"


def test_the_scan_sees_each_kind_of_raw_access(tmp_path):
    src = tmp_path / "sample.py"
    src.write_text("a = t.user_attrs['x']\nb = t.user_attrs.get('x')\nc = 'x' in t.user_attrs\nua = t.user_attrs\n"
                   "t.set_user_attr('x', 1)\ns.enqueue_trial({}, user_attrs={'x': 1})\nd = user_attrs.get(K)\n"
                   "ok = read(t.user_attrs)\nt.set_user_attr(K, 1)\ns.enqueue_trial({}, user_attrs={K: 1})\n")
    assert _raw_accesses(src) == [1, 2, 3, 4, 5, 6, 7]
