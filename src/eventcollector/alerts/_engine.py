"""``AlertEngine``: evaluates the stored rules on the collector's loop and notifies.

Every ``tick`` the engine reloads the rules (so a rule added over HTTP on any server
takes effect) and asks the store for the lease: only its holder evaluates, so with
several servers on one database exactly one notifies; when it dies, the next to ask
takes over, starting from the states stored. Evaluation reads through the store's
aggregation (reader threads on SQLite, the pool on PostgreSQL) and never holds up
ingest; notices are sent by tasks of their own (``_notify``).

Issue triggers: every server queues the issues its commits create or regress
(``collector.on_issue``) in the store; the holder empties the queue each tick.
``match`` triggers subscribe to the collector's live feed, which on PostgreSQL also
carries the other servers' events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from eventcollector.aggregation import Key
from eventcollector.aggregation_reference import key_value
from eventcollector.alert_rules import AlertRecord, AlertRule, AlertState
from eventcollector.alert_silences import AlertSilence
from eventcollector.alerts import _evaluate as evaluate
from eventcollector.alerts._machine import Step, condition_step, quiet_step, trigger_step
from eventcollector.alerts._notify import Notice, Notifier
from eventcollector.collector import EventCollector
from eventcollector.filters import matches
from eventcollector.issues import IssueChange
from eventcollector.model import Event
from eventcollector.query import Query
from eventcollector.storage import AlertStore

__all__ = ["AlertEngine", "sync_file_rules"]

log = logging.getLogger("eventcollector.alerts")

_ISSUE_TRIGGERS = {"new": "new_issue", "regressed": "regressed_issue"}


async def sync_file_rules(store: AlertStore, rules: Sequence[AlertRule]) -> None:
    """Store the rules of a rules file, and delete the file's rules it no longer has."""
    names = {r.name for r in rules}
    for stored, source in await store.alert_rules():
        if source == "file" and stored.name not in names:
            await store.delete_alert_rule(stored.name)
    for rule in rules:
        await store.put_alert_rule(rule, "file")


@dataclass(slots=True)
class _Matches:
    """A match trigger's events since its last notice, for one group."""

    key: Key
    count: int = 0
    samples: list[Event] = field(default_factory=list)


