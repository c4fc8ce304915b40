// Live (/live): the events matching the filter as the server streams them
// (GET /v1/stream?q=..., Server-Sent Events), newest on top, at most MAX_ROWS rows.
// The stream has no resume position, so after a reconnect (a server restart, a network
// blip) the view asks /v1/events for everything since the newest event it has and
// merges it in by id: nothing committed while it was away is skipped.

import {eventDetail, eventRow, eventTable, loadContext, removeRow} from "../events.js";
import {addTerm} from "../filter.js";
import {filterBox} from "../filterbox.js";

const MAX_ROWS = 500;
const BACKFILL = 50;
const RETRY_MS = [250, 500, 1000, 2000, 5000];

export async function mount(root, ctx) {
  const {h, replace, notice, fmtCount} = ctx.dom;
  let q = ctx.params.get("q") || "";
  let controller = null;
  let paused = false;
  let buffer = [];
  let dropped = 0;
  let newest = null; // the timestamp of the newest event received
  const shown = new Map(); // id -> row
  let stopped = false;
  const valueCache = new Map(); // field -> its top values of the last day, for suggestions
  let session = 0; // each restart() starts a new connect loop; older ones end

  const filter = filterBox({
    value: q,
    onRun: (text) => { q = text.trim(); ctx.setParams(q ? {q} : {}, {push: true}); restart(); },
    paths: () => [],
    values: (field) => {
      if (!valueCache.has(field)) {
        const since = new Date(Date.now() - 86400000).toISOString();
        valueCache.set(field, ctx.api.get("/v1/facets", {field, top: 50, since},
          {signal: ctx.signal}).then((r) => r.facets[0].values));
      }
      return valueCache.get(field);
    },
  });
  const statusEl = h("span", {class: "live-status status-connecting", role: "status",
    "aria-live": "polite"});
  const countEl = h("span", {class: "summary live-count"});
  const pauseButton = h("button", {type: "button", class: "pause", "aria-pressed": "false",
    onclick: () => setPaused(!paused)}, "❚❚ Pause");
  const exploreLink = h("a", {class: "button", href: "/"}, "Explore");
  const messages = h("div", {class: "live-messages"});
  const {table, tbody} = eventTable("live-table");

  root.append(h("div", {class: "live"},
    h("div", {class: "filter-bar"}, filter.el, pauseButton,
      h("button", {type: "button", class: "clear", onclick: () => {
        for (const row of shown.values()) removeRow(row);
        shown.clear();
        updateCount();
      }}, "Clear"), exploreLink),
    h("div", {class: "toolbar"}, statusEl, h("span", {class: "spacer"}), countEl),
    messages,
    h("section", {class: "panel results"}, table)));

  function setStatus(kind, text) {
    statusEl.className = `live-status status-${kind}`;
    replace(statusEl, h("span", {class: "status-dot"}), text);
    root.dataset.status = kind;
  }

  function updateCount() {
    const extra = paused && buffer.length ? ` · ${fmtCount(buffer.length)} new while paused` : "";
    const lost = dropped ? ` · ${fmtCount(dropped)} not kept` : "";
    countEl.textContent = `${fmtCount(shown.size)} shown (newest ${MAX_ROWS} kept)${extra}${lost}`;
  }

  function setPaused(value) {
    paused = value;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "▶ Resume" : "❚❚ Pause";
    if (!paused) {
      const pending = buffer;
      buffer = [];
      for (const ev of pending) insert(ev, true);
    }
    setStatus(paused ? "paused" : root.dataset.connected === "true" ? "live" : "reconnecting",
      paused ? "Paused" : root.dataset.connected === "true" ? "Live" : "Reconnecting…");
    updateCount();
  }

  const detailOptions = {
    onFilter: (t, exclude) => {
      q = addTerm(filter.input.value, t, exclude);
      filter.input.value = q;
      ctx.setParams({q}, {push: true});
      restart();
    },
    onContext: (ev, by, box) => loadContext(ctx.api, ev, by, box, ctx.signal)
      .catch((err) => replace(box, notice("error", err.message))),
  };

  // Newest first by timestamp; a caught-up older event goes to its place.
  // fresh: a streamed event (highlighted for a moment), not one read to catch up.
  function insert(ev, fresh = false) {
    if (shown.has(ev.id)) return;
    if (paused) {
      if (!buffer.some((b) => b.id === ev.id)) buffer.push(ev);
      if (buffer.length > MAX_ROWS) { buffer.shift(); dropped++; }
      updateCount();
      return;
    }
    const row = eventRow(ev, {detail: (e) => eventDetail(e, detailOptions)});
    if (fresh) row.classList.add("fresh");
    let before = tbody.querySelector("tr.event-row");
    while (before && before.dataset.ts > ev.timestamp) {
      before = nextEventRow(before);
    }
    tbody.insertBefore(row, before);
    shown.set(ev.id, row);
    while (shown.size > MAX_ROWS) {
      const [oldestId, oldest] = lastRow();
      removeRow(oldest);
      shown.delete(oldestId);
    }
    updateCount();
  }

  function nextEventRow(row) {
    let next = row.nextElementSibling;
    while (next && !next.classList.contains("event-row")) next = next.nextElementSibling;
    return next;
  }

  function lastRow() {
    const rows = tbody.querySelectorAll("tr.event-row");
    const last = rows[rows.length - 1];
    return [last.dataset.id, last];
  }

  function received(ev, fresh = false) {
    if (!newest || ev.timestamp > newest) newest = ev.timestamp;
    insert(ev, fresh);
  }

  // Everything since the newest event held (or the last few, the first time).
  async function catchUp(signal) {
    const params = {q: q || undefined, limit: newest ? MAX_ROWS : BACKFILL};
    if (newest) params.since = newest;
    const page = await ctx.api.get("/v1/events", params, {signal});
    for (const ev of page.events.reverse()) received(ev);
  }

  async function connect(mine) {
    let attempt = 0;
    const current = () => !stopped && mine === session;
    while (current()) {
      const aborter = new AbortController();
      controller = aborter;
      const signal = aborter.signal;
      root.dataset.connected = "false";
      try {
        await ctx.api.stream("/v1/stream", q ? {q} : {}, (kind, data) => {
          if (kind === "event") received(data, true);
          else if (kind === "missed") {
            replace(messages, notice("info",
              `${fmtCount(data.count)} events were missed (the page fell behind the stream).`));
          }
        }, {
          signal,
          onOpen: () => {
            attempt = 0;
            root.dataset.connected = "true";
            filter.clearError();
            replace(messages);
            if (!paused) setStatus("live", "Live");
            // Subscribed first, then read what came before: nothing falls in between.
            catchUp(signal).catch((err) => {
              if (err.name !== "AbortError") replace(messages, notice("error", err.message));
            });
          },
        });
      } catch (err) {
        if (signal.aborted || !current()) return;
        if (err.status >= 400 && err.status < 500) {
          root.dataset.connected = "false";
          setStatus("failed", "Stopped");
          if (err.status === 400 && err.message.startsWith("q:")) filter.showError(err.message);
          else replace(messages, notice("error", err.message));
          return;
        }
      }
      if (signal.aborted || !current()) return;
      root.dataset.connected = "false";
      if (!paused) setStatus("reconnecting", "Reconnecting…");
      await new Promise((resolve) => {
        setTimeout(resolve, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
      });
      attempt++;
    }
  }

  function restart() {
    if (controller) controller.abort();
    for (const row of shown.values()) removeRow(row);
    shown.clear();
    buffer = [];
    newest = null;
    exploreLink.setAttribute("href", q ? `/?${new URLSearchParams({q})}` : "/");
    setStatus("connecting", "Connecting…");
    updateCount();
    connect(++session);
  }

  restart();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
