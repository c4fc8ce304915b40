"""``Query`` and ``AggregateSpec`` <-> URL query parameters, shared by the HTTP server
and the remote client.

Parameters (repeat a list parameter, or separate values with commas):

====================  ===========================================================
``system``            one or more systems
``event_type``        one or more event types
``severity``          one or more severities
``min_severity``      this severity or worse (expands to ``severity``)
``tags``              all of these tags
``any_tags``          at least one of these tags
``since``/``until``   ISO 8601 bounds (naive = UTC); ``until`` is exclusive
``minutes``/``hours``/``days``  the last N units (instead of ``since``)
``correlation_id``    one correlation id
``source_component``  one or more components
``search``            full text over title and description
``min_duration_ms``   events that took at least this long
``id``                one or more event ids
``q``                 a filter in the filter language (docs/filters.md), ANDed with the rest
``order_by``          one of ``query.ORDER_FIELDS`` (default timestamp)
``ascending``         true/false (default false: newest first)
``limit``/``offset``  paging
====================  ===========================================================

Unknown parameters are refused, so a typo never silently widens a query. An aggregation
adds ``by``, ``interval``, ``metric``, ``top`` and ``buckets`` (``spec_from_params``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector.aggregation import (
    DEFAULT_AUTO_BUCKETS,
    DEFAULT_TOP,
    AggregateSpec,
    field_text,
)
from eventcollector.filters import parse_filter, to_text
from eventcollector.model import EventType, Severity, System, format_timestamp
from eventcollector.query import Query, normalise_names, search_terms, time_bound

__all__ = [
    "FILTER_PARAMS",
    "PAGING_PARAMS",
    "SPEC_PARAMS",
    "int_param",
    "query_from_params",
    "query_to_params",
    "spec_from_params",
    "spec_to_params",
]

FILTER_PARAMS = frozenset(
    {
        "system",
        "event_type",
        "severity",
        "min_severity",
        "tags",
        "any_tags",
        "since",
        "until",
        "minutes",
        "hours",
        "days",
        "correlation_id",
        "source_component",
        "search",
        "min_duration_ms",
        "id",
        "q",
    }
)
PAGING_PARAMS = frozenset({"order_by", "ascending", "limit", "offset"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _values(params: Mapping[str, list[str]], name: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in params.get(name, []):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


def _one(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise ValueError(f"{name}: give at most one value")
    return values[0] if values else None


def _number(params: Mapping[str, list[str]], name: str, kind: type[int] | type[float]) -> Any:
    text = _one(params, name)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name}: expected a finite number, got {text!r}")
    if value < 0:
        raise ValueError(f"{name}: must not be negative")
    return value


def query_from_params(
    params: Mapping[str, list[str]],
    *,
    allowed: Iterable[str] = FILTER_PARAMS | PAGING_PARAMS,
    now: datetime | None = None,
    default_limit: int | None = None,
    max_limit: int | None = None,
) -> Query:
    """Parse multi-valued parameters (name -> list of strings) into a ``Query``.

    Raises ``ValueError`` naming the parameter for anything unknown or malformed.
    """
    allowed = frozenset(allowed)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown query parameter")
    fields: dict[str, Any] = {}
    if systems := _values(params, "system"):
        fields["systems"] = normalise_names(systems, System)
    if types := _values(params, "event_type"):
        fields["event_types"] = normalise_names(types, EventType)
    severities = normalise_names(_values(params, "severity"), Severity)
    if floor := _one(params, "min_severity"):
        rank = Severity(normalise_names(floor, Severity)[0]).rank
        at_least = tuple(s.value for s in Severity if s.rank >= rank)
        severities = tuple(s for s in severities if s in at_least) if severities else at_least
    if severities:
        fields["severities"] = severities
    if tags := _values(params, "tags"):
        fields["tags_all"] = tags
    if any_tags := _values(params, "any_tags"):
        fields["tags_any"] = any_tags
    if components := _values(params, "source_component"):
        fields["source_components"] = components
    if ids := _values(params, "id"):
        fields["ids"] = ids
    for name in ("correlation_id", "search"):
        if (value := _one(params, name)) is not None:
            if not value.strip():
                raise ValueError(f"{name}: must not be empty")
            if name == "search" and not search_terms(value):  # the stores refuse it later
                raise ValueError("search: no words to search for")
            fields[name] = value
    if (text := _one(params, "q")) is not None:
        fields["where"] = parse_filter(text, now=now)
    if (min_duration := _number(params, "min_duration_ms", int)) is not None:
        fields["min_duration_ms"] = min_duration
    window = {u: _number(params, u, float) for u in ("minutes", "hours", "days")}
    since = time_bound(_one(params, "since"), "since")
    if any(v is not None for v in window.values()):
        if since is not None:
            raise ValueError("since: give since or minutes/hours/days, not both")
        try:
            delta = timedelta(**{u: v for u, v in window.items() if v is not None})
            since = (now or datetime.now(UTC)) - delta
        except (OverflowError, ValueError):  # also NaN
            unit = next(u for u, v in window.items() if v is not None)
            raise ValueError(f"{unit}: out of range") from None
    until = time_bound(_one(params, "until"), "until")
    if since is not None:
        fields["since"] = since
    if until is not None:
        fields["until"] = until
    if (order_by := _one(params, "order_by")) is not None:
        fields["order_by"] = order_by
    if (ascending := _one(params, "ascending")) is not None:
        if ascending.lower() not in _TRUE | _FALSE:
            raise ValueError("ascending: expected true or false")
        fields["ascending"] = ascending.lower() in _TRUE
    limit = _number(params, "limit", int)
    if limit is None:
        limit = default_limit
    if limit is not None and max_limit is not None and limit > max_limit:
        raise ValueError(f"limit: at most {max_limit}")
    if limit is not None:
        fields["limit"] = limit
    if (offset := _number(params, "offset", int)) is not None:
        fields["offset"] = offset
    return Query(**fields)


def query_to_params(query: Query) -> list[tuple[str, str]]:
    """The parameters that ``query_from_params`` turns back into ``query``."""
    out: list[tuple[str, str]] = []
    for name, values in (
        ("system", query.systems),
        ("event_type", query.event_types),
        ("severity", query.severities),
        ("tags", query.tags_all),
        ("any_tags", query.tags_any),
        ("source_component", query.source_components),
        ("id", query.ids),
    ):
        # Repeated parameters, not commas: values may contain commas (tags, ids).
        out.extend((name, v) for v in values)
    if query.since is not None:
        out.append(("since", format_timestamp(query.since)))
    if query.until is not None:
        out.append(("until", format_timestamp(query.until)))
    if query.correlation_id is not None:
        out.append(("correlation_id", query.correlation_id))
    if query.search is not None:
        out.append(("search", query.search))
    if query.min_duration_ms is not None:
        out.append(("min_duration_ms", str(query.min_duration_ms)))
    if query.where is not None:
        out.append(("q", to_text(query.where)))
    if query.order_by != "timestamp":
        out.append(("order_by", query.order_by))
    if query.ascending:
        out.append(("ascending", "true"))
    if query.limit is not None:
        out.append(("limit", str(query.limit)))
    if query.offset:
        out.append(("offset", str(query.offset)))
    return out


# -- aggregations -------------------------------------------------------------------

#: URL parameters of an aggregation (beside the query's own).
SPEC_PARAMS = frozenset({"by", "interval", "metric", "top", "buckets"})


def _listed(params: Mapping[str, list[str]], name: str) -> list[str]:
    return [v.strip() for raw in params.get(name, []) for v in raw.split(",") if v.strip()]


def int_param(params: Mapping[str, list[str]], name: str, default: int) -> int:
    values = params.get(name, [])
    if len(values) > 1:
        raise ValueError(f"{name}: give at most one value")
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {values[0]!r}") from None


def spec_from_params(params: Mapping[str, list[str]]) -> AggregateSpec:
    """An ``AggregateSpec`` from URL parameters (``by`` and ``metric`` repeat or take commas)."""
    intervals = params.get("interval", [])
    if len(intervals) > 1:
        raise ValueError("interval: give at most one value")
    return AggregateSpec.parse(
        _listed(params, "by"),
        interval=intervals[0] if intervals else None,
        metrics=_listed(params, "metric") or ["count"],
        top=int_param(params, "top", DEFAULT_TOP),
        buckets=int_param(params, "buckets", DEFAULT_AUTO_BUCKETS),
    )


def spec_to_params(spec: AggregateSpec) -> list[tuple[str, str]]:
    """The parameters ``spec_from_params`` turns back into ``spec``."""
    out = [("by", field_text(f)) for f in spec.by]
    if spec.interval is not None:
        out.append(("interval", spec.interval))
    out += [("metric", m.name) for m in spec.metrics]
    return [*out, ("top", str(spec.top)), ("buckets", str(spec.buckets))]
