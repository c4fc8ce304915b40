"""Managing rules: what ``/v1/alerts`` and ``eventcollector alerts`` do with a local store.

``list_alerts``, ``add_alert``, ``remove_alert``, ``alert_history`` and ``test_alert``
(evaluate now, notify nobody); ``list_silences``, ``add_silence`` and ``end_silence``
(``/v1/silences``). Secrets never leave: a rule with one shows ``has_secret: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from eventcollector.alert_rules import AlertRule, RuleLimits, parse_rule
from eventcollector.alert_silences import EVERY_RULE, parse_silence
from eventcollector.alerts import _evaluate as evaluate
from eventcollector.collector import EventCollector
from eventcollector.query import Query

__all__ = [
    "add_alert",
    "add_silence",
    "alert_history",
    "end_silence",
    "find_rule",
    "list_alerts",
    "list_silences",
    "remove_alert",
    "test_alert",
]

MAX_HISTORY = 1_000


async def list_alerts(collector: EventCollector) -> list[dict[str, Any]]:
    """Every rule with its source and its states (one per group)."""
    store = await collector.alert_store()
    states = await store.alert_states()
    out = []
    for rule, source in await store.alert_rules():
        doc = rule.to_dict(secret=False)
        doc["source"] = source
        doc["states"] = [s.to_dict() for s in states if s.rule == rule.name]
        out.append(doc)
    return out


async def find_rule(collector: EventCollector, name: str) -> AlertRule:
    """The stored rule called ``name``; LookupError naming it when there is none."""
    store = await collector.alert_store()
    for rule, _ in await store.alert_rules():
        if rule.name == name:
            return rule
    raise LookupError(f"name: no alert rule {name!r}")


async def add_alert(
    collector: EventCollector, table: Mapping[str, Any], limits: RuleLimits | None = None
) -> tuple[dict[str, Any], bool]:
    """Validate and store a rule (replacing one of its name); its public form, and
    whether it is new. ValueError naming the rule and the key."""
    rule = parse_rule(table, limits)
    store = await collector.alert_store()
    created = await store.put_alert_rule(rule, "api")
    return {**rule.to_dict(secret=False), "source": "api"}, created


async def remove_alert(collector: EventCollector, name: str) -> None:
    """Delete a rule with its states and history; LookupError when there is none."""
    store = await collector.alert_store()
    if not await store.delete_alert_rule(name):
        raise LookupError(f"name: no alert rule {name!r}")


async def alert_history(
    collector: EventCollector, name: str, limit: int = 100
) -> list[dict[str, Any]]:
    """The rule's history, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY:
        raise ValueError(f"limit: expected an integer from 1 to {MAX_HISTORY}")
    await find_rule(collector, name)
    store = await collector.alert_store()
    return [r.to_dict() for r in await store.alert_history(name, limit)]


async def test_alert(collector: EventCollector, name: str) -> dict[str, Any]:
    """Evaluate the rule now without notifying or changing its state: the value per
    group and whether it breaches. An event trigger reports the matching events of
    the last ``repeat`` (``match``) or nothing to measure (issue triggers)."""
    rule = await find_rule(collector, name)
    now = datetime.now(UTC)
    doc: dict[str, Any] = {"rule": rule.name, "at": now.isoformat()}
    if rule.condition is not None:
        store = await collector.alert_store()
        known = {s.group for s in await store.alert_states(rule.name)}
        measured = await evaluate.measure(collector, rule, now, known)
        doc["condition"] = str(rule.condition)
        doc["groups"] = [
            {"group": m.group, "value": m.value, "breached": rule.condition.breached(m.value)}
            for m in measured
        ]
        return doc
    doc["trigger"] = rule.trigger
    if rule.trigger == "match":
        since = now - timedelta(seconds=rule.repeat)
        value = await collector.count(Query(since=since, until=now, where=rule.where(now)))
        doc["groups"] = [{"group": "", "value": value, "breached": value > 0}]
    else:
        doc["groups"] = []
    return doc


async def list_silences(collector: EventCollector) -> list[dict[str, Any]]:
    """The silences in force, oldest first."""
    store = await collector.alert_store()
    return [s.to_dict() for s in await store.alert_silences()]


async def add_silence(collector: EventCollector, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and store a silence (docs/alerts.md, Silences); it as stored.
    ValueError naming the key, and the rule when no rule has its name."""
    silence = parse_silence(doc, datetime.now(UTC))
    if silence.rule != EVERY_RULE:
        try:
            await find_rule(collector, silence.rule)
        except LookupError:
            raise ValueError(f"rule: no alert rule {silence.rule!r} ('*': every rule)") from None
    store = await collector.alert_store()
    return (await store.add_alert_silence(silence)).to_dict()


async def end_silence(collector: EventCollector, silence_id: int) -> None:
    """End a silence now; LookupError when none of that id is in force."""
    store = await collector.alert_store()
    if not await store.delete_alert_silence(silence_id):
        raise LookupError(f"id: no silence {silence_id} in force")
