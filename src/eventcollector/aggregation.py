"""Aggregations and facets: what to group by and compute, and the result's shape.

``AggregateSpec`` is plain data like ``Query``: up to three keys (fixed fields,
``data.``/``metadata.`` paths and a time bucket), up to ten metrics, the top N values
kept per key (the rest folded into one ``OTHER`` group, its metrics computed exactly
over the folded events). Backends compute the groups; ``finish`` (shared) orders
them and fills empty time buckets. ``aggregate_events`` and ``facet_events`` are the
reference semantics in plain Python, as ``Query.matches`` is for queries.

Key values: a fixed field's value (None when unset); for a data path the JSON value
if it is a string, number or boolean, else None (missing, null, object, array).
Facets also count ``tag``, a field of many values: each tag counts every matching
event that carries it (an event with two tags counts once under each), an event
without tags counts under None, and a tag facet's ``other`` is the number of
(event, tag) pairs whose tag is outside the top N, not a number of events.
Numbers are one kind (1 and 1.0 are one key), distinct from strings and booleans.
Numeric metrics take numbers only: booleans, strings and missing values are ignored.
Percentiles interpolate linearly between the two nearest ranks (numpy's default,
PostgreSQL's ``percentile_cont``), as ``duration_stats`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from eventcollector.filters import DATA_ROOTS, Exists, Field, parse_filter, to_text
from eventcollector.model import format_timestamp, parse_timestamp

__all__ = [
    "FACET_FIELDS",
    "INTERVALS",
    "KEY_FIELDS",
    "MAX_BUCKETS",
    "MAX_FACETS",
    "MAX_KEYS",
    "MAX_METRICS",
    "MAX_TOP",
    "OTHER",
    "TAG",
    "AggregateResult",
    "AggregateRow",
    "AggregateSpec",
    "Facet",
    "Key",
    "Metric",
    "facet_fields",
    "field_text",
    "parse_field",
    "percentile",
]

#: Time bucket name -> seconds; buckets start at whole multiples since the epoch (UTC).
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "1d": 86_400}
#: Fixed fields a group key or count_distinct may name (any data./metadata. path too).
KEY_FIELDS = frozenset({"system", "event_type", "severity", "source_component", "correlation_id"})
#: Fixed fields a facet may count: the key fields and ``tag`` (one event, many values).
FACET_FIELDS = KEY_FIELDS | {"tag"}
#: The tag field (``tag``/``tags`` parsed), which facets count per tag, not per event.
TAG = Field("tag")
NUMERIC_OPS = ("min", "max", "avg", "sum", "p50", "p95", "p99")
PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
MAX_KEYS = 3
MAX_METRICS = 10
MAX_TOP = 1_000
MAX_BUCKETS = 10_000
#: The most fields one facets call may name.
MAX_FACETS = 10
#: The most rows one result may hold (after filling empty buckets).
MAX_ROWS = 100_000
DEFAULT_TOP = 10
DEFAULT_AUTO_BUCKETS = 100


class _Other:
    """The group of every value outside a key's top N."""

    _instance: _Other | None = None

    def __new__(cls) -> _Other:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OTHER"


OTHER = _Other()
#: A group key's value: a JSON scalar, None, or ``OTHER``.
Key: TypeAlias = str | int | float | bool | _Other | None
Number: TypeAlias = int | float
#: A backend's top values of a key: (value, its encoded key text, count), ranked.
Ranked: TypeAlias = list[tuple[Key, str, int]]


def parse_field(text: str, name: str) -> Field:
    """A field from its filter-language name (aliases and quoted keys as in filters)."""
    try:
        node = parse_filter(f"{text}:*") if isinstance(text, str) and text.strip() else None
    except ValueError:
        node = None
    if not isinstance(node, Exists):
        raise ValueError(f"{name}: not a field name: {text!r}")
    return node.field


def field_text(field: Field) -> str:
    """The canonical name of a field (``data.repo``, ``data."a.b"``)."""
    return to_text(Exists(field))[:-2]


