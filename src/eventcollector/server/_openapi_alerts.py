"""The alert endpoints' part of the OpenAPI document (``openapi`` merges it in):
the wire types and the paths of /v1/alerts and /v1/silences. The patterns are the rule parser's own
(``alert_rules``); what joins keys (a trigger or a window, a condition's filter) and
the bounds of durations are beyond a schema (tests/server/_openapi_checks.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from eventcollector.alert_rules import (
    CONDITION_PATTERN,
    DURATION_PATTERN,
    GROUP_BY_PATTERN,
    MAX_NAME,
    MAX_NOTIFY,
    NAME_PATTERN,
    NOTIFY_PATTERN,
)
from eventcollector.alert_silences import MAX_REASON
from eventcollector.alerts import SIGNATURE_HEADER

__all__ = ["TYPES", "paths"]


def _exact(pattern: str) -> str:
    return f"^({pattern})$"


_Duration = Annotated[str, msgspec.Meta(pattern=_exact(DURATION_PATTERN))]
_Time = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
_STATE = Literal["ok", "pending", "firing", "resolved"]
_TRIGGER = Literal["new_issue", "regressed_issue", "match"]


class AlertRuleIn(msgspec.Struct, forbid_unknown_fields=True, rename={"for_": "for"}):
    """A rule, with the keys of a rules file's [[alert]] table (docs/alerts.md)."""

    name: Annotated[str, msgspec.Meta(pattern=_exact(NAME_PATTERN), max_length=MAX_NAME)]
    filter: str | None = None
    window: _Duration | None = None
    condition: Annotated[str, msgspec.Meta(pattern=_exact(CONDITION_PATTERN))] | None = None
    group_by: Annotated[str, msgspec.Meta(pattern=_exact(GROUP_BY_PATTERN))] | None = None
    for_: _Duration | None = None
    every: _Duration | None = None
    trigger: _TRIGGER | None = None
    repeat: _Duration | None = None
    on_resolve: bool = False
    notify: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=_exact(NOTIFY_PATTERN))]],
        msgspec.Meta(max_length=MAX_NOTIFY),
    ] = []
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None


class AlertState(msgspec.Struct):
    rule: str
    group: str
    state: _STATE
    since: _Time
    value: float | None
    evaluated: _Time | None
    notified: _Time | None


class AlertRule(msgspec.Struct, omit_defaults=True, rename={"for_": "for"}):
    """A stored rule: its keys (never the secret), where it came from, its states."""

    name: str
    repeat: str
    on_resolve: bool
    notify: list[str]
    source: Literal["file", "api"]
    filter: str | None = None
    trigger: _TRIGGER | None = None
    window: str | None = None
    condition: str | None = None
    group_by: str | None = None
    for_: str | None = None
    every: str | None = None
    has_secret: bool | None = None
    states: list[AlertState] | None = None


class AlertRules(msgspec.Struct):
    alerts: list[AlertRule]


class AlertGroupValue(msgspec.Struct):
    group: str
    value: float | None
    breached: bool


class AlertTest(msgspec.Struct, omit_defaults=True):
    rule: str
    at: _Time
    groups: list[AlertGroupValue]
    condition: str | None = None
    trigger: _TRIGGER | None = None


class AlertRecord(msgspec.Struct):
    rule: str
    group: str
    at: _Time
    kind: Literal["transition", "notified", "notify_failed", "silenced"]
    state: _STATE
    value: float | None
    target: str | None
    error: str | None
    sample_ids: list[str]


class AlertHistory(msgspec.Struct):
    rule: str
    history: list[AlertRecord]


class AlertDeleted(msgspec.Struct):
    deleted: str


class SilenceIn(msgspec.Struct, forbid_unknown_fields=True):
    #: A rule's name, or "*" for every rule (a rule of that name must exist).
    rule: Annotated[str, msgspec.Meta(pattern=_exact(NAME_PATTERN), max_length=MAX_NAME)]
    #: How long (at most 366d); give this or ``until``.
    for_: _Duration | None = msgspec.field(default=None, name="for")
    #: When it ends (ISO 8601, within 366 days); give this or ``for``.
    until: _Time | None = None
    #: One group's value as text (as in the rule's states); none: every group.
    group: Annotated[str, msgspec.Meta(max_length=MAX_NAME)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON)] = ""


class Silence(msgspec.Struct):
    id: int
    rule: str
    group: str | None
    until: _Time
    reason: str
    created: _Time


class Silences(msgspec.Struct):
    silences: list[Silence]


class SilenceEnded(msgspec.Struct):
    ended: int


TYPES: tuple[Any, ...] = (
    AlertRuleIn,
    AlertRules,
    AlertTest,
    AlertHistory,
    AlertDeleted,
    SilenceIn,
    Silence,
    Silences,
    SilenceEnded,
)


def paths(ref: Any, json: Any, errors: Any, param: Any) -> dict[str, Any]:
    """The /v1/alerts paths, built with ``openapi``'s helpers."""
    name = param("name", "The rule's name.", {"type": "string"}, where="path")
    limit = param(
        "limit", "At most (default 100).", {"type": "integer", "minimum": 1, "maximum": 1000}
    )

    def op(summary: str, ok: Any, params: list[Any], *codes: int, status: str = "200") -> Any:
        return {
            "summary": summary,
            "parameters": params,
            "responses": {status: json(ok), **errors(400, 401, 403, 503, *codes)},
        }

    add = op(
        "Add a rule, or replace the rule of that name (admin scope); 201 when new.",
        ref("AlertRule"),
        [],
        status="201",
    )
    add["responses"]["200"] = json(ref("AlertRule"), "Replaced")
    add["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref("AlertRuleIn")}},
    }
    add["description"] = (
        f"Webhooks of a rule with a secret carry {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256"
        " of the body> (docs/alerts.md)."
    )
    silence_id = param("silence_id", "The silence's id.", {"type": "integer"}, where="path")
    silence = op(
        "Hold back a rule's notices until a time (admin scope); docs/alerts.md, Silences.",
        ref("Silence"),
        [],
        status="201",
    )
    silence["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ref("SilenceIn")}},
    }
    return {
        "/v1/alerts": {
            "get": op("Every rule with its states.", ref("AlertRules"), []),
            "post": add,
        },
        "/v1/alerts/{name}": {
            "get": op("One rule with its states.", ref("AlertRule"), [name], 404),
            "delete": op(
                "Remove a rule, its states and history (admin scope).",
                ref("AlertDeleted"),
                [name],
                404,
            ),
        },
        "/v1/alerts/{name}/test": {
            "post": op(
                "Evaluate the rule now; notifies nobody, changes no state.",
                ref("AlertTest"),
                [name],
                404,
            )
        },
        "/v1/alerts/{name}/history": {
            "get": op(
                "Transitions and notifications (failures too), newest first.",
                ref("AlertHistory"),
                [name, limit],
                404,
            )
        },
        "/v1/silences": {
            "get": op("The silences in force, oldest first.", ref("Silences"), []),
            "post": silence,
        },
        "/v1/silences/{silence_id}": {
            "delete": op("End a silence now (admin scope).", ref("SilenceEnded"), [silence_id], 404)
        },
    }
