"""Fingerprint v1: the normalising rules, where type and message come from, stack
traces, overrides; and the grouping quality on the labelled corpus."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks._error_corpus import quality

from _common import make_event
from eventcollector.fingerprint import error_type, fingerprint, message, normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user 6f1c2e1a-9b7d-4c1e-8f00-123456789abc gone", "user <uuid> gone"),
        ("job deadbeef12 and 0xff00", "job <hex> and <hex>"),
        ("retry 3 of 10", "retry <n> of <n>"),
        ("at 2026-01-02T03:04:05.123+00:00 and 2026-01-02", "at <timestamp> and <timestamp>"),
        ("at 12:30:45", "at <time>"),
        ("took 12ms then 3.5s", "took <duration> then <duration>"),
        ("from 10.0.0.5:5432", "from <ip>:<n>"),
        ("peer fe80::1ff:fe23:4567:890a and ::1", "peer <ip> and <ip>"),
        ("mail bob.smith+x@example.co.uk", "mail <email>"),
        ("GET https://api.example.com/v1/items/42?page=2 failed", "GET <url> failed"),
        ("key 'alpha' and \"beta\"", "key <str> and <str>"),
        ("in /srv/app/worker.py:123 and line 7", "in /srv/app/worker.py:<line> and line <line>"),
        ("  many   spaces\n", "many spaces"),
    ],
)
def test_normalise_replaces_each_variable_part(text: str, expected: str) -> None:
    assert normalise(text) == expected


def _err(title: str = "boom", system: str = "akosha", **data: Any) -> Any:
    return make_event(system=system, event_type="error.occurred", title=title, data=data)


def test_same_error_with_other_values_shares_a_fingerprint() -> None:
    a = _err("Timeout after 120ms on 10.0.0.1 for user 42")
    b = _err("Timeout after 3.5s on 10.9.8.7 for user 977")
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a).startswith("v1:")


def test_system_type_and_fixed_words_tell_errors_apart() -> None:
    base = fingerprint(_err("Timeout on 10.0.0.1"))
    assert fingerprint(_err("Timeout on 10.0.0.1", system="oneiric")) != base
    assert fingerprint(_err("Timeout on 10.0.0.1", error_type="OSError")) != base
    assert fingerprint(_err("Refused on 10.0.0.1")) != base


def test_type_and_message_sources_in_order() -> None:
    e = _err("title", error="from data.error", error_type="A", exception={"type": "B"})
    assert (error_type(e), message(e)) == ("A", "from data.error")
    e = _err("title", exception={"type": "B", "message": "from exception"}, exception_type="C")
    assert (error_type(e), message(e)) == ("B", "from exception")
    e = _err("the title", exception_type="C")
    assert (error_type(e), message(e)) == ("C", "the title")
    assert error_type(_err()) == "error.occurred"  # no type given: the event type


def test_stack_frames_count_without_line_numbers() -> None:
    frames = [{"module": "app.db", "function": "query", "lineno": 10}]
    moved = [{"module": "app.db", "function": "query", "lineno": 99}]
    other = [{"module": "app.cache", "function": "get", "lineno": 10}]
    assert fingerprint(_err(stacktrace=frames)) == fingerprint(_err(stacktrace=moved))
    assert fingerprint(_err(stacktrace=frames)) != fingerprint(_err(stacktrace=other))
    assert fingerprint(_err(stacktrace=frames)) != fingerprint(_err())
    text = 'Traceback:\n  File "/srv/app/db.py", line {}, in query\n'
    assert fingerprint(_err(traceback=text.format(10))) == fingerprint(
        _err(traceback=text.format(11))
    )


def test_data_fingerprint_overrides_everything() -> None:
    a = _err("one", system="akosha", fingerprint="payments-down")
    b = _err("two", system="oneiric", fingerprint="payments-down")
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(_err(fingerprint=["a", "b"])) != fingerprint(_err(fingerprint=["a"]))


def test_grouping_quality_on_the_labelled_corpus() -> None:
    # A quality check, not a timing one: >= 2,000 errors from >= 40 true groups.
    result = quality(2_400)
    assert result["events"] >= 2_000
    assert result["true_groups"] >= 40
    assert result["fingerprint_v1"]["precision"] >= 0.95
    assert result["fingerprint_v1"]["recall"] >= 0.95
