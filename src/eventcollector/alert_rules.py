"""Alert rules, their states and their history: what they are, how they are checked.

A rule (docs/alerts.md) is either a **condition** over a window (``count > 10`` over
``5m``, ``p95(duration_ms) > 800``, optionally one alert per value of ``group_by``)
evaluated every ``every``, or an event **trigger** (``new_issue``, ``regressed_issue``,
``match``). This module is pure: ``parse_rule`` turns a TOML table or a JSON object into
an ``AlertRule`` (``ValueError`` naming the rule and the key), ``load_rules`` reads a
rules file, and ``AlertState``/``AlertRecord`` are what the stores keep. The engine
that evaluates and notifies is ``eventcollector.alerts``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from eventcollector.aggregation import KEY_FIELDS, Metric, field_text, parse_field
from eventcollector.filters import DATA_ROOTS, Field, Filter, parse_filter
from eventcollector.model import format_timestamp, parse_timestamp

__all__ = [
    "NOTIFIER_KINDS",
    "STATES",
    "TRIGGERS",
    "AlertRecord",
    "AlertRule",
    "AlertState",
    "Condition",
    "RuleLimits",
    "format_duration",
    "load_rules",
    "parse_duration",
    "parse_rule",
]

TRIGGERS = ("new_issue", "regressed_issue", "match")
NOTIFIER_KINDS = ("webhook", "slack", "email")
STATES = ("ok", "pending", "firing", "resolved")
State = Literal["ok", "pending", "firing", "resolved"]
#: What a history record says happened.
RECORD_KINDS = ("transition", "notified", "notify_failed", "repeat", "silenced")

_KEYS = frozenset(
    {"name", "filter", "window", "condition", "group_by", "for", "every", "trigger", "repeat",
     "on_resolve", "notify", "secret"}
)  # fmt: skip
_NULLABLE = frozenset(
    {"filter", "window", "condition", "group_by", "for", "every", "trigger", "repeat", "secret"}
)
_CONDITION_KEYS = frozenset({"window", "condition", "group_by", "for", "every"})
# The exact texts accepted (ASCII classes: the OpenAPI document states the same patterns).
DURATION_PATTERN = r"[0-9]+(\.[0-9]+)?(ms|s|m|h|d)"
CONDITION_PATTERN = (
    r"(count|(min|max|avg|sum|p50|p95|p99)\((duration_ms|(data|metadata)(\.[A-Za-z0-9_]+)+)\))"
    r" *(>=|<=|>|<) *-?[0-9]+(\.[0-9]+)?"
)
GROUP_BY_PATTERN = (
    r"system|event_type|type|severity|level|source_component|component|correlation_id"
    r"|(data|metadata)(\.[A-Za-z0-9_]+)+"
)
NAME_PATTERN = r"[^\s/\x00-\x1f\x7f]([^/\x00-\x1f\x7f]*[^\s/\x00-\x1f\x7f])?"
NOTIFY_PATTERN = r"(webhook|slack):https?://[!-.0-~]+(/[!-~]*)?|email:[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_DURATION = re.compile(DURATION_PATTERN)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CONDITION = re.compile(CONDITION_PATTERN)
_CONDITION_PARTS = re.compile(
    r"(?P<op>[a-z0-9_]+)(\((?P<field>[^()]*)\))? *(?P<cmp>>=|<=|>|<) *(?P<n>-?[0-9.]+)"
)
_GROUP_BY = re.compile(GROUP_BY_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_NOTIFY = re.compile(NOTIFY_PATTERN)
MAX_NAME = 200
MAX_RULES = 1_000
MAX_NOTIFY = 20


@dataclass(frozen=True, slots=True)
class RuleLimits:
    """The bounds the issue sets (window 1 min to 24 h, every 10 s or more); a server
    started with ``--alerts-min-interval`` lowers both minima (for tests and demos)."""

    min_window: float = 60.0
    max_window: float = 86_400.0
    min_every: float = 10.0

    @classmethod
    def lowered(cls, seconds: float) -> RuleLimits:
        return cls(min_window=min(seconds, 60.0), min_every=min(seconds, 10.0))


def parse_duration(text: object, name: str) -> float:
    """Seconds from ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``; ValueError
    naming ``name``."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{name}: expected a duration such as '30s', '5m' or '1h', got {text!r}")
    return float(match.string[: match.start(2)]) * _UNITS[match[2]]


def format_duration(seconds: float) -> str:
    """The shortest text ``parse_duration`` reads back as ``seconds``."""
    for unit in ("d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    return (
        f"{round(seconds * 1000)}ms" if seconds * 1000 == round(seconds * 1000) else f"{seconds}s"
    )


