"""Filter parse time for a 10-term filter (issue 12's figure: parse + compile <= 50 us;
compilation to SQL comes with the storage side, so this measures parse alone)."""

from __future__ import annotations

import timeit
from datetime import UTC, datetime
from typing import Any

from eventcollector.filters import parse_filter

#: Ten terms covering every shape: comparison, list, negation, prefix, phrase, data path.
TEN_TERMS = (
    'severity:>=warning system:[mahavishnu, crackerjack] -tag:noise "timed out" '
    "timestamp:>-24h data.repo:acme/* (type:workflow.failed OR duration:>5000) "
    'component:orchestrator data."ci.run".attempt:>1'
)


def run(number: int = 500, repeat: int = 40) -> dict[str, Any]:
    now = datetime.now(UTC)
    timer = timeit.Timer(lambda: parse_filter(TEN_TERMS, now=now))
    # The least of many short runs: the figure least disturbed by other processes.
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    return {"filter": TEN_TERMS, "parse_10_terms_us": round(best * 1e6, 2)}
