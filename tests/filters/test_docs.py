"""docs/filters.md stays in step with the parser: every line of every ``filter`` block
parses, and its canonical text parses back to the same AST."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from eventcollector.filters import parse_filter

DOC = Path(__file__).resolve().parents[2] / "docs" / "filters.md"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_every_filter_in_the_docs_parses() -> None:
    blocks = re.findall(r"```filter\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert len(lines) > 40
    for line in lines:
        node = parse_filter(line, now=NOW)
        assert parse_filter(str(node)) == node, line
