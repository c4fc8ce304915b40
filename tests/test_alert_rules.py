"""Alert rules as the rules file and the HTTP API give them: every key, the defaults,
and refusals that name the rule and the key; the state machine step by step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventcollector.alert_rules import (
    AlertRule,
    Condition,
    RuleLimits,
    format_duration,
    load_rules,
    parse_duration,
    parse_rule,
)
from eventcollector.alerts._machine import condition_step, quiet_step, trigger_step

ISSUE_EXAMPLE = """
[[alert]]
name = "mahavishnu errors"
filter = "system:mahavishnu severity:>=error"
window = "5m"
condition = "count > 10"
every = "30s"
repeat = "1h"
notify = ["webhook:https://hooks.example/ops"]

[[alert]]
name = "new error issue"
trigger = "new_issue"
notify = ["slack:https://hooks.slack.example/T000/B000/XXX"]
"""

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_issue_example_parses_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(ISSUE_EXAMPLE)
    errors, new = load_rules(path)
    assert errors.window == 300
    assert errors.every == 30
    assert errors.repeat == 3600
    assert str(errors.condition) == "count > 10"
    assert errors.for_ == 0
    assert errors.on_resolve is False
    assert errors.group_by is None
    assert new.trigger == "new_issue"
    assert new.repeat == 3600
    assert new.notify == ("slack:https://hooks.slack.example/T000/B000/XXX",)
    # What the store keeps reads back as the same rule.
    assert parse_rule(errors.to_dict()) == errors
    assert parse_rule(new.to_dict()) == new


def test_every_key() -> None:
    rule = parse_rule(
        {
            "name": "slow checkout",
            "filter": "system:shop",
            "window": "15m",
            "condition": "p95(duration_ms) > 800",
            "group_by": "data.route",
            "for": "2m",
            "every": "1m",
            "repeat": "4h",
            "on_resolve": True,
            "notify": ["webhook:https://a.example/x", "email:ops@example.com"],
            "secret": "k",
        }
    )
    assert rule.condition == Condition.parse("p95(duration_ms) > 800")
    assert rule.condition.metric.name == "p95:duration_ms"
    assert (rule.for_, rule.every, rule.repeat) == (120, 60, 14400)
    public = rule.to_dict(secret=False)
    assert "secret" not in public
    assert public["has_secret"] is True
    assert public["group_by"] == "data.route"
    assert parse_rule(rule.to_dict()) == rule


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"colour": "red"}, "alert 'r': colour: unknown key"),
        ({"window": "5 minutes"}, "alert 'r': window: expected a duration"),
        ({"window": "30s"}, "alert 'r': window: must be from 1m to 1d"),
        ({"window": "2d"}, "alert 'r': window: must be from 1m to 1d"),
        ({"every": "1s"}, "alert 'r': every: must be from 10s"),
        ({"for": "soon"}, "alert 'r': for: expected a duration"),
        ({"repeat": 60}, "alert 'r': repeat: expected a duration"),
        ({"condition": "count = 3"}, "alert 'r': condition: expected"),
        ({"condition": "p42(duration_ms) > 1"}, "alert 'r': condition: expected"),
        ({"filter": "system:"}, "alert 'r': filter: "),
        ({"filter": "colour:red"}, "alert 'r': filter: unknown field 'colour'"),
        ({"group_by": "title"}, "alert 'r': group_by: "),
        ({"notify": ["sms:+4412345"]}, "alert 'r': notify: unknown notifier 'sms'"),
        ({"notify": ["webhook:ftp://x"]}, "alert 'r': notify: webhook needs an http(s) URL"),
        ({"notify": ["email:nobody"]}, "alert 'r': notify: email needs an e-mail address"),
        ({"notify": "webhook:https://x"}, "alert 'r': notify: expected a list"),
        ({"on_resolve": "yes"}, "alert 'r': on_resolve: expected true or false"),
        ({"secret": ""}, "alert 'r': secret: "),
        ({"trigger": "new_issue"}, "alert 'r': condition: only for a condition rule"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule_and_key(
    keys: dict[str, object], message: str
) -> None:
    table = {"name": "r", "filter": "severity:error", "window": "5m", "condition": "count > 1"}
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule({**table, **keys})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"window": "5m", "condition": "count > 1", "name": "x"}, "alert 'x': filter: required"),
        ({"name": "x", "filter": "system:a"}, "alert 'x': condition: required"),
        ({"name": "x", "trigger": "sometimes"}, "alert 'x': trigger: one of new_issue"),
        ({"filter": "severity:error"}, "alert: name: expected"),
        ({"name": " padded"}, "alert: name: expected"),
        ({"name": "a/b"}, "alert: name: expected"),
    ],
)
def test_missing_and_joined_keys(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        parse_rule(table)


def test_a_rules_file_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(ISSUE_EXAMPLE + '\n[[alert]]\nname = "bad"\ntrigger = "match"\nnotfy = []\n')
    with pytest.raises(ValueError, match=f"^{path}: alert 'bad': notfy: unknown key"):
        load_rules(path)
    path.write_text(ISSUE_EXAMPLE + ISSUE_EXAMPLE)
    with pytest.raises(ValueError, match="alert 'mahavishnu errors': name: given twice"):
        load_rules(path)
    path.write_text("[[alert]\n")
    with pytest.raises(ValueError, match=f"^{path}: not TOML"):
        load_rules(path)
    path.write_text('[[rule]]\nname = "x"\n')
    with pytest.raises(ValueError, match="rule: unknown key"):
        load_rules(path)
    with pytest.raises(ValueError, match=r"nowhere\.toml: "):
        load_rules(tmp_path / "nowhere.toml")


def test_lowered_limits_allow_short_intervals() -> None:
    table = {
        "name": "t",
        "filter": "system:a",
        "window": "2s",
        "condition": "count > 0",
        "every": "0.1s",
    }
    with pytest.raises(ValueError, match="window"):
        parse_rule(table)
    assert parse_rule(table, RuleLimits.lowered(0.1)).every == pytest.approx(0.1)


def test_durations_read_back() -> None:
    for text in ("250ms", "30s", "5m", "1h", "1d", "90s"):
        assert format_duration(parse_duration(text, "x")) == text
    assert parse_duration("1.5h", "x") == 5400


def _condition(**keys: object) -> AlertRule:
    table = {"name": "c", "filter": "system:a", "window": "5m", "condition": "count > 2"}
    return parse_rule({**table, **keys})


def test_the_condition_state_machine() -> None:
    rule = _condition(on_resolve=True, repeat="1h")
    s = condition_step(rule, None, "", 1, T0)
    assert (s.state.state, s.notice, s.transition) == ("ok", None, None)
    s = condition_step(rule, s.state, "", 3, T0 + timedelta(seconds=30))
    assert (s.state.state, s.notice) == ("firing", "firing")
    assert s.transition is not None
    assert s.transition.state == "firing"
    s = condition_step(rule, s.state, "", 9, T0 + timedelta(minutes=30))
    assert (s.state.state, s.notice) == ("firing", None)  # within repeat
    s = condition_step(rule, s.state, "", 9, T0 + timedelta(minutes=61))
    assert (s.state.state, s.notice, s.transition) == ("firing", "repeat", None)
    s = condition_step(rule, s.state, "", 0, T0 + timedelta(minutes=62))
    assert (s.state.state, s.notice) == ("resolved", "resolved")
    s = condition_step(rule, s.state, "", 0, T0 + timedelta(minutes=63))
    assert (s.state.state, s.transition) == ("resolved", None)
    # Without on_resolve, resolving is recorded but nobody is told.
    quiet = _condition()
    fired = condition_step(quiet, None, "", 5, T0).state
    s = condition_step(quiet, fired, "", 0, T0 + timedelta(minutes=1))
    assert (s.state.state, s.notice) == ("resolved", None)
    assert s.transition is not None
    assert s.transition.state == "resolved"


def test_pending_lasts_for_its_duration() -> None:
    rule = _condition(**{"for": "2m"})
    s = condition_step(rule, None, "", 5, T0)
    assert (s.state.state, s.notice) == ("pending", None)
    s = condition_step(rule, s.state, "", 5, T0 + timedelta(minutes=1))
    assert (s.state.state, s.notice, s.state.since) == ("pending", None, T0)
    s = condition_step(rule, s.state, "", 5, T0 + timedelta(minutes=2))
    assert (s.state.state, s.notice) == ("firing", "firing")
    # A breach that ends while pending goes back to OK without a notice.
    s = condition_step(rule, condition_step(rule, None, "", 5, T0).state, "", 0, T0)
    assert (s.state.state, s.notice) == ("ok", None)


def test_an_absent_percentile_never_breaches() -> None:
    rule = _condition(condition="p95(duration_ms) > 10")
    assert condition_step(rule, None, "", None, T0).state.state == "ok"
    assert _condition(condition="count < 1").condition.breached(0)  # type: ignore[union-attr]


def test_triggers_fire_rate_limit_and_go_quiet() -> None:
    match = parse_rule({"name": "m", "trigger": "match", "repeat": "10m", "on_resolve": True})
    s = trigger_step(match, None, "", 1, T0)
    assert (s.state.state, s.notice) == ("firing", "firing")
    limited = trigger_step(match, s.state, "", 4, T0 + timedelta(minutes=1))
    assert limited.notice is None
    assert quiet_step(match, s.state, T0 + timedelta(minutes=5)) is None
    again = trigger_step(match, s.state, "", 4, T0 + timedelta(minutes=10))
    assert (again.notice, again.state.value) == ("repeat", 4)
    done = quiet_step(match, again.state, T0 + timedelta(minutes=21))
    assert done is not None
    assert (done.state.state, done.notice) == ("resolved", "resolved")
    # Each new issue is told, however close together.
    new = parse_rule({"name": "n", "trigger": "new_issue"})
    first = trigger_step(new, None, "", 1, T0)
    assert trigger_step(new, first.state, "", 1, T0).notice == "repeat"
