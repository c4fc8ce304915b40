// Errors (/errors): the stored error issues (docs/issues.md) with their counts, first
// and last seen, systems, status and a sparkline of their events over the time range
// (/v1/issue-activity), filtered by status, system and range, sorted by last seen,
// first seen or count. A row opens the issue: its fields, its latest events and, for
// a key with the triage scope, resolve / ignore / reopen. The URL holds status,
// system, since, until, order_by, offset and issue. docs/ui.md.

import {eventDetail, eventRow, eventTable, loadContext} from "../events.js";
import {term} from "../filter.js";
import {sparkline} from "../sparkline.js";
import {rangePicker, resolve} from "../timerange.js";
import {showFailure, startLoad} from "../viewstate.js";

const PAGE = 50;
const DEFAULT_SINCE = "-7d";
const STATUSES = [["", "All"], ["unresolved", "Unresolved"], ["resolved", "Resolved"],
  ["ignored", "Ignored"], ["muted", "Muted"]];
const DEFAULT_STATUS = "unresolved";
const ORDERS = [["last_seen", "Last seen"], ["first_seen", "First seen"], ["count", "Events"]];
const HOUR = 3600e3;
const MAX_HOURLY = 1000; // /v1/issue-activity answers at most 1,000 buckets

function ago(iso, now = Date.now()) {
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export async function mount(root, ctx) {
  const {h, replace, notice, fmtTime, fmtCount} = ctx.dom;
  const p = ctx.params;
  const state = {
    status: p.has("status") ? p.get("status") : DEFAULT_STATUS,
    system: p.get("system") || "",
    since: p.get("since") || DEFAULT_SINCE,
    until: p.get("until") || undefined,
    order_by: p.get("order_by") || "last_seen",
    offset: Math.max(0, Number.parseInt(p.get("offset") || "0", 10) || 0),
    issue: p.get("issue") || "",
  };
  const view = h("div", {class: "view-root errors-view", dataset: {state: "loading"}});
  const toolbar = h("div", {class: "toolbar errors-toolbar"});
  const body = h("div", {class: "errors-body"});
  const detail = h("div", {class: "panel issue-detail hidden", "aria-live": "polite"});
  view.append(h("div", {class: "view-title"}, h("h2", {}, "Errors")), toolbar, body, detail);
  root.append(view);
  let generation = 0;

  function urlParams() {
    const out = {};
    if (state.status !== DEFAULT_STATUS) out.status = state.status;
    if (state.system) out.system = state.system;
    if (state.since !== DEFAULT_SINCE || state.until) out.since = state.since;
    if (state.until) out.until = state.until;
    if (state.order_by !== "last_seen") out.order_by = state.order_by;
    if (state.offset) out.offset = String(state.offset);
    if (state.issue) out.issue = state.issue;
    return out;
  }

  function change(updates) {
    Object.assign(state, updates);
    ctx.setParams(urlParams(), {push: true});
    drawToolbar();
    load();
  }

  const systemSelect = h("select", {class: "system-filter", "aria-label": "System",
    onchange: () => change({system: systemSelect.value, offset: 0})},
    h("option", {value: ""}, "All systems"));
  if (state.system) systemSelect.append(h("option", {value: state.system}, state.system));
  systemSelect.value = state.system;

  function drawToolbar() {
    replace(toolbar,
      h("div", {class: "segmented status-filter", role: "group", "aria-label": "Status"},
        STATUSES.map(([value, label]) => h("button", {
          type: "button", dataset: {status: value}, "aria-pressed": String(state.status === value),
          onclick: () => change({status: value, offset: 0}),
        }, label))),
      systemSelect,
      h("span", {class: "spacer"}),
      rangePicker(state.since, state.until, ({since, until}) =>
        change({since, until, offset: 0})));
  }

  // The systems that had errors, for the select (cheap: the rollups answer it).
  ctx.api.get("/v1/facets", {field: "system", top: 200, q: "severity:>=error"},
    {signal: ctx.signal}).then((found) => {
    for (const {value} of found.facets[0].values) {
      if (value !== null && value !== state.system) {
        systemSelect.append(h("option", {value}, value));
      }
    }
  }).catch(() => {});

  function sortHeader(order, label) {
    const active = state.order_by === order;
    return h("th", {class: order === "count" ? "num" : "", "aria-sort": active ? "descending" : "none"},
      h("button", {type: "button", class: `link sort${active ? " sort-active" : ""}`,
        dataset: {order}, title: `Sort by ${label.toLowerCase()}, newest or largest first`,
        onclick: () => change({order_by: order, offset: 0})}, label, active ? " ▾" : ""));
  }

  function statusBadge(issue) {
    return h("span", {class: `status status-${issue.status}`,
      title: issue.muted_until ? `muted until ${fmtTime(issue.muted_until)}` : issue.status},
    issue.status);
  }

  // A system's errors over the view's range, in Explore.
  function systemLinks(systems, range) {
    return systems.map((s) => {
      const params = new URLSearchParams({q: `${term("system", s)} severity:>=error`,
        since: range.since});
      if (range.until) params.set("until", range.until);
      return h("a", {class: "chip", href: `/?${params}`, title: `Errors of ${s} in Explore`}, s);
    });
  }

  async function load() {
    const run = ++generation;
    const range = startLoad(view, body, state);
    if (!range) return;
    const hourly = (range.toMs - range.fromMs) / HOUR <= MAX_HOURLY - 1;
    let page;
    let activity = null;
    try {
      page = await ctx.api.get("/v1/issues", {
        status: state.status, system: state.system, seen_since: range.since,
        order_by: state.order_by, limit: PAGE, offset: state.offset,
      }, {signal: ctx.signal});
      if (run !== generation) return;
      if (page.issues.length) {
        activity = await ctx.api.get("/v1/issue-activity", {
          id: page.issues.map((i) => i.id).join(","), since: range.since, until: range.until,
          interval: hourly ? "1h" : "1d",
        }, {signal: ctx.signal});
      }
    } catch (err) {
      if (err.name !== "AbortError" && run === generation) showFailure(view, body, err);
      return;
    }
    if (run !== generation) return;
    body.classList.remove("loading");
    if (!page.issues.length) {
      replace(body, h("div", {class: "panel empty"}, state.offset
        ? "No more issues." : "No error issues match: no error or critical event in this range."));
      view.dataset.state = "empty";
      return;
    }
    const tbody = h("tbody");
    for (const issue of page.issues) {
      const series = activity.issues[String(issue.id)] || [];
      const inRange = series.reduce((a, b) => a + b, 0);
      const row = h("tr", {class: "issue-row", tabindex: "0", dataset: {id: String(issue.id)},
        "aria-selected": String(state.issue === String(issue.id))},
      h("td", {class: "issue-cell"},
        h("div", {class: "issue-title", title: issue.title}, issue.title),
        h("div", {class: "issue-sub muted"},
          h("span", {class: "mono"}, issue.error_type),
          issue.error_type !== issue.event_type ? ` · ${issue.event_type}` : "",
          issue.regressed ? h("span", {class: "regressed", title: "seen again after it was resolved"},
            "regressed") : null)),
      h("td", {class: "spark-cell"}, sparkline(series,
        `${fmtCount(inRange)} events in the range, per ${hourly ? "hour" : "day"}`)),
      h("td", {class: "num in-range", title: "events in the time range"}, fmtCount(inRange)),
      h("td", {class: "num count", title: "times seen, all time"}, fmtCount(issue.count)),
      h("td", {class: "systems-cell"}, systemLinks(issue.systems, range)),
      h("td", {class: "ts", title: fmtTime(issue.first_seen)}, ago(issue.first_seen)),
      h("td", {class: "ts last-seen", title: fmtTime(issue.last_seen)}, ago(issue.last_seen)),
      h("td", {}, statusBadge(issue)));
      row.addEventListener("click", (e) => { if (!e.target.closest("a, button")) open(issue); });
      row.addEventListener("keydown", (e) => {
        if (e.target !== row) return;
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(issue); }
        if (e.key === "ArrowDown" && row.nextElementSibling) row.nextElementSibling.focus();
        if (e.key === "ArrowUp" && row.previousElementSibling) row.previousElementSibling.focus();
        if (e.key === "Escape") close();
      });
      tbody.append(row);
    }
    const pager = h("div", {class: "row-actions pager"},
      h("span", {class: "muted"}, `Issues ${fmtCount(state.offset + 1)}–` +
        `${fmtCount(state.offset + page.issues.length)}`),
      h("button", {type: "button", class: "small prev", disabled: state.offset === 0,
        onclick: () => change({offset: Math.max(0, state.offset - PAGE)})}, "‹ Newer"),
      h("button", {type: "button", class: "small next", disabled: page.next_offset === null,
        onclick: () => change({offset: page.next_offset})}, "Older ›"));
    replace(body, h("div", {class: "panel"},
      h("table", {class: "grid issues"},
        h("colgroup", {}, h("col"), h("col", {class: "col-spark"}), h("col", {class: "col-n"}),
          h("col", {class: "col-n"}), h("col", {class: "col-systems"}), h("col", {class: "col-ago"}),
          h("col", {class: "col-ago"}), h("col", {class: "col-status"})),
        h("thead", {}, h("tr", {},
          h("th", {}, "Issue"), h("th", {}, hourly ? "Per hour" : "Per day"),
          h("th", {class: "num"}, "In range"), sortHeader("count", "Events"),
          h("th", {}, "Systems"), sortHeader("first_seen", "First seen"),
          sortHeader("last_seen", "Last seen"), h("th", {}, "Status"))),
        tbody)), pager);
    view.dataset.state = "ready";
    const wanted = page.issues.find((i) => String(i.id) === state.issue);
    if (wanted && detail.classList.contains("hidden")) open(wanted, {keepUrl: true});
  }

  function markSelected() {
    for (const r of body.querySelectorAll("tr.issue-row")) {
      r.setAttribute("aria-selected", String(r.dataset.id === state.issue));
    }
  }

  function close() {
    state.issue = "";
    detail.classList.add("hidden");
    markSelected();
    ctx.setParams(urlParams());
  }

  async function setStatus(issue, status, box) {
    try {
      const changed = await ctx.api.post(`/v1/issues/${issue.id}`, {status},
        {signal: ctx.signal, scope: "triage"});
      open(changed, {keepUrl: true});
      load();
    } catch (err) {
      if (err.name === "AbortError") return;
      replace(box, notice("error", err.status === 403
        ? `${err.message}. Changing a status needs a key with the triage scope.` : err.message));
    }
  }

  async function open(issue, {keepUrl = false} = {}) {
    state.issue = String(issue.id);
    if (!keepUrl) ctx.setParams(urlParams());
    markSelected();
    const message = h("div", {class: "triage-message"});
    const actions = [["resolved", "Resolve"], ["ignored", "Ignore"], ["unresolved", "Reopen"]]
      .filter(([status]) => status !== issue.status)
      .map(([status, label]) => h("button", {type: "button", class: `small triage-${status}`,
        onclick: () => setStatus(issue, status, message)}, label));
    const fields = h("dl", {class: "fields"});
    const row = (name, ...content) => fields.append(h("dt", {}, name), h("dd", {}, ...content));
    row("id", String(issue.id));
    row("fingerprint", h("span", {class: "mono"}, issue.fingerprint));
    row("error_type", issue.error_type);
    row("event_type", issue.event_type);
    row("systems", systemLinks(issue.systems, resolve(state.since, state.until)));
    row("count", fmtCount(issue.count));
    row("first_seen", fmtTime(issue.first_seen));
    row("last_seen", fmtTime(issue.last_seen));
    row("status", statusBadge(issue), issue.regressed ? " (regressed)" : "");
    if (issue.muted_until) row("muted_until", fmtTime(issue.muted_until));
    const events = h("div", {class: "issue-events"}, h("div", {class: "muted"}, "Loading events…"));
    replace(detail,
      h("div", {class: "panel-head"},
        h("h2", {class: "issue-detail-title"}, issue.title),
        h("span", {class: "spacer"}),
        h("a", {class: "button small latest-event", href: `/?event=${encodeURIComponent(issue.last_event_id)}`},
          "Latest event in Explore"),
        h("a", {class: "button small issue-in-explore", title: "Every event of this issue, filtered as you like",
          href: `/?${new URLSearchParams({q: term("fingerprint", issue.fingerprint), since: issue.first_seen})}`},
        "All its events"),
        ctx.api.post ? actions : null,
        h("button", {type: "button", class: "small close-detail", title: "Close (Escape)",
          onclick: close}, "Close")),
      h("div", {class: "panel-body"}, message, fields, h("h3", {}, "Latest events"), events));
    detail.classList.remove("hidden");
    try {
      const found = await ctx.api.get(`/v1/issues/${issue.id}/events`, {limit: 25},
        {signal: ctx.signal});
      if (state.issue !== String(issue.id)) return;
      if (!found.events.length) {
        replace(events, h("div", {class: "empty"}, "Retention has deleted this issue's events."));
        return;
      }
      const {table, tbody} = eventTable("issue-event-table");
      const onFilter = (text, exclude) => ctx.navigate("/", {q: exclude ? `-${text}` : text});
      const onContext = (ev, by, box) => {
        loadContext(ctx.api, ev, by, box, ctx.signal).catch((err) => {
          if (err.name !== "AbortError") replace(box, notice("error", err.message));
        });
      };
      // The API lists them as stored; newest first reads like Explore.
      const newest = [...found.events].sort((a, b) => b.timestamp.localeCompare(a.timestamp));
      for (const ev of newest) {
        tbody.append(eventRow(ev, {detail: (e) => eventDetail(e, {onFilter, onContext})}));
      }
      replace(events, table);
    } catch (err) {
      if (err.name !== "AbortError") replace(events, notice("error", err.message));
    }
  }

  drawToolbar();
  await load();
  return undefined;
}