@dataclass(frozen=True, slots=True)
class Condition:
    """``metric op threshold``: ``count > 10``, ``p95(duration_ms) > 800``."""

    metric: Metric
    op: Literal[">", ">=", "<", "<="]
    threshold: float

    @classmethod
    def parse(cls, text: object) -> Condition:
        match = (
            _CONDITION_PARTS.fullmatch(text)
            if isinstance(text, str) and _CONDITION.fullmatch(text)
            else None
        )
        if match is None:
            raise ValueError(
                f"condition: expected 'count > N', 'count < N' or 'p95(duration_ms) > N',"
                f" got {text!r}"
            )
        op, field = match["op"], match["field"]
        try:
            metric = Metric.parse(op if field is None else f"{op}:{field}")
        except ValueError as exc:
            raise ValueError(f"condition: {str(exc).removeprefix('metric: ')}") from None
        return cls(metric, match["cmp"], float(match["n"]))  # type: ignore[arg-type]

    def breached(self, value: float | None) -> bool:
        """Whether ``value`` meets the condition (an absent percentile never does)."""
        if value is None or math.isnan(value):
            return False
        return {
            ">": value > self.threshold,
            ">=": value >= self.threshold,
            "<": value < self.threshold,
            "<=": value <= self.threshold,
        }[self.op]

    def __str__(self) -> str:
        n = int(self.threshold) if self.threshold == int(self.threshold) else self.threshold
        if self.metric.field is None:
            return f"{self.metric.op} {self.op} {n}"
        return f"{self.metric.op}({field_text(self.metric.field)}) {self.op} {n}"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One rule; durations in seconds. Build with ``parse_rule``."""

    name: str
    filter: str | None = None
    window: float | None = None
    condition: Condition | None = None
    group_by: Field | None = None
    for_: float = 0.0
    every: float = 30.0
    trigger: str | None = None
    repeat: float = 3600.0
    on_resolve: bool = False
    notify: tuple[str, ...] = ()
    secret: str | None = None

    def where(self, now: datetime | None = None) -> Filter | None:
        """The filter, parsed now (relative times in it resolve against ``now``)."""
        return None if self.filter is None else parse_filter(self.filter, now=now)

    def to_dict(self, *, secret: bool = True) -> dict[str, Any]:
        """The rule as ``parse_rule`` reads it (the secret left out unless ``secret``)."""
        out: dict[str, Any] = {"name": self.name}
        if self.filter is not None:
            out["filter"] = self.filter
        if self.trigger is not None:
            out["trigger"] = self.trigger
        else:
            assert self.window is not None
            assert self.condition is not None
            out["window"] = format_duration(self.window)
            out["condition"] = str(self.condition)
            if self.group_by is not None:
                out["group_by"] = field_text(self.group_by)
            if self.for_:
                out["for"] = format_duration(self.for_)
            out["every"] = format_duration(self.every)
        out["repeat"] = format_duration(self.repeat)
        out["on_resolve"] = self.on_resolve
        out["notify"] = list(self.notify)
        if secret and self.secret is not None:
            out["secret"] = self.secret
        elif self.secret is not None:
            out["has_secret"] = True
        return out


def _named(rule: str | None, message: str) -> ValueError:
    return ValueError(f"alert {rule!r}: {message}" if rule else f"alert: {message}")


def parse_rule(table: Mapping[str, Any], limits: RuleLimits | None = None) -> AlertRule:
    """An ``AlertRule`` from a TOML table or JSON object; ``ValueError`` whose message
    names the rule and the key (``alert 'x': window: expected a duration ...``)."""
    limits = limits or RuleLimits()
    if not isinstance(table, Mapping):
        raise _named(None, f"expected a table of keys, got {type(table).__name__}")
    name = table.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or _NAME.fullmatch(name) is None:
        raise _named(
            None, f"name: expected 1 to {MAX_NAME} printable characters without '/', got {name!r}"
        )
    # JSON's null means "not given" where a key is optional (TOML has no null).
    table = {k: v for k, v in table.items() if v is not None or k not in _NULLABLE}
    try:
        return _parse(name, table, limits)
    except ValueError as exc:
        raise _named(name, str(exc)) from None


def _parse(name: str, table: Mapping[str, Any], limits: RuleLimits) -> AlertRule:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (one of {', '.join(sorted(_KEYS))})")
    text = table.get("filter")
    if text is not None:
        if not isinstance(text, str):
            raise ValueError("filter: expected a string in the filter language")
        try:
            parse_filter(text)
        except ValueError as exc:
            raise ValueError(f"filter: {str(exc).removeprefix('q: ')}") from None
    trigger = table.get("trigger")
    rule = AlertRule(
        name=name,
        filter=text,
        repeat=_bounded(table, "repeat", 3600.0, limits.min_every, None),
        on_resolve=_bool(table, "on_resolve"),
        notify=_notify(table.get("notify", [])),
        secret=_secret(table.get("secret")),
    )
    if trigger is not None:
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger: one of {', '.join(TRIGGERS)}, got {trigger!r}")
        extra = sorted(_CONDITION_KEYS & set(table))
        if extra:
            raise ValueError(f"{extra[0]}: only for a condition rule, not with trigger")
        return replace(rule, trigger=trigger)
    if "condition" not in table or "window" not in table:
        missing = "condition" if "condition" not in table else "window"
        raise ValueError(f"{missing}: required (or give a trigger: {', '.join(TRIGGERS)})")
    if text is None:
        raise ValueError("filter: required for a condition rule")
    return replace(
        rule,
        window=_bounded(table, "window", None, limits.min_window, limits.max_window),
        condition=Condition.parse(table["condition"]),
        group_by=_group_by(table.get("group_by")),
        for_=_bounded(table, "for", 0.0, 0.0, limits.max_window),
        every=_bounded(table, "every", 30.0, limits.min_every, limits.max_window),
    )


def _bounded(
    table: Mapping[str, Any], key: str, default: float | None, low: float, high: float | None
) -> float:
    if key not in table:
        assert default is not None
        return default
    seconds = parse_duration(table[key], key)
    if seconds < low or (high is not None and seconds > high):
        top = "" if high is None else f" to {format_duration(high)}"
        raise ValueError(f"{key}: must be from {format_duration(low) if low else '0s'}{top},"
                         f" got {table[key]!r}")  # fmt: skip
    return seconds


def _bool(table: Mapping[str, Any], key: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def _group_by(text: object) -> Field | None:
    if text is None:
        return None
    if not isinstance(text, str) or _GROUP_BY.fullmatch(text) is None:
        raise ValueError(
            f"group_by: expected a field name such as system or data.repo, got {text!r}"
        )
    try:
        field = parse_field(text, "group_by")
    except ValueError:
        raise ValueError(f"group_by: unknown field {text!r}") from None
    if field.name not in DATA_ROOTS and field.name not in KEY_FIELDS:
        allowed = ", ".join(sorted(KEY_FIELDS))
        raise ValueError(f"group_by: cannot group by {text!r} (one of {allowed}, data.KEY)")
    return field


def _notify(targets: object) -> tuple[str, ...]:
    if isinstance(targets, str) or not isinstance(targets, Sequence):
        raise ValueError("notify: expected a list such as ['webhook:https://...']")
    if len(targets) > MAX_NOTIFY:
        raise ValueError(f"notify: at most {MAX_NOTIFY} targets")
    for target in targets:
        kind = target.partition(":")[0] if isinstance(target, str) else None
        if kind not in NOTIFIER_KINDS:
            raise ValueError(
                f"notify: unknown notifier {kind!r} in {target!r}"
                " (webhook:URL, slack:URL, email:ADDRESS)"
            )
        if _NOTIFY.fullmatch(target) is None:
            need = "an e-mail address" if kind == "email" else "an http(s) URL"
            raise ValueError(f"notify: {kind} needs {need}, got {target!r}")
    return tuple(targets)


def _secret(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > 1000):
        raise ValueError("secret: expected a non-empty string (at most 1000 characters)")
    return value


def load_rules(path: str | Path, limits: RuleLimits | None = None) -> list[AlertRule]:
    """The rules of a TOML file (``[[alert]]`` tables); ValueError naming the file, the
    rule and the key."""
    try:
        with open(path, "rb") as file:
            doc = tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not TOML ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    unknown = sorted(set(doc) - {"alert"})
    if unknown:
        raise ValueError(f"{path}: {unknown[0]}: unknown key (rules are [[alert]] tables)")
    tables = doc.get("alert", [])
    if not isinstance(tables, list):
        raise ValueError(f"{path}: alert: expected [[alert]] tables")
    if len(tables) > MAX_RULES:
        raise ValueError(f"{path}: at most {MAX_RULES} rules")
    rules: dict[str, AlertRule] = {}
    for table in tables:
        try:
            rule = parse_rule(table, limits)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if rule.name in rules:
            raise ValueError(f"{path}: alert {rule.name!r}: name: given twice")
        rules[rule.name] = rule
    return list(rules.values())


@dataclass(frozen=True, slots=True)
class AlertState:
    """One rule's state (per group: ``group`` is the group's value as text, "" without
    group_by). ``since``: when it entered the state; ``notified``: the last notice."""

    rule: str
    group: str
    state: State
    since: datetime
    value: float | None = None
    evaluated: datetime | None = None
    notified: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group": self.group,
            "state": self.state,
            "since": format_timestamp(self.since),
            "value": self.value,
            "evaluated": _text(self.evaluated),
            "notified": _text(self.notified),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AlertState:
        return cls(
            doc["rule"], doc["group"], doc["state"], parse_timestamp(doc["since"], "since"),
            doc.get("value"), _time(doc.get("evaluated")), _time(doc.get("notified")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One line of a rule's history: a transition (``state`` entered), a notification
    sent (``target``) or one that failed (``error``), with the value and sample ids."""

    rule: str
    group: str
    at: datetime
    kind: str
    state: str
    value: float | None = None
    target: str | None = None
    error: str | None = None
    sample_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group": self.group,
            "at": format_timestamp(self.at),
            "kind": self.kind,
            "state": self.state,
            "value": self.value,
            "target": self.target,
            "error": self.error,
            "sample_ids": list(self.sample_ids),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AlertRecord:
        return cls(
            doc["rule"], doc["group"], parse_timestamp(doc["at"], "at"), doc["kind"],
            doc["state"], doc.get("value"), doc.get("target"), doc.get("error"),
            tuple(doc.get("sample_ids") or ()),
        )  # fmt: skip


def _text(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if isinstance(value, datetime) else parse_timestamp(value, "timestamp")
