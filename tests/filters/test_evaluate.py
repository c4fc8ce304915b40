"""The reference semantics, one test per decided rule of issue 12 (docs/filters.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from _common import make_event
from eventcollector import Event, Query
from eventcollector.filters import matches, parse_filter
from eventcollector.fingerprint import fingerprint

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def hits(text: str, event: Event) -> bool:
    return matches(parse_filter(text, now=NOW), event)


def data_event(**data: Any) -> Event:
    return make_event(data=data)


def test_a_number_literal_matches_json_numbers_only() -> None:
    assert hits("data.count:5", data_event(count=5))
    assert hits("data.count:5", data_event(count=5.0))
    assert hits("data.count:5.0", data_event(count=5))
    assert not hits("data.count:5", data_event(count="5"))


def test_a_quoted_literal_is_always_a_string() -> None:
    assert hits('data.n:"5"', data_event(n="5"))
    assert not hits('data.n:"5"', data_event(n=5))
    assert hits('data.b:"true"', data_event(b="true"))
    assert not hits('data.b:"true"', data_event(b=True))
    assert not hits('data.k:"null"', data_event(k=None))


def test_booleans_are_not_numbers() -> None:
    assert hits("data.b:true", data_event(b=True))
    assert not hits("data.b:true", data_event(b=1))
    assert not hits("data.b:1", data_event(b=True))
    assert not hits("data.b:0", data_event(b=False))
    assert not hits("data.b:false", data_event(b=0))


def test_comparisons_hold_only_within_one_type() -> None:
    assert hits("data.n:>3", data_event(n=4))
    assert hits("data.n:>3", data_event(n=3.5))
    assert not hits("data.n:>3", data_event(n=3))
    assert hits("data.n:>=3 data.n:<=3", data_event(n=3))
    assert not hits("data.n:>3", data_event(n="10"))
    assert not hits("data.n:>0", data_event(n=True))
    assert not hits("data.n:>0", data_event(n=None))
    assert not hits("data.n:>0", data_event(n=[5]))
    assert not hits("data.n:<0", data_event())


def test_null_matches_a_null_value_not_a_missing_key() -> None:
    assert hits("data.k:null", data_event(k=None))
    assert not hits("data.k:null", data_event())
    assert not hits("data.k:null", data_event(k=0))
    assert hits("-data.k:null", data_event())


def test_exists_on_a_data_path_is_the_key_existing() -> None:
    assert hits("data.k:*", data_event(k=None))
    assert hits("data.k:*", data_event(k=""))
    assert not hits("data.k:*", data_event(other=1))
    assert hits("-data.k:*", data_event())


def test_exists_on_a_fixed_field_is_not_null_and_not_empty() -> None:
    assert hits("tag:*", make_event(tags=["x"]))
    assert not hits("tag:*", make_event())
    assert hits("description:*", make_event(description="d"))
    assert not hits("description:*", make_event(description=""))
    assert hits("correlation_id:*", make_event(correlation_id="c"))
    assert not hits("correlation_id:*", make_event())
    assert hits("component:*", make_event(source_component="api"))
    assert not hits("component:*", make_event())
    assert hits("duration:*", make_event(duration_ms=0))
    assert not hits("duration:*", make_event())
    for always in ("id", "timestamp", "system", "type", "severity", "title"):
        assert hits(f"{always}:*", make_event()), always


def test_field_values_match_case_sensitively() -> None:
    event = make_event(title="Deploy started", system="mahavishnu")
    assert hits("title:Deploy*", event)
    assert not hits("title:deploy*", event)
    assert hits('title:"Deploy started"', event)
    assert not hits('title:"deploy started"', event)
    assert not hits("title:Deploy", event)  # equality is the whole value
    assert not hits("system:Mahavishnu", event)


def test_full_text_matches_case_insensitively_by_word_prefix() -> None:
    event = make_event(title="Database TIMEOUT", description="while connecting")
    assert hits("data", event)
    assert hits("DATABASE timeout", event)
    assert hits("conn", event)  # the description counts too
    assert not hits("base", event)  # a prefix of a word, not any substring
    assert not hits("database missing", event)


def test_a_phrase_needs_adjacent_words_in_order_within_one_field() -> None:
    event = make_event(title="Connection refused by peer", description="retry later")
    assert hits('"connection refused"', event)
    assert hits('"conn ref"', event)  # each word a prefix, as for bare words
    assert hits('"RETRY later"', event)
    assert not hits('"refused connection"', event)  # order
    assert not hits('"connection by"', event)  # adjacency
    assert not hits('"peer retry"', event)  # across title and description
    assert hits("peer retry", event)  # as bare words, anywhere
    assert not hits('"connection refused by peer again"', event)


def test_a_group_is_a_term_and_negates_as_one() -> None:
    alpha = make_event(system="alpha")
    beta = make_event(system="beta")
    gamma = make_event(system="gamma")
    assert [hits("-(system:alpha OR system:beta)", e) for e in (alpha, beta, gamma)] == [
        False,
        False,
        True,
    ]
    assert hits("NOT (system:alpha OR system:beta)", gamma)
    assert not hits("NOT (system:gamma)", gamma)


def test_severity_comparisons_go_by_rank() -> None:
    by_severity = {s: make_event(severity=s) for s in ("debug", "info", "warning", "error",
                                                      "critical")}  # fmt: skip
    at_least_warning = [s for s, e in by_severity.items() if hits("severity:>=warning", e)]
    assert at_least_warning == ["warning", "error", "critical"]
    below_error = [s for s, e in by_severity.items() if hits("level:<error", e)]
    assert below_error == ["debug", "info", "warning"]
    assert [s for s, e in by_severity.items() if hits("severity:[debug, critical]", e)] == [
        "debug",
        "critical",
    ]


def test_timestamps_compare_as_instants() -> None:
    old = make_event(timestamp=NOW - timedelta(hours=3))
    new = make_event(timestamp=NOW - timedelta(minutes=10))
    assert [hits("timestamp:>-2h", e) for e in (old, new)] == [False, True]
    assert [hits("timestamp:<2026-03-01T10:00:00Z", e) for e in (old, new)] == [True, False]
    assert hits(f"timestamp:{(NOW - timedelta(hours=3)).isoformat()}", old)


def test_durations_and_missing_durations() -> None:
    assert hits("duration:>500", make_event(duration_ms=501))
    assert not hits("duration:>500", make_event(duration_ms=500))
    assert not hits("duration:<500", make_event())
    assert hits("-duration:<500", make_event())  # NOT of a missing value is true


def test_tags() -> None:
    event = make_event(tags=["workflow", "rag"])
    assert hits("tag:rag", event)
    assert hits("tags:work*", event)
    assert hits("tag:[x, workflow]", event)
    assert not hits("tag:[x, y]", event)
    assert hits("tag:workflow tag:rag", event)
    assert not hits("tag:work", event)


def test_fingerprint_is_the_issue_of_an_error_event() -> None:
    error = make_event(severity="error", title="Disk full")
    info = make_event(severity="info", title="Disk full")
    fp = fingerprint(error)
    assert hits(f"fingerprint:{fp}", error)
    assert hits(f'fingerprint:"{fp}"', error)
    assert not hits(f"fingerprint:{fp}", info)  # only errors are grouped into issues
    assert hits("fingerprint:*", error)
    assert not hits("fingerprint:*", info)
    assert hits("fingerprint:v1:*", error)
    assert hits(f"-fingerprint:{fp}", info)
    with pytest.raises(ValueError, match="takes no comparison"):
        parse_filter("fingerprint:>v1")


def test_string_fields_and_nulls() -> None:
    event = make_event(correlation_id="wf-1", id="ev-1", event_type="test.failed")
    assert hits("correlation_id:wf-1 id:ev-1 type:test.failed", event)
    assert hits("type:test.*", event)
    assert not hits("component:api", event)  # None never equals
    assert not hits("component:a*", event)
    assert hits("-component:api", event)


def test_data_paths_walk_objects() -> None:
    event = make_event(
        data={"repo": "acme/web", "ci": {"run": {"id": 7}}, "a.b": 1, "list": [1, 2]},
        metadata={"host": "h1"},
    )
    assert hits("data.repo:acme/*", event)
    assert hits("data.ci.run.id:7", event)
    assert hits('data."a.b":1', event)
    assert not hits("data.a.b:1", event)
    assert not hits("data.repo.x:*", event)  # a string has no keys
    assert not hits("data.list:1", event)  # arrays are not searched
    assert not hits("data.ci:*x", event)
    assert hits("metadata.host:h1 -data.host:*", event)
    assert not hits("data.repo:Acme*", event)
    assert not hits("data.ci.run.id:7*", event)  # a prefix matches strings only


def test_query_where_is_anded_with_the_fields() -> None:
    query = Query(systems=("alpha",), where=parse_filter("severity:>=error OR tag:urgent"))
    assert query.matches(make_event(system="alpha", severity="error"))
    assert query.matches(make_event(system="alpha", tags=["urgent"]))
    assert not query.matches(make_event(system="alpha"))
    assert not query.matches(make_event(system="beta", severity="error"))
    assert query.with_(limit=5).where == query.where
    assert query.unbounded.where == query.where


def test_query_refuses_a_where_that_is_not_a_filter() -> None:
    with pytest.raises(ValueError, match="where: expected a parsed filter"):
        Query(where="system:a")  # type: ignore[arg-type]
