"""Aggregations in PostgreSQL (semantics: ``eventcollector.aggregation``); facets are
``_facets``'s, on ``Select`` and ``top_values``.

The same shape as SQLite's: one statement over a derived table of the matching events
(JSON paths bound as ``text[]``), keys encoded as text (``aggregation.decode_key``),
values outside the top N folded into "~"; buckets by ``date_bin``, percentiles by
``percentile_cont`` (the same linear interpolation as the reference). Top values of
system, event type, severity and component come from ``group_count`` (rollups).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eventcollector.aggregation import (
    OTHER,
    AggregateResult,
    AggregateSpec,
    Groups,
    Ranked,
    decode_key,
    finish,
    group_id,
    ranked_counts,
    ranked_encoded,
)
from eventcollector.filters import Field
from eventcollector.query import GROUP_FIELDS, Query
from eventcollector.storage._sql_common import AGGREGATE_COLUMNS, metric_columns
from eventcollector.storage._where import JSON_COLUMNS
from eventcollector.storage.postgres import _reads as reads
from eventcollector.storage.postgres._dialect import Params
from eventcollector.storage.postgres._sql import where

__all__ = ["Select", "aggregate", "top_values"]

# A JSON scalar as key text: s<string>, n<number> (trailing zeros trimmed: 1.0 is 1), b0/b1.
_ENCODE = (
    "CASE jsonb_typeof({v}) WHEN 'string' THEN 's' || ({v} #>> '{{}}')"
    " WHEN 'number' THEN 'n' || trim_scale({v}::numeric)::text"
    " WHEN 'boolean' THEN CASE WHEN {v} = 'true'::jsonb THEN 'b1' ELSE 'b0' END ELSE '' END"
)
_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


class Select:
    """The inner SELECT's columns (each value extracted once); parameters go to ``p``."""

    def __init__(self, p: Params) -> None:
        self.columns: list[str] = []
        self.p = p

    def key(self, field: Field) -> str:
        """The outer expression of ``field``'s encoded key."""
        i = len(self.columns)
        if not field.path:
            self.columns.append(f"{AGGREGATE_COLUMNS[field.name]} AS c{i}")
            return f"coalesce('s' || c{i}, '')"
        path = self.p.add(list(field.path))
        self.columns.append(f"{JSON_COLUMNS[field.name]} #> {path}::text[] AS c{i}")
        return _ENCODE.format(v=f"c{i}")

    def number(self, field: Field) -> str:
        """The outer column of ``field``'s numeric value (NULL unless a number)."""
        i = len(self.columns)
        if not field.path:
            self.columns.append(f"{AGGREGATE_COLUMNS[field.name]}::float8 AS c{i}")
        else:
            value = f"({JSON_COLUMNS[field.name]} #> {self.p.add(list(field.path))}::text[])"
            self.columns.append(
                f"CASE WHEN jsonb_typeof({value}) = 'number' THEN {value}::float8 END AS c{i}"
            )
        return f"c{i}"

    def source(self, query: Query) -> str:
        columns = ", ".join(self.columns) or "1"
        return f"(SELECT {columns} FROM events e{where(query, self.p)}) AS s"


async def top_values(conn: Any, query: Query, field: Field, top: int) -> Ranked:
    """The top values (value, encoded, count), ranked as ``aggregation.rank`` does."""
    if not field.path and field.name in GROUP_FIELDS:
        counts = await reads.group_count(conn, query, field.name)  # type: ignore[arg-type]
        return ranked_counts(counts, top)
    p = Params()
    select = Select(p)
    key = select.key(field)
    source = select.source(query)
    rows = await conn.fetch(
        f"SELECT k, n FROM (SELECT {key} AS k, count(*) AS n,"
        f" rank() OVER (ORDER BY count(*) DESC) AS r FROM {source} GROUP BY 1) AS t"
        f" WHERE r <= {p.add(top)}",
        *p.values,
    )
    return ranked_encoded(rows, top)


async def aggregate(conn: Any, query: Query, spec: AggregateSpec, now: datetime) -> AggregateResult:
    seconds = spec.bucket_seconds(query.since, query.until, now)
    tops = [await top_values(conn, query, field, spec.top) for field in spec.by]
    p = Params()
    select = Select(p)
    outer: list[str] = []
    if seconds is not None:
        width = p.add(timedelta(seconds=seconds))
        select.columns.append(f"date_bin({width}::interval, e.timestamp, {_EPOCH}) AS b")
        outer.append("b")
    for field, ranked in zip(spec.by, tops, strict=True):
        key = select.key(field)
        if len(ranked) == spec.top:  # there may be more values: fold the rest
            kept = p.add([enc for _, enc, _ in ranked])
            key = f"CASE WHEN {key} = ANY({kept}::text[]) THEN {key} ELSE '~' END"
        outer.append(key)
    keys = len(outer)
    outer += metric_columns(
        spec.metrics,
        select.key,
        select.number,
        lambda column, q: f"percentile_cont({q}::float8) WITHIN GROUP (ORDER BY {column})",
    )
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(keys))}" if keys else ""
    rows = await conn.fetch(
        f"SELECT {', '.join(outer)} FROM {select.source(query)}{group}", *p.values
    )
    if not keys and rows[0][-1] == 0:  # one row over no events: no group
        rows = []
    groups: Groups = {}
    offset = int(seconds is not None)
    for row in rows:
        bucket = row[0] if seconds is not None else None
        key_values = tuple(decode_key(k) for k in row[offset:keys])
        metrics = zip(spec.metrics, list(row)[keys:-1], strict=True)
        groups[group_id(bucket, key_values)] = (
            key_values,
            tuple(_value(metric.op, metric.field, v) for metric, v in metrics),
        )
    orders = [[v for v, _, _ in ranked] + [OTHER] for ranked in tops]
    return finish(spec, seconds, query.since, query.until or now, groups, orders)


def _value(op: str, field: Field | None, raw: Any) -> Any:
    """duration_ms stays an integer where the reference has one (min, max, sum)."""
    if isinstance(raw, Decimal):
        return int(raw) if raw == raw.to_integral_value() else float(raw)
    if (
        field is not None
        and field.name == "duration_ms"
        and op in ("min", "max", "sum")
        and raw is not None
    ):
        return int(raw)
    return raw
