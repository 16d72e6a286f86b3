"""The docs stay in step with the code: every section the code cites exists."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEMANTICS = ROOT / "docs" / "semantics.md"


def test_every_cited_section_of_the_semantics_exists():
    headings = [line.lstrip("#").strip() for line in SEMANTICS.read_text().splitlines() if line.startswith("#")]
    cited = {}
    for path in [ROOT / "README.md", *ROOT.glob("[a-z]*/**/*.py")]:
        if path == pathlib.Path(__file__).resolve():
            continue
        for name in re.findall(r'semantics\.md[`\]\)(]*,?\s*\(?"([^"]+)"', path.read_text()):
            cited.setdefault(" ".join(name.split()), path.relative_to(ROOT))  # a citation may wrap
    assert cited, "no citations found: the pattern is out of date"
    for name, where in cited.items():
        assert any(name in h for h in headings), f"{where} cites section {name!r}, which docs/semantics.md lacks"


def test_the_semantics_never_point_outside_the_project():
    text = SEMANTICS.read_text()
    assert "DESIGN" not in text and "/work/" not in text
