"""A schemathesis check for tests/server/test_openapi.py, loaded by the CLI through
``SCHEMATHESIS_HOOKS`` (a file, so it is not collected as a test module).

Schemathesis's ``positive_data_acceptance`` wants every schema-valid request answered
2xx. OpenAPI cannot state rules that join parameters (``since`` or ``minutes``, not
both; a ``cursor`` only for the order it was made for), a value only the server makes
(``cursor``), the filter language's grammar (``q``), how an alert rule's or a silence's
keys join, or what is stored (a silence's rule), so the test lets that check take
a 400, and this one refuses every 400 to schema-valid data but those naming such a rule.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

RULES_OPENAPI_CANNOT_STATE = (
    "since: give since or minutes/hours/days, not both",
    "cursor: ",
    "offset: cannot be combined with cursor",
    "q: ",  # the filter language's grammar (docs/filters.md) is beyond a JSON Schema
    "until: must be in the future",  # a mute's end, relative to the server's clock
    "until: required for status",  # a field that another field's value requires
    "until: must be after since",  # issue activity: a range's two ends
    "interval: more than",  # issue activity: too many buckets for the range
    # A silence: 'for' or 'until', not both; a stored rule's name; bounds relative to
    # the clock or a duration's value.
    "for: give either 'for'",
    "for: must be positive",
    "for: at most",
    "until: at most",
    "rule: no alert rule",
)
#: An alert rule's keys whose refusal depends on other keys (a trigger or a window with a
#: condition; a condition needs a filter), on a duration's value (window from 1m to 24h,
#: every 10s or more) or on the filter language's grammar.
ALERT_KEYS_OPENAPI_CANNOT_STATE = (
    "filter", "window", "condition", "group_by", "for", "every", "trigger", "repeat",
)  # fmt: skip
_ALERT_ERROR = re.compile(r"alert '.*?': (\w+): ", re.DOTALL)


def _alert_rule_beyond_schema(error: str) -> bool:
    match = _ALERT_ERROR.match(error)
    return match is not None and match[1] in ALERT_KEYS_OPENAPI_CANNOT_STATE


@schemathesis.check
def valid_data_refused_only_by_a_rule_across_parameters(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = str(response.json().get("error", ""))
    if not error.startswith(RULES_OPENAPI_CANNOT_STATE) and not _alert_rule_beyond_schema(error):
        raise AssertionError(f"schema-valid request refused with 400: {error}")
    return None
