"""``eventcollector alerts`` through the real console script: on the local store, and
with ``--url`` against a real server (the admin scope for changes)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _common import cli, free_port, serve_command, terminate, wait_for_health

RULES = """
[[alert]]
name = "api errors"
filter = "system:api severity:>=error"
window = "5m"
condition = "count > 1"
group_by = "source_component"

[[alert]]
name = "new issue"
trigger = "new_issue"
notify = ["email:ops@example.com"]
"""


def _emit(db: Path, component: str) -> None:
    done = cli("emit", "--db", str(db), "-s", "api", "-t", "request.failed", "--severity",
               "error", "--title", "boom", "--component", component)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_add_list_test_history_remove(tmp_path: Path) -> None:
    db, rules = tmp_path / "events.db", tmp_path / "alerts.toml"
    rules.write_text(RULES, encoding="utf-8")
    for component in ("gateway", "gateway", "auth"):
        _emit(db, component)
    added = cli("alerts", "add", str(rules), "--db", str(db), "--format", "json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"added": ["api errors", "new issue"]}
    listed = cli("alerts", "list", "--db", str(db), "--format", "jsonl")
    docs = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(d["name"], d["source"], d["states"]) for d in docs] == [
        ("api errors", "api", []),
        ("new issue", "api", []),
    ]
    tested = cli("alerts", "test", "api errors", "--db", str(db), "--format", "json")
    assert json.loads(tested.stdout)["groups"] == [
        {"group": "auth", "value": 1.0, "breached": False},
        {"group": "gateway", "value": 2.0, "breached": True},
    ]
    table = cli("alerts", "list", "--db", str(db), "--format", "table", env={"COLUMNS": "160"})
    assert "count > 1 over 5m" in table.stdout
    history = cli("alerts", "history", "api errors", "--db", str(db), "--format", "json")
    assert json.loads(history.stdout) == {"rule": "api errors", "history": []}  # serve evaluates
    removed = cli("alerts", "remove", "new issue", "--db", str(db))
    assert (removed.returncode, removed.stderr) == (0, "removed new issue\n")
    listed = cli("alerts", "list", "--db", str(db), "--format", "jsonl")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["api errors"]


def test_bad_rules_and_names_are_one_line(tmp_path: Path) -> None:
    db, rules = tmp_path / "events.db", tmp_path / "alerts.toml"
    _emit(db, "x")
    rules.write_text(RULES.replace('"5m"', '"5 min"'), encoding="utf-8")
    bad = cli("alerts", "add", str(rules), "--db", str(db))
    assert bad.returncode == 2
    assert bad.stderr == (
        f"error: {rules}: alert 'api errors': window: expected a duration such as '30s',"
        " '5m' or '1h', got '5 min'\n"
    )
    rules.write_text(RULES.replace("email:", "fax:"), encoding="utf-8")
    bad = cli("alerts", "add", str(rules), "--db", str(db))
    assert bad.returncode == 2
    assert bad.stderr.startswith(
        f"error: {rules}: alert 'new issue': notify: unknown notifier 'fax'"
    )
    for command in (["remove", "nope"], ["test", "nope"], ["history", "nope"]):
        missing = cli("alerts", *command, "--db", str(db))
        assert (missing.returncode, missing.stderr) == (1, "error: name: no alert rule 'nope'\n")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(url, read key, admin key) of a real server with keys."""
    keys_file = tmp_path / "keys.json"
    made = [
        cli("keys", "create", "--scope", s, "--keys-file", str(keys_file))
        for s in ("read", "admin")
    ]
    port = free_port()
    log = tmp_path / "server.log"
    command = serve_command(port, tmp_path / "server.db", "--keys-file", str(keys_file))
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(
            process, url, log, timeout=20, probe_timeout=1, give_up=lambda: terminate(process)
        )
        yield url, made[0].stdout.strip(), made[1].stdout.strip()
    finally:
        terminate(process)
    assert "Traceback" not in log.read_text()


