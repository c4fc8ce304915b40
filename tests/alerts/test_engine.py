"""The alert engine against a real SQLite store and a real HTTP receiver subprocess:
thresholds fire once per episode and resolve, absence, repeat, group-by, issue and
match triggers, retries and failures in the history, signatures, Slack, e-mail over a
real SMTP server (aiosmtpd), and state kept across a restart.

Intervals are fractions of a second (``RuleLimits.lowered``); nothing sleeps: every
wait is ``wait_until`` on what the receiver or the store shows."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _common import Receiver, free_port
from eventcollector import EventCollector
from eventcollector.alert_rules import AlertRule, RuleLimits, parse_rule
from eventcollector.alert_silences import AlertSilence
from eventcollector.alerts import AlertEngine, Notifier, NotifySettings, SmtpServer
from eventcollector.storage import AlertStore

LIMITS = RuleLimits.lowered(0.05)
FAST = NotifySettings(timeout=2.0, retries=2, backoff=0.05, base_url="http://collector:8765")


async def until(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    """``wait_until`` for the loop: the engine runs on this loop, so poll with awaits."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def rule(**keys: Any) -> AlertRule:
    return (
        parse_rule({"every": "0.05s", **keys}, LIMITS)
        if "trigger" not in keys
        else (parse_rule(keys, LIMITS))
    )


@pytest.fixture
async def engine_for(collector: EventCollector) -> AsyncIterator[Callable[..., Any]]:
    """``await engine_for(rules, settings)``: an engine running ``rules``, stopped after."""
    started: list[AlertEngine] = []

    async def make(rules: Sequence[AlertRule], settings: NotifySettings = FAST) -> AlertEngine:
        store = await collector.alert_store()
        for r in rules:
            await store.put_alert_rule(r, "api")
        engine = AlertEngine(collector, notifier=Notifier(settings), tick=0.02)
        await engine.start()
        started.append(engine)
        return engine

    yield make
    for engine in started:
        await engine.stop()


async def states(collector: EventCollector, name: str) -> dict[str, Any]:
    store: AlertStore = await collector.alert_store()
    return {s.group: s for s in await store.alert_states(name)}


async def evaluated_after(collector: EventCollector, name: str, moment: datetime) -> None:
    """Wait until every group of the rule was evaluated after ``moment`` (twice over)."""
    for _ in range(2):
        after = moment
        await until(lambda: _evaluated(collector, name, after))  # noqa: B023 (awaited here)
        moment = datetime.now(UTC)


async def _evaluated(collector: EventCollector, name: str, moment: datetime) -> bool:
    found = (await states(collector, name)).values()
    return bool(found) and all(s.evaluated is not None and s.evaluated > moment for s in found)


async def errors(collector: EventCollector, n: int, system: str = "mahavishnu") -> None:
    for i in range(n):
        await collector.collect(
            system=system, event_type="job.failed", title=f"job {i} failed", severity="error"
        )


