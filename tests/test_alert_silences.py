"""Silences (``eventcollector.alert_silences``): what one covers, and its JSON form read
with errors that name the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventcollector.alert_silences import AlertSilence, parse_silence

NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)


def test_what_a_silence_covers() -> None:
    until = NOW + timedelta(hours=1)
    one = AlertSilence("errors", until, "acme")
    assert one.covers("errors", "acme", NOW)
    assert not one.covers("errors", "other", NOW)
    assert not one.covers("latency", "acme", NOW)
    assert not one.covers("errors", "acme", until)  # it has ended
    every = AlertSilence("*", until)
    assert every.covers("errors", "", NOW)
    assert every.covers("latency", "acme", NOW)
    # A rule without group_by has the one group "": a silence of the group "" is its own.
    assert AlertSilence("errors", until, "").covers("errors", "", NOW)
    assert not AlertSilence("errors", until, "").covers("errors", "acme", NOW)


def test_the_json_form() -> None:
    silence = parse_silence({"rule": "errors", "for": "90m", "reason": " deploy "}, NOW)
    assert silence == AlertSilence("errors", NOW + timedelta(minutes=90), None, "deploy", NOW)
    naive = parse_silence({"rule": "*", "until": "2026-12-02T12:00", "group": "acme"}, NOW)
    assert (naive.until, naive.group) == (datetime(2026, 12, 2, 12, tzinfo=UTC), "acme")
    assert silence.stored(7, NOW + timedelta(seconds=1)).to_dict() == {
        "id": 7,
        "rule": "errors",
        "group": None,
        "until": "2026-12-02T11:30:00.000000+00:00",
        "reason": "deploy",
        "created": "2026-12-02T10:00:00.000000+00:00",
    }


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"for": "1h"}, "rule: expected a rule's name, or '*' for every rule"),
        ({"rule": "a/b", "for": "1h"}, "rule: expected a rule's name, or '*' for every rule"),
        ({"rule": "x", "for": "1h", "until": "2027-01-01"}, "for: give either 'for'"),
        ({"rule": "x", "for": "soon"}, "for: expected a duration such as '30s'"),
        ({"rule": "x", "for": "0s"}, "for: must be positive"),
        ({"rule": "x", "until": "tomorrow"}, "until: not an ISO 8601 date-time: 'tomorrow'"),
        ({"rule": "x", "until": "2028-01-01T00:00Z"}, "until: at most 366 days ahead"),
        ({"rule": "x", "for": "1h", "reason": "y" * 1001}, "reason: expected text of at most"),
        ({"rule": "x", "for": "1h", "reason": None}, "reason: expected text of at most"),
    ],
)
def test_bad_silences_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("*", r"\*")):
        parse_silence(doc, NOW)
