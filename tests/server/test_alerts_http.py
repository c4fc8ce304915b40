"""Alerts in the real server: ``serve --alerts FILE`` with a real HTTP receiver
subprocess, the /v1/alerts and /v1/silences API with their scopes, bad rules and
silences refused naming the key (HTTP 400 and ``serve`` itself), and state kept across a
restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from _common import Receiver, cli, event, free_port, wait_until

from .conftest import Server, start

FAST = ("--alerts-min-interval", "0.05", "--notify-backoff", "0.05", "--notify-retries", "1")
SCOPES = {"ingest": "ingest", "read": "read", "admin": "admin"}


def rules_file(directory: Path, receiver: Receiver, body: str) -> Path:
    path = directory / "alerts.toml"
    path.write_text(body.replace("RECEIVER", receiver.url), encoding="utf-8")
    return path


BURST = """
[[alert]]
name = "api errors"
filter = "system:api severity:>=error"
window = "1s"
condition = "count > 2"
every = "0.05s"
on_resolve = true
notify = ["webhook:RECEIVER/burst"]
secret = "s3cret"
"""


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    found = Receiver(tmp_path_factory.mktemp("receiver"), secret="s3cret")  # noqa: S106 (test)
    yield found
    found.stop()


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, keys: dict[str, str]
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("alert-keys")
    keys_file = directory / "keys.json"
    for name, scope in SCOPES.items():
        done = cli("keys", "create", "--scope", scope, "--keys-file", str(keys_file))
        assert done.returncode == 0, done.stderr
        keys[name] = done.stdout.strip()
    path = rules_file(directory, receiver, BURST)
    yield from start(
        tmp_path_factory, "alerts", "--keys-file", str(keys_file), "--alerts", str(path), *FAST
    )


def errors(server: Server, key: str, n: int, system: str = "api") -> None:
    batch = [event(system=system, severity="error", title=f"failed {i}") for i in range(n)]
    with server.client(key) as c:
        assert c.post("/v1/events", json=batch).status_code == 200


def test_a_burst_fires_once_signed_and_resolves(
    server: Server, keys: dict[str, str], receiver: Receiver
) -> None:
    with server.client(keys["read"]) as c:
        (listed,) = c.get("/v1/alerts").json()["alerts"]
    assert listed["name"] == "api errors"
    assert listed["source"] == "file"
    assert listed["has_secret"] is True
    assert "secret" not in listed
    errors(server, keys["ingest"], 3)
    wait_until(lambda: len(receiver.received("/burst")) >= 1, timeout=20)
    wait_until(lambda: len(receiver.received("/burst")) == 2, timeout=20)
    fired, resolved = receiver.received("/burst")
    assert fired["body"]["state"] == "firing"
    assert fired["body"]["value"] == 3
    assert fired["signature_ok"] is True  # the receiver's own HMAC check
    assert fired["body"]["link"].startswith(f"{server.url}/v1/events?")
    assert resolved["body"]["state"] == "resolved"
    with server.client(keys["read"]) as c:
        history = c.get("/v1/alerts/api errors/history").json()["history"]
        linked = c.get(fired["body"]["link"].removeprefix(server.url)).json()["events"]
    assert [(h["kind"], h["state"]) for h in history[::-1]] == [
        ("transition", "firing"), ("notified", "firing"),
        ("transition", "resolved"), ("notified", "resolved"),
    ]  # fmt: skip
    assert {e["id"] for e in linked} >= set(fired["body"]["sample_event_ids"])


def test_managing_rules_needs_the_admin_scope(server: Server, keys: dict[str, str]) -> None:
    rule = {
        "name": "quiet web",
        "filter": "system:web",
        "window": "1m",
        "condition": "count < 1",
        "group_by": "system",
        "every": "10s",
        "notify": [],
    }
    with server.client(keys["read"]) as c:
        refused = c.post("/v1/alerts", json=rule)
        assert refused.status_code == 403
        assert refused.json()["error"].startswith("scope:")
    with server.client(keys["admin"]) as c:
        added = c.post("/v1/alerts", json=rule)
        assert added.status_code == 201, added.text
        assert added.json()["source"] == "api"
        assert c.post("/v1/alerts", json={**rule, "every": "20s"}).status_code == 200  # replaced
        shown = c.get("/v1/alerts/quiet web").json()
        assert shown["every"] == "20s"
        tested = c.post("/v1/alerts/quiet web/test").json()
        assert tested["condition"] == "count < 1"
        assert c.delete("/v1/alerts/quiet web", headers={}).status_code == 200
    with server.client(keys["read"]) as c:
        assert c.get("/v1/alerts/quiet web").status_code == 404
        assert c.delete("/v1/alerts/api errors").status_code == 403
        missing = c.post("/v1/alerts/nothing/test")
        assert (missing.status_code, missing.json()["error"]) == (
            404,
            "name: no alert rule 'nothing'",
        )


def test_a_test_evaluates_without_notifying(
    server: Server, keys: dict[str, str], receiver: Receiver
) -> None:
    before = len(receiver.received())
    errors(server, keys["ingest"], 4, system="billing")  # not the rule's system
    with server.client(keys["read"]) as c:
        tested = c.post("/v1/alerts/api errors/test").json()
    assert tested["groups"] == [{"group": "", "value": 0.0, "breached": False}]
    assert len(receiver.received()) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "alert 'r': colour: unknown key"),
        ({"window": "5 minutes"}, "alert 'r': window: expected a duration"),
        ({"notify": ["pager:duty"]}, "alert 'r': notify: unknown notifier 'pager'"),
        ({"filter": "system:"}, "alert 'r': filter: "),
        ({"name": ""}, "alert: name: expected"),
    ],
)
def test_bad_rules_are_400_naming_the_key(
    server: Server, keys: dict[str, str], change: dict[str, Any], message: str
) -> None:
    rule = {"name": "r", "filter": "system:x", "window": "5m", "condition": "count > 1"}
    with server.client(keys["admin"]) as c:
        answer = c.post("/v1/alerts", json={**rule, **change})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message)


def test_bodies_that_are_not_rules(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as c:
        bad_json = c.post("/v1/alerts", content=b"{", headers={"Content-Type": "application/json"})
        assert bad_json.json()["error"].startswith("body: invalid JSON")
        listed = c.post("/v1/alerts", json=[1])
        assert listed.json()["error"].startswith("body: expected a JSON object")
        assert (
            c.get("/v1/alerts", params={"x": "1"}).json()["error"] == "x: unknown query parameter"
        )
        assert c.get("/v1/alerts/api errors/history", params={"limit": "0"}).status_code == 400


def test_silences_need_the_admin_scope_and_name_what_is_wrong(
    server: Server, keys: dict[str, str]
) -> None:
    silence = {"rule": "api errors", "for": "2h", "reason": "deploy"}
    with server.client(keys["read"]) as c:
        assert c.post("/v1/silences", json=silence).status_code == 403
        assert c.get("/v1/silences").json() == {"silences": []}
    with server.client(keys["admin"]) as c:
        added = c.post("/v1/silences", json=silence)
        assert added.status_code == 201, added.text
        doc = added.json()
        assert (doc["rule"], doc["group"], doc["reason"]) == ("api errors", None, "deploy")
        until = datetime.fromisoformat(doc["until"]) - datetime.fromisoformat(doc["created"])
        assert until.total_seconds() == 7200
        bad = {
            '{"rule": "nope", "for": "1h"}': "rule: no alert rule 'nope' ('*': every rule)",
            '{"rule": "*"}': "for: give either 'for' (a duration: 2h) or 'until' (ISO 8601)",
            '{"rule": "*", "for": "400d"}': "for: at most 366d",
            '{"rule": "*", "until": "2001-01-01T00:00:00Z"}': "until: must be in the future",
            '{"rule": "*", "for": "1h", "who": "me"}': "who: unknown key (one of for, group,"
            " reason, rule, until)",
            '{"rule": "*", "for": "1h", "group": 5}': "group: expected a group's value as"
            " text, at most 200 characters",
            "[1]": "body: expected a JSON object: rule, for or until, group, reason",
        }
        for body, message in bad.items():
            r = c.post("/v1/silences", content=body, headers={"content-type": "application/json"})
            assert (r.status_code, r.json()["error"]) == (400, message), body
    with server.client(keys["read"]) as c:
        assert [s["id"] for s in c.get("/v1/silences").json()["silences"]] == [doc["id"]]
        assert c.delete(f"/v1/silences/{doc['id']}").status_code == 403
    with server.client(keys["admin"]) as c:
        assert c.delete(f"/v1/silences/{doc['id']}").json() == {"ended": doc["id"]}
        gone = c.delete(f"/v1/silences/{doc['id']}")
        assert (gone.status_code, gone.json()["error"]) == (
            404,
            f"id: no silence {doc['id']} in force",
        )
        assert c.delete("/v1/silences/x").status_code == 404
        assert c.get("/v1/silences").json() == {"silences": []}


def test_serve_refuses_a_bad_rules_file(tmp_path: Path, receiver: Receiver) -> None:
    path = rules_file(tmp_path, receiver, BURST.replace('window = "1s"', 'window = "soon"'))
    done = cli(
        "serve", "--port", str(free_port()), "--db", str(tmp_path / "e.db"), "--alerts", str(path)
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    named = f"error: {path}: alert 'api errors': window: expected a duration such as "
    assert done.stderr == named + "'30s', '5m' or '1h', got 'soon'\n"


STEADY = """
[[alert]]
name = "steady"
filter = "severity:error"
window = "1h"
condition = "count > 0"
every = "0.05s"
notify = ["webhook:RECEIVER/steady"]
"""


def test_a_restart_neither_fires_again_nor_forgets(tmp_path: Path, receiver: Receiver) -> None:
    path = rules_file(tmp_path, receiver, STEADY)
    first = Server(tmp_path, "--alerts", str(path), *FAST)
    try:
        errors(first, "", 1)
        wait_until(lambda: len(receiver.received("/steady")) == 1, timeout=20)
    finally:
        assert "Traceback" not in first.stop()
    second = Server(tmp_path, "--alerts", str(path), *FAST)
    try:
        restarted = datetime.now().astimezone()

        def evaluated_since_restart() -> bool:
            with second.client() as c:
                (state,) = c.get("/v1/alerts/steady").json()["states"]
            return datetime.fromisoformat(state["evaluated"]) > restarted

        wait_until(evaluated_since_restart, timeout=20)
        wait_until(evaluated_since_restart, timeout=20)
        with second.client() as c:
            (state,) = c.get("/v1/alerts/steady").json()["states"]
        assert state["state"] == "firing"
        assert len(receiver.received("/steady")) == 1
    finally:
        assert "Traceback" not in second.stop()