async def test_threshold_fires_once_per_episode_and_resolves(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    hook = f"{receiver.url}/hook/errors"
    errors_rule = rule(
        name="errors", filter="severity:>=error", window="1s", condition="count > 2",
        on_resolve=True, notify=[f"webhook:{hook}"], secret="s3cret",  # noqa: S106 (the receiver's test secret)
    )  # fmt: skip
    await engine_for([errors_rule])
    await errors(collector, 3)
    await until(lambda: len(receiver.received("/hook/errors")) == 1)
    await errors(collector, 3)  # the same episode: no second notice
    await evaluated_after(collector, "errors", datetime.now(UTC))
    firing = receiver.received("/hook/errors")
    assert [r["body"]["state"] for r in firing] == ["firing"]
    body = firing[0]["body"]
    assert body["rule"] == "errors"
    assert body["condition"] == "count > 2"
    assert body["threshold"] == 2
    assert body["value"] >= 3
    assert body["window"] == "1s"
    assert len(body["sample_event_ids"]) >= 3
    assert body["sample_events"][0]["severity"] == "error"
    assert body["link"].startswith("http://collector:8765/v1/events?")
    assert firing[0]["signature_ok"] is True
    # The events leave the window: resolved, and told so (on_resolve).
    await until(lambda: len(receiver.received("/hook/errors")) == 2)
    assert receiver.received("/hook/errors")[1]["body"]["state"] == "resolved"
    store = await collector.alert_store()

    async def recorded() -> bool:  # the notice is recorded after the receiver answered it
        return len(await store.alert_history("errors")) >= 4

    await until(recorded)
    history = await store.alert_history("errors")
    kinds = [(r.kind, r.state) for r in reversed(history)]
    assert kinds == [
        ("transition", "firing"), ("notified", "firing"),
        ("transition", "resolved"), ("notified", "resolved"),
    ]  # fmt: skip
    assert len(history[-1].sample_ids) >= 3  # the transition to firing names its samples


async def test_absence_fires_when_the_heartbeat_stops_and_repeats(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    await collector.collect(system="cron", event_type="heartbeat", title="alive")
    quiet = rule(
        name="no heartbeat", filter="type:heartbeat", window="0.5s", condition="count < 1",
        repeat="0.3s", notify=[f"slack:{receiver.url}/slack"],
    )  # fmt: skip
    await engine_for([quiet])
    await until(lambda: len(receiver.received("/slack")) == 2, timeout=20)
    texts = [r["body"]["text"] for r in receiver.received("/slack")]
    assert texts[0].startswith("[FIRING] no heartbeat: count < 1 over 500ms (value 0)")
    assert "http://collector:8765/v1/events?" in texts[0]
    assert list(receiver.received("/slack")[0]["body"]) == ["text"]  # Slack's payload
    history = await (await collector.alert_store()).alert_history("no heartbeat")
    assert [r.kind for r in history].count("transition") == 1  # a repeat is no transition


async def test_group_by_gives_one_alert_per_group(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    per_system = rule(
        name="per system", filter="severity:error", window="1m", condition="count >= 2",
        group_by="system", notify=[f"webhook:{receiver.url}/groups"],
    )  # fmt: skip
    await engine_for([per_system])
    await errors(collector, 2, system="alpha")
    await errors(collector, 1, system="beta")
    await until(lambda: len(receiver.received("/groups")) == 1)
    await evaluated_after(collector, "per system", datetime.now(UTC))
    (only,) = receiver.received("/groups")
    assert (only["body"]["group_by"], only["body"]["group"]) == ("system", "alpha")
    assert {e["system"] for e in only["body"]["sample_events"]} == {"alpha"}
    found = await states(collector, "per system")
    assert (found["alpha"].state, found["beta"].state) == ("firing", "ok")
    await errors(collector, 1, system="beta")
    await until(lambda: len(receiver.received("/groups")) == 2)
    assert receiver.received("/groups")[1]["body"]["group"] == "beta"


async def test_pending_for_a_duration_before_firing(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    held = rule(
        name="held", filter="severity:error", window="1m", condition="count > 0", **{"for": "0.3s"},
        notify=[f"webhook:{receiver.url}/held"],
    )  # fmt: skip
    await engine_for([held])
    await errors(collector, 1)
    await until(lambda: len(receiver.received("/held")) == 1)
    history = await (await collector.alert_store()).alert_history("held")
    transitions = [r for r in reversed(history) if r.kind == "transition"]
    assert [t.state for t in transitions] == ["pending", "firing"]
    assert (transitions[1].at - transitions[0].at).total_seconds() >= 0.3


async def test_new_issue_fires_once_per_fingerprint_and_regressions_fire(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    new = rule(name="new issue", trigger="new_issue", notify=[f"webhook:{receiver.url}/new"])
    back = rule(
        name="regressed", trigger="regressed_issue", filter="system:api",
        notify=[f"webhook:{receiver.url}/back"],
    )  # fmt: skip
    await engine_for([new, back])

    async def fail(system: str, message: str) -> None:
        await collector.collect(
            system=system, event_type="request.failed", title=message, severity="error"
        )

    await fail("api", "timeout after 30s calling db-7")
    await until(lambda: len(receiver.received("/new")) == 1)
    await fail("api", "timeout after 12s calling db-3")  # the same fingerprint
    await fail("api", "disk full")
    await fail("web", "disk full")  # another system: another issue
    await until(lambda: len(receiver.received("/new")) == 3)
    received = receiver.received("/new")
    issues = [r["body"]["issue"] for r in received]
    # Each notice is sent by a task of its own: the last two may arrive in either order.
    assert (issues[0]["title"], issues[0]["systems"]) == ("timeout after 30s calling db-7", ["api"])
    assert sorted((i["title"], i["systems"]) for i in issues[1:]) == [
        ("disk full", ["api"]),
        ("disk full", ["web"]),
    ]
    for notice in received:
        issue = notice["body"]["issue"]
        assert notice["body"]["sample_event_ids"] == [issue["last_event_id"]]
    # A regression in another system does not pass the filter; one in api does.
    other = await collector.issues(limit=10)
    for issue in other:
        await collector.set_issue_status(issue.id, "resolved")
    await fail("web", "disk full")
    await fail("api", "timeout after 1s calling db-1")
    await until(lambda: len(receiver.received("/back")) == 1)
    assert receiver.received("/back")[0]["body"]["issue"]["regressed"] is True
    assert receiver.received("/back")[0]["body"]["issue"]["title"].startswith("timeout")
    assert len(receiver.received("/new")) == 3


async def test_match_trigger_is_rate_limited(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    deploys = rule(
        name="deploys", trigger="match", filter="type:deploy.*", repeat="1h",
        notify=[f"webhook:{receiver.url}/deploys"],
    )  # fmt: skip
    builds = rule(
        name="builds", trigger="match", filter="type:build.*",
        notify=[f"webhook:{receiver.url}/builds"],
    )  # fmt: skip
    engine = await engine_for([deploys, builds])
    await until(lambda: engine.leader and collector.subscriber_count == 2)
    await collector.collect(system="ci", event_type="deploy.started", title="v1")
    await until(lambda: len(receiver.received("/deploys")) == 1)
    for i in range(3):
        await collector.collect(system="ci", event_type="deploy.started", title=f"v{i + 2}")
    await collector.collect(system="ci", event_type="build.started", title="not a deploy")
    # The round that saw the build saw the deploys before it; stopping waits for its notices.
    await until(lambda: len(receiver.received("/builds")) == 1)
    await engine.stop()
    (notice,) = receiver.received("/deploys")
    assert notice["body"]["trigger"] == "match"
    assert notice["body"]["sample_events"][0]["title"] == "v1"


async def test_failing_receivers_are_retried_and_failures_recorded(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    flaky = rule(
        name="flaky", filter="severity:error", window="1m", condition="count > 0",
        notify=[f"webhook:{receiver.url}/fail/2/x", f"webhook:{dead}"],
    )  # fmt: skip
    await engine_for([flaky])
    await errors(collector, 1)
    store = await collector.alert_store()

    async def delivered() -> bool:
        return len([r for r in await store.alert_history("flaky") if r.kind != "transition"]) == 2

    await until(delivered)
    attempts = receiver.received("/fail/2/x")
    assert [a["status"] for a in attempts] == [500, 500, 200]  # two retries, then through
    outcome = {r.target: r for r in await store.alert_history("flaky") if r.target}
    assert outcome[f"webhook:{receiver.url}/fail/2/x"].kind == "notified"
    failed = outcome[f"webhook:{dead}"]
    assert failed.kind == "notify_failed"
    assert "after 3 attempts" in (failed.error or "")


@contextmanager
def smtp_relay(got: list[Any]) -> Iterator[int]:
    """A plain SMTP relay (aiosmtpd, no STARTTLS) keeping what it is sent; its port."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Keep(Message):
        def handle_message(self, message: Any) -> None:
            got.append(message)

    port = free_port()
    smtp = Controller(Keep(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        yield port
    finally:
        smtp.stop()


MAIL = rule(
    name="mail", filter="severity:error", window="1m", condition="count > 0",
    notify=["email:ops@example.com"],
)  # fmt: skip


async def test_email_over_a_real_smtp_server(
    collector: EventCollector, engine_for: Any, tmp_path: Path
) -> None:
    got: list[Any] = []
    with smtp_relay(got) as port:
        smtp = SmtpServer("127.0.0.1", port)
        await engine_for(
            [MAIL], NotifySettings(timeout=5, retries=0, smtp=smtp, smtp_from="ec@example.org")
        )
        await errors(collector, 1)
        await until(lambda: len(got) == 1)
    (message,) = got
    assert message["To"] == "ops@example.com"
    assert message["From"] == "ec@example.org"
    assert message["Subject"].startswith("[eventcollector] [FIRING] mail: count > 0")
    assert '"rule": "mail"' in message.get_payload()


async def test_an_undeliverable_email_is_recorded_at_once(
    collector: EventCollector, engine_for: Any
) -> None:
    """A relay without STARTTLS for a login: no retry would mend it, so none is made."""
    got: list[Any] = []
    with smtp_relay(got) as port:
        smtp = SmtpServer("127.0.0.1", port, "auto", "u", "p")
        await engine_for([MAIL], NotifySettings(timeout=5, retries=3, backoff=30, smtp=smtp))
        await errors(collector, 1)
        store = await collector.alert_store()

        async def recorded() -> bool:
            return any(r.target for r in await store.alert_history("mail"))

        await until(recorded)  # well before the first 30 s backoff
    (failed,) = [r for r in await store.alert_history("mail") if r.target]
    assert failed.kind == "notify_failed"
    assert failed.error == (
        f"smtp: 127.0.0.1:{port} does not offer STARTTLS, and a password is not sent in the clear"
    )
    assert got == []


async def test_a_restart_keeps_state_and_does_not_fire_again(
    db_path: Path, receiver: Receiver
) -> None:
    steady = rule(
        name="steady", filter="severity:error", window="1m", condition="count > 0",
        notify=[f"webhook:{receiver.url}/steady"],
    )  # fmt: skip
    first = EventCollector(db_path)
    engine = AlertEngine(first, file_rules=[steady], notifier=Notifier(FAST), tick=0.02)
    await first.start()
    await engine.start()
    await errors(first, 1)
    await until(lambda: len(receiver.received("/steady")) == 1)
    await engine.stop()
    await first.stop()

    second = EventCollector(db_path)
    engine = AlertEngine(second, file_rules=[steady], notifier=Notifier(FAST), tick=0.02)
    await second.start()
    await engine.start()
    try:
        await evaluated_after(second, "steady", datetime.now(UTC))
        assert (await states(second, "steady"))[""].state == "firing"
        assert len(receiver.received("/steady")) == 1
    finally:
        await engine.stop()
        await second.stop()


async def test_one_engine_per_database_file_evaluates(
    collector: EventCollector, engine_for: Any, db_path: Path
) -> None:
    first = await engine_for([])
    await until(lambda: first.leader)
    other = EventCollector(db_path)
    engine = AlertEngine(other, tick=0.02)
    await other.start()
    await engine.start()
    try:
        await engine.round()
        assert engine.leader is False
        await first.stop()
        await collector.stop()  # closing the store releases the lease
        await until(lambda: engine.leader)
    finally:
        await engine.stop()
        await other.stop()


async def test_a_slow_receiver_holds_up_neither_ingest_nor_evaluation(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    slow = rule(
        name="slow receiver", filter="severity:error", window="1m", condition="count > 0",
        notify=[f"webhook:{receiver.url}/slow/5/x"],
    )  # fmt: skip
    settings = NotifySettings(timeout=10, retries=0)
    await engine_for([slow], settings)
    await errors(collector, 1)
    store = await collector.alert_store()
    await until(lambda: _has(store, "transition"))
    # The notice is in flight (the receiver answers after 5 s); ingest and evaluation go on.
    await errors(collector, 200)
    await evaluated_after(collector, "slow receiver", datetime.now(UTC))
    assert not await _has(store, "notified")
    assert receiver.received() == []
    await until(lambda: _has(store, "notified"), timeout=30)


async def _has(store: AlertStore, kind: str) -> bool:
    return any(r.kind == kind for r in await store.alert_history("slow receiver"))


async def test_a_silence_holds_notices_back_until_it_ends(
    collector: EventCollector, engine_for: Any, receiver: Receiver
) -> None:
    store = await collector.alert_store()
    per_system = rule(
        name="silenced", filter="severity:error", window="1m", condition="count >= 1",
        group_by="system", repeat="1h", notify=[f"webhook:{receiver.url}/silenced"],
    )  # fmt: skip
    await store.put_alert_rule(per_system, "api")
    hour = datetime.now(UTC) + timedelta(hours=1)
    alpha = await store.add_alert_silence(AlertSilence("silenced", hour, "alpha", "deploy"))
    everything = await store.add_alert_silence(AlertSilence("*", hour, "gamma"))
    assert alpha.id is not None
    await engine_for([per_system])
    await errors(collector, 1, system="alpha")
    await errors(collector, 1, system="beta")
    await until(lambda: len(receiver.received("/silenced")) == 1)
    await evaluated_after(collector, "silenced", datetime.now(UTC))
    assert [r["body"]["group"] for r in receiver.received("/silenced")] == ["beta"]
    found = await states(collector, "silenced")
    assert (found["alpha"].state, found["beta"].state) == ("firing", "firing")  # evaluated
    held = [r for r in await store.alert_history("silenced") if r.kind == "silenced"]
    assert [(r.group, r.state, r.target) for r in held] == [
        ("alpha", "firing", f"silence {alpha.id}")
    ]
    assert held[0].sample_ids  # what was held back can be looked at
    await errors(collector, 1, system="gamma")  # a silence of every rule, for one group
    await until(lambda: _held(store, "gamma"))
    # Ended: the group still FIRING notifies at its next evaluation, not after `repeat`.
    assert await store.delete_alert_silence(alpha.id)
    await until(lambda: len(receiver.received("/silenced")) == 2)
    assert receiver.received("/silenced")[1]["body"]["group"] == "alpha"
    assert [s.id for s in await store.alert_silences()] == [everything.id]
    assert not await store.delete_alert_silence(alpha.id)  # ended already


async def _held(store: AlertStore, group: str) -> bool:
    history = await store.alert_history("silenced")
    return any(r.kind == "silenced" and r.group == group for r in history)
