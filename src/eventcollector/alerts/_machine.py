"""The state of one rule and group, step by step (pure; docs/alerts.md, States).

A condition rule, per evaluation:

- breached and OK/RESOLVED: FIRING (notify), or PENDING first when the rule has ``for``;
- breached and PENDING: FIRING (notify) once ``for`` has passed since it became PENDING;
- breached and FIRING: stays; notifies again once ``repeat`` has passed since the last;
- not breached and PENDING: OK; not breached and FIRING: RESOLVED (notify if ``on_resolve``);
- otherwise it stays.

An event trigger moves to FIRING (notify) on its trigger; a ``match`` trigger notifies
at most once per ``repeat`` (matches in between are counted into the next notice).
A trigger rule with nothing new for ``repeat`` after its last notice is RESOLVED.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState

__all__ = ["Step", "condition_step", "quiet_step", "trigger_step"]


@dataclass(frozen=True, slots=True)
class Step:
    """The state after a step, the notice to send (None: none), and the transition."""

    state: AlertState
    notice: str | None = None
    transition: AlertRecord | None = None


def _fresh(rule: AlertRule, group: str, now: datetime) -> AlertState:
    return AlertState(rule.name, group, "ok", now)


def _move(prev: AlertState, to: str, value: float | None, now: datetime) -> AlertState:
    return replace(prev, state=to, since=now, value=value, evaluated=now)  # type: ignore[arg-type]


def _transition(state: AlertState, value: float | None, ids: tuple[str, ...] = ()) -> AlertRecord:
    return AlertRecord(
        state.rule, state.group, state.since, "transition", state.state, value, sample_ids=ids
    )


def _due(rule: AlertRule, prev: AlertState, now: datetime) -> bool:
    return prev.notified is None or now - prev.notified >= timedelta(seconds=rule.repeat)


def condition_step(
    rule: AlertRule, prev: AlertState | None, group: str, value: float | None, now: datetime
) -> Step:
    """One evaluation of a condition rule's group with the value measured now."""
    assert rule.condition is not None
    prev = prev or _fresh(rule, group, now)
    breached = rule.condition.breached(value)
    current = prev.state
    if breached and current in ("ok", "resolved"):
        if rule.for_ > 0:
            state = _move(prev, "pending", value, now)
            return Step(state, None, _transition(state, value))
        state = replace(_move(prev, "firing", value, now), notified=now)
        return Step(state, "firing", _transition(state, value))
    if breached and current == "pending":
        if now - prev.since >= timedelta(seconds=rule.for_):
            state = replace(_move(prev, "firing", value, now), notified=now)
            return Step(state, "firing", _transition(state, value))
        return Step(replace(prev, value=value, evaluated=now))
    if breached and current == "firing":
        if _due(rule, prev, now):
            return Step(replace(prev, value=value, evaluated=now, notified=now), "repeat")
        return Step(replace(prev, value=value, evaluated=now))
    if current == "pending":
        state = _move(prev, "ok", value, now)
        return Step(state, None, _transition(state, value))
    if current == "firing":
        state = _move(prev, "resolved", value, now)
        notice = "resolved" if rule.on_resolve else None
        if notice:
            state = replace(state, notified=now)
        return Step(state, notice, _transition(state, value))
    return Step(replace(prev, value=value, evaluated=now))


def trigger_step(
    rule: AlertRule, prev: AlertState | None, group: str, value: float, now: datetime
) -> Step:
    """An event trigger fired (``value``: matches or issues since the last notice)."""
    prev = prev or _fresh(rule, group, now)
    if rule.trigger == "match" and prev.state == "firing" and not _due(rule, prev, now):
        return Step(prev)  # rate-limited: the caller keeps counting
    if prev.state == "firing":
        return Step(replace(prev, value=value, evaluated=now, notified=now), "repeat")
    state = replace(_move(prev, "firing", value, now), notified=now)
    return Step(state, "firing", _transition(state, value))


def quiet_step(rule: AlertRule, prev: AlertState, now: datetime) -> Step | None:
    """A trigger rule's FIRING state once ``repeat`` has passed without a notice."""
    if prev.state != "firing" or not _due(rule, prev, now):
        return None
    state = _move(prev, "resolved", None, now)
    notice = "resolved" if rule.on_resolve else None
    if notice:
        state = replace(state, notified=now)
    return Step(state, notice, _transition(state, None))