def _key_field(text: str, name: str, fixed: frozenset[str] = KEY_FIELDS) -> Field:
    field = parse_field(text, name)
    if field.name not in DATA_ROOTS and field.name not in fixed:
        allowed = ", ".join(sorted(fixed))
        verb = "count values of" if fixed is FACET_FIELDS else "group by"
        raise ValueError(
            f"{name}: cannot {verb} {text!r} (one of {allowed}, data.KEY, metadata.KEY)"
        )
    return field


def facet_fields(fields: Sequence[str], top: int) -> tuple[Field, ...]:
    """The fields of a facets call, validated (ValueError naming ``field`` or ``top``)."""
    if isinstance(fields, str) or not 1 <= len(fields) <= MAX_FACETS:
        raise ValueError(f"field: give 1 to {MAX_FACETS} field names")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise ValueError(f"top: must be from 1 to {MAX_TOP}")
    return tuple(dict.fromkeys(_key_field(f, "field", FACET_FIELDS) for f in fields))


@dataclass(frozen=True, slots=True)
class Metric:
    """``count``, ``count_distinct`` of a key field, or a numeric op of duration_ms/a data path."""

    op: str
    field: Field | None = None

    @classmethod
    def parse(cls, text: str) -> Metric:
        """``count``, ``count_distinct:FIELD``, ``OP:FIELD`` with OP one of NUMERIC_OPS."""
        op, _, rest = text.strip().partition(":")
        if op == "count" and not rest:
            return cls("count")
        if op == "count_distinct":
            return cls(op, _key_field(rest, "metric"))
        if op in NUMERIC_OPS:
            field = parse_field(rest, "metric")
            if field.name != "duration_ms" and field.name not in DATA_ROOTS:
                raise ValueError(f"metric: {op} takes duration_ms or a data path, got {rest!r}")
            return cls(op, field)
        ops = ", ".join(("count", "count_distinct", *NUMERIC_OPS))
        raise ValueError(
            f"metric: unknown metric {text!r} (count, or OP:FIELD with OP one of {ops})"
        )

    @property
    def name(self) -> str:
        return self.op if self.field is None else f"{self.op}:{field_text(self.field)}"

    @property
    def counts(self) -> bool:
        """Whether an empty group's value is 0 (else None)."""
        return self.op in ("count", "count_distinct")


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    """What to group by and compute; build with ``AggregateSpec.parse`` from text."""

    by: tuple[Field, ...] = ()
    interval: str | None = None
    metrics: tuple[Metric, ...] = (Metric("count"),)
    top: int = DEFAULT_TOP
    #: For ``interval="auto"``: about this many buckets over the query's range.
    buckets: int = DEFAULT_AUTO_BUCKETS

    def __post_init__(self) -> None:
        if len(self.by) + (self.interval is not None) > MAX_KEYS:
            raise ValueError(f"by: at most {MAX_KEYS} keys, the time bucket included")
        if len(set(self.by)) != len(self.by):
            raise ValueError("by: a key is named twice")
        if self.interval is not None and self.interval not in (*INTERVALS, "auto"):
            raise ValueError(f"interval: one of {', '.join(INTERVALS)}, auto")
        if not 1 <= len(self.metrics) <= MAX_METRICS:
            raise ValueError(f"metric: give 1 to {MAX_METRICS} metrics")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metric: a metric is named twice")
        if isinstance(self.top, bool) or not 1 <= self.top <= MAX_TOP:
            raise ValueError(f"top: must be from 1 to {MAX_TOP}")
        if isinstance(self.buckets, bool) or not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets: must be from 1 to {MAX_BUCKETS}")

    @classmethod
    def parse(
        cls,
        by: Sequence[str] = (),
        *,
        interval: str | None = None,
        metrics: Sequence[str] = ("count",),
        top: int = DEFAULT_TOP,
        buckets: int = DEFAULT_AUTO_BUCKETS,
    ) -> AggregateSpec:
        if isinstance(by, str) or isinstance(metrics, str):
            raise ValueError("by, metric: give a list of names")
        return cls(
            tuple(_key_field(b, "by") for b in by),
            interval,
            tuple(Metric.parse(m) for m in metrics) or (Metric("count"),),
            top,
            buckets,
        )

    def bucket_seconds(
        self, since: datetime | None, until: datetime | None, now: datetime
    ) -> int | None:
        """The bucket width in seconds (``auto`` resolved over [since, until or now))."""
        if self.interval is None:
            return None
        if self.interval != "auto":
            return INTERVALS[self.interval]
        if since is None:
            raise ValueError("interval: auto needs a time range (since, hours, ...)")
        span = ((until or now) - since).total_seconds()
        for seconds in INTERVALS.values():
            if span / seconds <= self.buckets:
                return seconds
        return INTERVALS["1d"]


