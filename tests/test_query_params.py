"""``q``: the filter parameter of query_params, in both directions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventcollector.filters import parse_filter
from eventcollector.query import Query
from eventcollector.query_params import query_from_params, query_to_params

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_q_is_parsed_and_anded_with_the_other_parameters() -> None:
    query = query_from_params({"q": ['severity:>=warning -tag:noise "timed out"'],
                               "system": ["alpha"]})  # fmt: skip
    assert query.systems == ("alpha",)
    assert query.where == parse_filter('severity:>=warning -tag:noise "timed out"')


def test_relative_times_resolve_against_now_and_travel_as_absolute() -> None:
    query = query_from_params({"q": ["timestamp:>-2h"]}, now=NOW)
    assert query.where == parse_filter(f"timestamp:>{(NOW - timedelta(hours=2)).isoformat()}")
    assert query_to_params(query) == [("q", "timestamp:>2026-03-01T10:00:00.000000+00:00")]


@pytest.mark.parametrize(
    "text",
    [
        "a OR b c",
        'data."key.with.dots":5 data.n:"5" metadata.k:null',
        "-(system:[a, b] OR title:Deploy*) duration:>=1.5 tag:*",
        'title:"say \\"hi\\"" level:warn',
    ],
)
def test_q_round_trips(text: str) -> None:
    query = Query(where=parse_filter(text, now=NOW), systems=("alpha",), limit=5)
    params: dict[str, list[str]] = {}
    for name, value in query_to_params(query):
        params.setdefault(name, []).append(value)
    assert query_from_params(params) == query


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": ["severity:"]}, "q: expected a value after 'severity:' at column 10"),
        ({"q": ["a", "b"]}, "q: give at most one value"),
        ({"q": [""]}, "q: empty filter"),
    ],
)
def test_bad_q_is_a_value_error_naming_it(params: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=r"^q: ") as caught:
        query_from_params(params)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", ["99999999999999999999", "31536000001"])
def test_min_duration_past_the_longest_storable_duration_is_refused(value: str) -> None:
    # 2**63 and beyond cannot even be bound; a year and a millisecond can match nothing.
    with pytest.raises(ValueError, match=r"^min_duration_ms: must be between 0 and 31536000000"):
        query_from_params({"min_duration_ms": [value]})