class AlertEngine:
    """Runs the alert rules of ``collector``'s store (start/stop with the server)."""

    def __init__(
        self,
        collector: EventCollector,
        *,
        file_rules: Sequence[AlertRule] | None = None,
        notifier: Notifier | None = None,
        tick: float = 1.0,
    ) -> None:
        if tick <= 0:
            raise ValueError("tick: must be positive")
        self.collector = collector
        self.notifier = notifier or Notifier()
        self.tick = tick
        self._file_rules = file_rules
        self._store: AlertStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rules: dict[str, AlertRule] = {}
        self._leader = False
        self._states: dict[tuple[str, str], AlertState] = {}
        self._due: dict[str, float] = {}
        self._subscribed: dict[str, tuple[AlertRule, Any]] = {}
        self._matches: dict[tuple[str, str], _Matches] = {}
        self._silences: list[AlertSilence] = []
        #: Condition rules' FIRING groups whose notice a silence held back: they notify
        #: at their next evaluation once it ends.
        self._held: set[tuple[str, str]] = set()

    @property
    def leader(self) -> bool:
        """Whether this engine held the lease at its last round."""
        return self._leader

    async def start(self) -> None:
        self._store = await self.collector.alert_store()
        if self._file_rules is not None:
            await sync_file_rules(self._store, self._file_rules)
        # Known before the first commit, so that no issue trigger is missed.
        self._load_rules({rule.name: rule for rule, _ in await self._store.alert_rules()})
        self.collector.on_issue(self._on_issue)
        self._task = asyncio.create_task(self._run(), name="eventcollector-alerts")

    async def stop(self) -> None:
        """Stop evaluating; give notices under way the notifier's timeout to finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for _, callback in self._subscribed.values():
            self.collector.unsubscribe(callback)
        self._subscribed.clear()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.notifier.settings.timeout)
            for task in late:
                task.cancel()
        await self.notifier.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("alert round failed")
            await asyncio.sleep(self.tick)

    # -- one round -----------------------------------------------------------

    async def round(self) -> None:
        """Reload the rules; if this instance holds the lease, evaluate what is due."""
        store = self._store
        assert store is not None
        self._load_rules({rule.name: rule for rule, _ in await store.alert_rules()})
        if not await store.alert_lease():
            self._leader = False
            self._matches.clear()
            return
        if not self._leader:  # just took over: continue from the stored states
            self._states = {(s.rule, s.group): s for s in await store.alert_states()}
            self._due.clear()
            self._leader = True
        now = datetime.now(UTC)
        self._silences = await store.alert_silences() if self._rules else []
        if any(r.trigger in _ISSUE_TRIGGERS.values() for r in self._rules.values()):
            for change in await store.take_alert_triggers():
                await self._guarded(self._issue_changed, change, now)
        monotonic = time.monotonic()
        for rule in list(self._rules.values()):
            if rule.trigger is None:
                if self._due.get(rule.name, 0.0) <= monotonic:
                    self._due[rule.name] = monotonic + rule.every
                    await self._guarded(self._evaluate, rule, now)
            else:
                await self._guarded(self._trigger_round, rule, now)

    async def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("alert %r: evaluation failed", getattr(args[0], "name", args[0]))

    def _load_rules(self, rules: dict[str, AlertRule]) -> None:
        for name in set(self._rules) - set(rules):
            self._due.pop(name, None)
            for key in [k for k in self._states if k[0] == name]:
                del self._states[key]
        for name in set(self._rules) & set(rules):
            if self._rules[name] != rules[name]:
                self._due.pop(name, None)  # changed: evaluate it now
        self._rules = rules
        for name, (rule, callback) in list(self._subscribed.items()):
            if rules.get(name) != rule:
                self.collector.unsubscribe(callback)
                del self._subscribed[name]
        for name, rule in rules.items():
            if rule.trigger == "match" and name not in self._subscribed:
                callback = self._matcher(rule)
                self.collector.subscribe(callback, Query(where=rule.where()))
                self._subscribed[name] = (rule, callback)

    async def _evaluate(self, rule: AlertRule, now: datetime) -> None:
        known = {g for (name, g) in self._states if name == rule.name}
        measured = await evaluate.measure(self.collector, rule, now, known)
        steps = [
            (condition_step(rule, self._previous(rule, m.group, now), m.group, m.value, now), m.key)
            for m in measured
        ]
        await self._commit(rule, steps, now)

    def _previous(self, rule: AlertRule, group: str, now: datetime) -> AlertState | None:
        """The group's state; one whose notice a silence held back counts as never
        notified once the silence has ended (so it notifies now if still FIRING)."""
        state = self._states.get((rule.name, group))
        held = (rule.name, group) in self._held
        if state is not None and held and self._silence(rule.name, group, now) is None:
            self._held.discard((rule.name, group))
            return replace(state, notified=None)
        return state

    def _silence(self, rule: str, group: str, now: datetime) -> AlertSilence | None:
        return next((s for s in self._silences if s.covers(rule, group, now)), None)

    async def _trigger_round(self, rule: AlertRule, now: datetime) -> None:
        steps: list[tuple[Step, Key]] = []
        samples: dict[str, list[Event]] = {}
        for (name, group), seen in list(self._matches.items()):
            if name != rule.name or not seen.count:
                continue
            step = trigger_step(rule, self._states.get((name, group)), group, seen.count, now)
            if step.notice is not None:
                steps.append((step, seen.key))
                samples[group] = seen.samples
                del self._matches[(name, group)]
        for (name, group), state in list(self._states.items()):
            if name == rule.name and (name, group) not in self._matches:
                quiet = quiet_step(rule, state, now)
                if quiet is not None:
                    steps.append((quiet, None))
        if steps:
            await self._commit(rule, steps, now, samples=samples)

    async def _issue_changed(self, change: IssueChange, now: datetime) -> None:
        rules = [r for r in self._rules.values() if r.trigger == _ISSUE_TRIGGERS[change.kind]]
        if not rules:
            return
        issue = await self.collector.get_issue(change.issue_id)
        if issue is None:
            return
        event = await self.collector.get_event(issue.last_event_id)
        for rule in rules:
            where = rule.where(now)
            if where is not None and (event is None or not matches(where, event)):
                continue
            step = trigger_step(rule, self._states.get((rule.name, "")), "", 1.0, now)
            found = {"": [event] if event is not None else []}
            await self._commit(rule, [(step, None)], now, samples=found, issue=issue.to_dict())

    # -- recording and notifying -----------------------------------------------

    async def _commit(
        self,
        rule: AlertRule,
        steps: list[tuple[Step, Key]],
        now: datetime,
        *,
        samples: dict[str, list[Event]] | None = None,
        issue: dict[str, Any] | None = None,
    ) -> None:
        """Store the new states and transitions at once, then send the notices."""
        assert self._store is not None
        records: list[AlertRecord] = []
        notices: list[Notice] = []
        for step, key in steps:
            state = step.state
            found = (samples or {}).get(state.group)
            wants = step.notice is not None or (
                step.transition is not None and state.state in ("pending", "firing")
            )
            if found is None and wants and state.state != "resolved":
                found = await evaluate.samples(self.collector, rule, key, now)
            events = tuple(found or ())
            if step.transition is not None:
                ids = tuple(e.id for e in events)
                records.append(replace(step.transition, sample_ids=ids))
            if step.notice is not None and rule.notify:
                silence = self._silence(rule.name, state.group, now)
                if silence is None:
                    link = evaluate.link(self.notifier.settings.base_url, rule, key, now)
                    notices.append(Notice(rule, state, step.notice, now, events, link, issue))
                else:
                    records.append(_silenced(state, now, silence, events))
                    if state.state == "firing" and rule.condition is not None:
                        self._held.add((state.rule, state.group))  # see _previous
            if state.state != "firing":
                self._held.discard((state.rule, state.group))
            self._states[(state.rule, state.group)] = state
        await self._store.save_alert([s.state for s, _ in steps], records)
        for notice in notices:
            task = asyncio.create_task(self._deliver(notice))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, notice: Notice) -> None:
        assert self._store is not None
        try:
            records = await self.notifier.deliver(notice)
            await self._store.save_alert([], records)
        except Exception:
            log.exception("alert %r: recording a notification failed", notice.rule.name)

    # -- hooks on ingest (on the loop, after commit: only counting here) --------

    def _on_issue(self, changes: list[IssueChange]) -> None:
        if self._store is None or not any(
            r.trigger in _ISSUE_TRIGGERS.values() for r in self._rules.values()
        ):
            return
        task = asyncio.create_task(self._store.push_alert_triggers(changes))
        self._tasks.add(task)
        task.add_done_callback(self._pushed)

    def _pushed(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("queueing issue triggers failed: %s", task.exception())

    def _matcher(self, rule: AlertRule) -> Any:
        def matched(event: Event) -> None:
            if not self._leader:
                return
            key = None if rule.group_by is None else key_value(event, rule.group_by)
            group = "" if rule.group_by is None else evaluate.group_text(key)
            seen = self._matches.setdefault((rule.name, group), _Matches(key))
            seen.count += 1
            if len(seen.samples) < evaluate.SAMPLES:
                seen.samples.append(event)

        return matched


def _silenced(
    state: AlertState, now: datetime, silence: AlertSilence, events: Sequence[Event]
) -> AlertRecord:
    """The history's record of a notice a silence held back (``target``: the silence)."""
    ids = tuple(e.id for e in events)
    target = f"silence {silence.id}"
    return AlertRecord(
        state.rule, state.group, now, "silenced", state.state, state.value, target, sample_ids=ids
    )