def test_with_url_through_the_server(tmp_path: Path, server: tuple[str, str, str]) -> None:
    url, reader, admin = server
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES, encoding="utf-8")
    refused = cli("alerts", "add", str(rules), "--url", url, "--api-key", reader)
    assert refused.returncode == 1
    assert refused.stderr == "error: scope: this key lacks the 'admin' scope\n"
    added = cli("alerts", "add", str(rules), "--url", url, "--api-key", admin, "--format", "json")
    assert json.loads(added.stdout) == {"added": ["api errors", "new issue"]}, added.stderr
    listed = cli("alerts", "list", "--url", url, "--api-key", reader, "--format", "jsonl")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == [
        "api errors",
        "new issue",
    ]
    tested = cli("alerts", "test", "api errors", "--url", url, "--api-key", reader, "-f", "json")
    assert json.loads(tested.stdout)["condition"] == "count > 1"
    history = cli("alerts", "history", "new issue", "--url", url, "--api-key", reader, "-f", "json")
    assert json.loads(history.stdout) == {"rule": "new issue", "history": []}
    removed = cli("alerts", "remove", "new issue", "--url", url, "--api-key", admin)
    assert removed.returncode == 0, removed.stderr
    missing = cli("alerts", "test", "new issue", "--url", url, "--api-key", reader)
    assert (missing.returncode, missing.stderr) == (1, "error: name: no alert rule 'new issue'\n")


def test_silences_on_the_local_store_and_through_the_server(
    tmp_path: Path, server: tuple[str, str, str]
) -> None:
    db, rules = tmp_path / "events.db", tmp_path / "alerts.toml"
    rules.write_text(RULES, encoding="utf-8")
    _emit(db, "gateway")
    assert cli("alerts", "add", str(rules), "--db", str(db)).returncode == 0
    silenced = cli("alerts", "silence", "api errors", "--group", "gateway", "--db", str(db),
                   "--reason", "deploy", "-f", "json")  # fmt: skip
    assert silenced.returncode == 0, silenced.stderr
    doc = json.loads(silenced.stdout)
    assert (doc["rule"], doc["group"], doc["reason"]) == ("api errors", "gateway", "deploy")
    assert cli("alerts", "silence", "*", "--for", "30m", "--db", str(db)).returncode == 0
    table = cli("alerts", "silences", "--db", str(db), "-f", "table", env={"COLUMNS": "160"})
    assert "gateway" in table.stdout
    assert "(every)" in table.stdout  # the second one: every group of every rule
    bad = cli("alerts", "silence", "api errors", "--for", "forever", "--db", str(db))
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: for: expected a duration such as '30s', '5m' or '1h', got 'forever'\n",
    )
    ended = cli("alerts", "unsilence", str(doc["id"]), "--db", str(db))
    assert (ended.returncode, ended.stderr) == (0, f"ended silence {doc['id']}\n")
    again = cli("alerts", "unsilence", str(doc["id"]), "--db", str(db))
    assert (again.returncode, again.stderr) == (1, f"error: id: no silence {doc['id']} in force\n")
    # Through the server: the admin scope to add and end, read to list.
    url, reader, admin = server
    refused = cli("alerts", "silence", "*", "--url", url, "--api-key", reader)
    assert (refused.returncode, refused.stderr) == (
        1,
        "error: scope: this key lacks the 'admin' scope\n",
    )
    added = cli("alerts", "silence", "*", "--url", url, "--api-key", admin, "-f", "json")
    assert added.returncode == 0, added.stderr
    remote = json.loads(added.stdout)["id"]
    listed = cli("alerts", "silences", "--url", url, "--api-key", reader, "-f", "jsonl")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [remote]
    gone = cli("alerts", "unsilence", str(remote), "--url", url, "--api-key", admin)
    assert gone.returncode == 0, gone.stderr