# -- results ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AggregateRow:
    bucket: datetime | None
    keys: tuple[Key, ...]
    values: tuple[Number | None, ...]


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """Rows in bucket order, then by each key's rank (count, largest first; OTHER last)."""

    by: tuple[str, ...]
    interval: str | None
    metrics: tuple[str, ...]
    rows: tuple[AggregateRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: each row's ``key`` maps key names to values; an OTHER value is null
        and its name is listed in the row's ``other``."""
        rows = []
        for row in self.rows:
            out: dict[str, Any] = {}
            if self.interval is not None:
                out["bucket"] = None if row.bucket is None else format_timestamp(row.bucket)
            out["key"] = {
                n: None if k is OTHER else k for n, k in zip(self.by, row.keys, strict=True)
            }
            other = [n for n, k in zip(self.by, row.keys, strict=True) if k is OTHER]
            if other:
                out["other"] = other
            out["values"] = dict(zip(self.metrics, row.values, strict=True))
            rows.append(out)
        return {
            "by": list(self.by),
            "interval": self.interval,
            "metrics": list(self.metrics),
            "rows": rows,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AggregateResult:
        by, metrics = tuple(doc["by"]), tuple(doc["metrics"])
        rows = []
        for row in doc["rows"]:
            other = set(row.get("other", ()))
            bucket = row.get("bucket")
            rows.append(
                AggregateRow(
                    None if bucket is None else parse_timestamp(bucket),
                    tuple(OTHER if n in other else row["key"][n] for n in by),
                    tuple(row["values"][m] for m in metrics),
                )
            )
        return cls(by, doc.get("interval"), metrics, tuple(rows))


@dataclass(frozen=True, slots=True)
class Facet:
    """The top values of one field with their counts, and how many events had another."""

    field: str
    values: tuple[tuple[Key, int], ...]
    other: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "values": [{"value": v, "count": n} for v, n in self.values],
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Facet:
        values = tuple((v["value"], int(v["count"])) for v in doc["values"])
        return cls(doc["field"], values, int(doc["other"]))


# -- shared by the backends and the reference ---------------------------------------


def identity(value: Key) -> tuple[int, Any]:
    """A key value with its kind, so that True and 1, or 5 and "5", stay apart."""
    if value is None:
        return (0, None)
    if value is OTHER:
        return (4, None)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    return (3, value)


def rank(counts: Iterable[tuple[Key, int]], top: int) -> list[tuple[Key, int]]:
    """The ``top`` values by count, ties by kind (null, boolean, number, string), then value."""
    return sorted(counts, key=lambda vn: (-vn[1], identity(vn[0])))[:top]


def facet(field: str, counts: Iterable[tuple[Key, int]], total: int, top: int) -> Facet:
    best = rank(counts, top)
    return Facet(field, tuple(best), total - sum(n for _, n in best))


def tag_facet(rows: Sequence[tuple[str, int, int]], top: int) -> Facet:
    """A tag facet from a backend's (encoded tag, events, pairs in all) rows."""
    ranked = ranked_encoded(((k, n) for k, n, _ in rows), top)
    return facet(
        field_text(TAG), [(v, n) for v, _, n in ranked], int(rows[0][2]) if rows else 0, top
    )


def ranked_counts(counts: Mapping[str, int], top: int) -> Ranked:
    """``group_count``'s answer (None under "") as ranked (value, encoded key, count)."""
    best = rank(((k or None, n) for k, n in counts.items()), top)
    return [(v, "" if v is None else f"s{v}", n) for v, n in best]


def ranked_encoded(rows: Iterable[tuple[str, int]], top: int) -> Ranked:
    """(encoded key, count) rows of a backend as ranked (value, encoded key, count)."""
    rows = list(rows)
    encoded = {identity(decode_key(k)): k for k, _ in rows}
    best = rank(((decode_key(k), int(n)) for k, n in rows), top)
    return [(v, encoded[identity(v)], n) for v, n in best]


def percentile(ordered: Sequence[Number], q: float) -> float:
    """Linear interpolation between the nearest ranks of sorted values (numpy's default)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    low, high = ordered[below], ordered[min(below + 1, len(ordered) - 1)]
    return float(low + (high - low) * (position - below))


def floor_bucket(ts: datetime, seconds: int) -> datetime:
    epoch = int(ts.timestamp() // seconds) * seconds
    return datetime.fromtimestamp(epoch, UTC)


GroupId: TypeAlias = tuple[datetime | None, tuple[tuple[int, Any], ...]]
#: Computed groups: (bucket, key identities) -> (key values, metric values).
Groups: TypeAlias = dict[GroupId, tuple[tuple[Key, ...], tuple[Number | None, ...]]]


def group_id(bucket: datetime | None, keys: Sequence[Key]) -> GroupId:
    """A group's dictionary key: True and 1 are two groups although they compare equal."""
    return bucket, tuple(identity(k) for k in keys)


def add_count(groups: Groups, bucket: datetime | None, keys: tuple[Key, ...], n: int) -> None:
    """Add ``n`` events to a group of counts (the groups of a spec whose one metric is
    ``count``)."""
    gid = group_id(bucket, keys)
    before = groups[gid][1][0] if gid in groups else 0
    groups[gid] = (keys, ((before or 0) + n,))


def finish(
    spec: AggregateSpec,
    seconds: int | None,
    since: datetime | None,
    until: datetime,
    groups: Groups,
    orders: Sequence[Sequence[Key]],
) -> AggregateResult:
    """Order the computed groups and fill empty buckets from since to until (exclusive).

    ``orders``: per key, its values in rank order. Without ``since`` buckets start at
    the first that has events.
    """
    combos = {ids: keys for (_, ids), (keys, _) in groups.items()}
    buckets: list[datetime | None] = [None]
    if seconds is not None and (groups or since is not None):
        first = floor_bucket(since, seconds) if since is not None else min(_starts(groups))
        last = floor_bucket(until - timedelta(microseconds=1), seconds)
        n = int((last - first).total_seconds() // seconds) + 1 if last >= first else 0
        if n > MAX_BUCKETS:
            raise ValueError(
                f"interval: {n} buckets, more than {MAX_BUCKETS} (widen it or shorten the range)"
            )
        if not spec.by:
            combos = {(): ()}
        buckets = [first + timedelta(seconds=seconds * i) for i in range(n)]
    if len(buckets) * len(combos) > MAX_ROWS:
        raise ValueError(
            f"top: the result would hold more than {MAX_ROWS} rows (a smaller top or interval)"
        )
    positions = [{identity(v): i for i, v in enumerate(order)} for order in orders]
    ordered = sorted(
        combos, key=lambda ids: tuple(p.get(i, len(p)) for p, i in zip(positions, ids, strict=True))
    )
    empty = tuple(0 if m.counts else None for m in spec.metrics)
    rows = []
    for bucket in buckets:
        for ids in ordered:
            found = groups.get((bucket, ids))
            if found is not None:
                rows.append(AggregateRow(bucket, found[0], found[1]))
            elif seconds is not None:
                rows.append(AggregateRow(bucket, combos[ids], empty))
    return AggregateResult(
        tuple(field_text(f) for f in spec.by),
        spec.interval,
        tuple(m.name for m in spec.metrics),
        tuple(rows),
    )


def _starts(groups: Groups) -> list[datetime]:
    return [bucket for bucket, _ in groups if bucket is not None]


def decode_key(text: str) -> Key:
    """A key from the backends' text encoding: "" null, s<text>, n<number>, b0/b1, ~ other."""
    if text == "":
        return None
    kind, rest = text[0], text[1:]
    if kind == "s":
        return rest
    if kind == "~":
        return OTHER
    if kind == "b":
        return rest == "1"
    try:
        return int(rest)
    except ValueError:
        return float(rest)
