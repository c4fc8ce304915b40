"""Alerts (docs/alerts.md): the engine that evaluates rules and notifies, and the
operations on rules that the HTTP API and the CLI share.

Rules, states and history records are ``eventcollector.alert_rules``, silences
``eventcollector.alert_silences``; they are kept by
the store (the ``AlertStore`` capability). Webhook and Slack notices need httpx (the
``server`` extra).
"""

from eventcollector.alerts._email import SMTP_TLS_MODES, SmtpServer
from eventcollector.alerts._engine import AlertEngine, sync_file_rules
from eventcollector.alerts._manage import (
    add_alert,
    add_silence,
    alert_history,
    end_silence,
    find_rule,
    list_alerts,
    list_silences,
    remove_alert,
    test_alert,
)
from eventcollector.alerts._notify import SIGNATURE_HEADER, Notice, Notifier, NotifySettings, sign

__all__ = [
    "SIGNATURE_HEADER",
    "SMTP_TLS_MODES",
    "AlertEngine",
    "Notice",
    "Notifier",
    "NotifySettings",
    "SmtpServer",
    "add_alert",
    "add_silence",
    "alert_history",
    "end_silence",
    "find_rule",
    "list_alerts",
    "list_silences",
    "remove_alert",
    "sign",
    "sync_file_rules",
    "test_alert",
]
