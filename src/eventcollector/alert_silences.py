"""Silences: an alert rule's notices held back until a time (docs/alerts.md, Silences).

A silence names a rule (or ``*``: every rule) and, optionally, one of its groups. Until
it ends the rule is evaluated as always, its states and transitions recorded, but a
notice that would go out is recorded in the history as ``silenced`` instead of sent,
so maintenance or a known incident pages nobody and leaves a trace of what was held.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from eventcollector.alert_rules import MAX_NAME, NAME_PATTERN, parse_duration
from eventcollector.model import format_timestamp, parse_timestamp

__all__ = [
    "EVERY_RULE",
    "MAX_REASON",
    "MAX_SILENCES",
    "MAX_SILENCE_SECONDS",
    "AlertSilence",
    "parse_silence",
]

#: The rule name of a silence of every rule.
EVERY_RULE = "*"
MAX_REASON = 1_000
#: Silences in force at once; an added one past it is refused.
MAX_SILENCES = 1_000
#: The longest silence: a year (a rule muted for longer wants removing).
MAX_SILENCE_SECONDS = 366 * 86_400
_KEYS = frozenset({"rule", "group", "for", "until", "reason"})

_RULE_NAME = re.compile(NAME_PATTERN)  # the rules' own


@dataclass(frozen=True, slots=True)
class AlertSilence:
    """``rule`` (or ``*``) and ``group`` (None: every group) silenced until ``until``;
    ``id`` is given when it is stored, and ``created`` then unless set."""

    rule: str
    until: datetime
    group: str | None = None
    reason: str = ""
    created: datetime | None = None
    id: int | None = None

    def covers(self, rule: str, group: str, now: datetime) -> bool:
        """Whether a notice of ``rule``'s ``group`` is held back at ``now``."""
        return (
            now < self.until
            and self.rule in (EVERY_RULE, rule)
            and (self.group is None or self.group == group)
        )

    def stored(self, silence_id: int, now: datetime) -> AlertSilence:
        return replace(self, id=silence_id, created=self.created or now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "group": self.group,
            "until": format_timestamp(self.until),
            "reason": self.reason,
            "created": None if self.created is None else format_timestamp(self.created),
        }


def parse_silence(doc: Mapping[str, Any], now: datetime) -> AlertSilence:
    """A silence from its JSON form: ``rule`` (a rule's name, or ``*``), ``for`` (a
    duration: ``2h``) or ``until`` (ISO 8601), and optionally ``group`` and ``reason``.
    ValueError naming the key."""
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (one of {', '.join(sorted(_KEYS))})")
    rule = doc.get("rule")
    if not isinstance(rule, str) or not (
        rule == EVERY_RULE or (len(rule) <= MAX_NAME and _RULE_NAME.fullmatch(rule))
    ):
        raise ValueError("rule: expected a rule's name, or '*' for every rule")
    until = _until(doc, now)
    group = doc.get("group")
    if group is not None and not (isinstance(group, str) and len(group) <= MAX_NAME):
        raise ValueError(f"group: expected a group's value as text, at most {MAX_NAME} characters")
    reason = doc.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValueError(f"reason: expected text of at most {MAX_REASON} characters")
    return AlertSilence(rule, until, group, reason.strip(), created=now)


def _until(doc: Mapping[str, Any], now: datetime) -> datetime:
    lasting: Any = doc.get("for")  # null is "not given"
    until_text: Any = doc.get("until")
    if (lasting is None) == (until_text is None):
        raise ValueError("for: give either 'for' (a duration: 2h) or 'until' (ISO 8601)")
    if lasting is not None:
        seconds = parse_duration(lasting, "for")
        if seconds <= 0:
            raise ValueError("for: must be positive")
        if seconds > MAX_SILENCE_SECONDS:
            raise ValueError("for: at most 366d")
        return now + timedelta(seconds=seconds)
    until = parse_timestamp(until_text, "until")
    if until <= now:
        raise ValueError("until: must be in the future")
    if until - now > timedelta(seconds=MAX_SILENCE_SECONDS):
        raise ValueError("until: at most 366 days ahead")
    return until
