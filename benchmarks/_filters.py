"""Filter parse and compile time for a 10-term filter (issue 12's figure: parse +
compile <= 50 us): parse alone, and parse + plan (``lift``) + SQLite/PostgreSQL WHERE.

``TEN_TERMS`` names a relative time, so it is parsed afresh each time (the parser keeps
no AST that depends on ``now``); ``TEN_TERMS_UNTIMED`` (a duration in its place) is what
a UI sends again and again with its time range apart: the ``repeated`` figures are its
parse from the parser's cache plus a full compile, ``first`` its parse with the cache
cleared before every run."""

from __future__ import annotations

import timeit
from datetime import UTC, datetime
from typing import Any

from eventcollector.filters import parse_filter
from eventcollector.filters._parser import clear_cache
from eventcollector.query import Query
from eventcollector.storage._plan import lift
from eventcollector.storage.postgres import _dialect as postgres_dialect
from eventcollector.storage.postgres import _sql as postgres_sql
from eventcollector.storage.sqlite import _sql as sqlite_sql

#: Ten terms covering every shape: comparison, list, negation, prefix, phrase, data path.
TEN_TERMS = (
    'severity:>=warning system:[mahavishnu, crackerjack] -tag:noise "timed out" '
    "timestamp:>-24h data.repo:acme/* (type:workflow.failed OR duration:>5000) "
    'component:orchestrator data."ci.run".attempt:>1'
)
TEN_TERMS_UNTIMED = TEN_TERMS.replace("timestamp:>-24h", "duration:<60000")


def run(number: int = 500, repeat: int = 40) -> dict[str, Any]:
    now = datetime.now(UTC)

    def sqlite() -> Any:
        return sqlite_sql.where(lift(Query(where=parse_filter(TEN_TERMS, now=now))))

    def postgres() -> Any:
        query = lift(Query(where=parse_filter(TEN_TERMS, now=now)))
        return postgres_sql.where(query, postgres_dialect.Params())

    def best_us(fn: Any) -> float:
        # The least of many short runs: the figure least disturbed by other processes.
        timer = timeit.Timer(fn)
        return round(min(timer.repeat(repeat=repeat, number=number)) / number * 1e6, 2)

    def sqlite_untimed() -> Any:
        return sqlite_sql.where(lift(Query(where=parse_filter(TEN_TERMS_UNTIMED))))

    def sqlite_untimed_first() -> Any:
        clear_cache()
        return sqlite_untimed()

    return {
        "filter": TEN_TERMS,
        "parse_10_terms_us": best_us(lambda: parse_filter(TEN_TERMS, now=now)),
        "parse_compile_sqlite_10_terms_us": best_us(sqlite),
        "parse_compile_postgres_10_terms_us": best_us(postgres),
        "parse_compile_sqlite_10_terms_untimed_first_us": best_us(sqlite_untimed_first),
        "parse_compile_sqlite_10_terms_untimed_repeated_us": best_us(sqlite_untimed),
    }
