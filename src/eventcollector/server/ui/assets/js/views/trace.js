// Trace (/trace/{correlation_id}): every event of one correlation id as a waterfall on
// a time axis. A bar starts at the event's timestamp and is as long as its duration; an
// event without one is a marker. Bars are coloured per system, errors are marked, and
// events that carry span ids (data.span_id, data.parent_span_id: the OTLP mapping of
// docs/ingest.md) nest under their parent span. Clicking a row shows the whole event.
// The URL's ?event=<id> keeps the selection bookmarkable. docs/ui.md.

import {eventDetail, loadContext} from "../events.js";
import {term} from "../filter.js";
import {systemColours} from "../palette.js";

// The server returns at most this many events of one trace (analyzer._TRACE_LIMIT).
const TRACE_LIMIT = 10000;
const ERRORS = new Set(["error", "critical"]);
const TICKS = 6;

function spanId(ev) {
  const id = ev.data && ev.data.span_id;
  return typeof id === "string" && id ? id : null;
}

function parentId(ev) {
  const id = ev.data && ev.data.parent_span_id;
  return typeof id === "string" && id ? id : null;
}

// The events as a forest: a span owns its span id (the first event of type "span", else
// the first event with that id); other events with the same span id (exceptions, logs)
// and spans naming it as their parent are its children. Roots and siblings keep the
// server's order (timestamp, then insertion). Returns rows {ev, depth, children}.
export function buildTree(events) {
  const nodes = events.map((ev, index) => ({ev, index, children: [], depth: 0, parent: null}));
  const owner = new Map();
  for (const node of nodes) {
    const id = spanId(node.ev);
    if (id === null) continue;
    const held = owner.get(id);
    if (!held || (held.ev.event_type !== "span" && node.ev.event_type === "span")) {
      owner.set(id, node);
    }
  }
  const roots = [];
  for (const node of nodes) {
    const id = spanId(node.ev);
    let parent = null;
    if (id !== null && owner.get(id) !== node) parent = owner.get(id);
    else if (parentId(node.ev) !== null) parent = owner.get(parentId(node.ev)) || null;
    // A cycle (a span its own ancestor) would hide events: such a node stays a root.
    for (let up = parent; up; up = up.parent) {
      if (up === node) { parent = null; break; }
    }
    node.parent = parent;
  }
  for (const node of nodes) (node.parent ? node.parent.children : roots).push(node);
  const rows = [];
  const walk = (node, depth) => {
    node.depth = depth;
    rows.push(node);
    node.children.sort((a, b) => a.index - b.index);
    for (const child of node.children) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  return rows;
}

function timing(events) {
  let start = Infinity;
  let end = -Infinity;
  for (const ev of events) {
    const t = Date.parse(ev.timestamp);
    start = Math.min(start, t);
    end = Math.max(end, t + (ev.duration_ms || 0));
  }
  return {start, end, total: Math.max(end - start, 0)};
}

function offsetLabel(ms, fmtDuration) {
  return ms === 0 ? "0" : `+${fmtDuration(ms)}`;
}

export async function mount(root, ctx) {
  const {h, replace, notice, fmtTime, fmtDuration, fmtCount, severityBadge} = ctx.dom;
  const correlationId = ctx.route.correlation_id;
  const view = h("div", {class: "view-root trace-view", dataset: {state: "loading"}});
  root.append(view);
  view.append(h("div", {class: "panel panel-body muted"}, "Loading the trace…"));

  let found;
  try {
    found = await ctx.api.get(`/v1/traces/${encodeURIComponent(correlationId)}`, null,
      {signal: ctx.signal});
  } catch (err) {
    if (err.name === "AbortError") return undefined;
    replace(view, notice("error", err.message));
    view.dataset.state = "error";
    return undefined;
  }
  const events = found.events;
  const head = h("div", {class: "trace-head"},
    h("h2", {}, "Trace ", h("code", {class: "trace-id"}, correlationId)));
  if (!events.length) {
    replace(view, head, h("div", {class: "panel empty"},
      "No events carry this correlation id. ", h("a", {href: "/"}, "Explore")));
    view.dataset.state = "empty";
    return undefined;
  }

  const {start, end, total} = timing(events);
  const scale = total || 1;
  const rows = buildTree(events);
  const colour = systemColours(events.map((e) => e.system));
  const systems = [...new Set(events.map((e) => e.system))];
  const errors = events.filter((e) => ERRORS.has(e.severity)).length;
  const margin = 1000;
  const exploreParams = {
    q: term("correlation_id", correlationId),
    since: new Date(start - margin).toISOString(),
    until: new Date(end + margin).toISOString(),
  };
  const exploreHref = `/?${new URLSearchParams(exploreParams)}`;

  head.append(h("div", {class: "trace-summary row-actions"},
    h("span", {class: "stat"}, h("b", {class: "trace-total"}, fmtDuration(total)), " total span"),
    h("span", {class: "stat"}, h("b", {}, fmtCount(events.length)), " events"),
    h("span", {class: "stat"}, h("b", {}, fmtCount(systems.length)),
      systems.length === 1 ? " system" : " systems"),
    h("span", {class: `stat${errors ? " stat-error" : ""}`}, h("b", {class: "trace-errors"},
      fmtCount(errors)), errors === 1 ? " error" : " errors"),
    h("span", {class: "muted"}, "started ", fmtTime(new Date(start).toISOString())),
    h("span", {class: "spacer"}),
    h("a", {href: exploreHref, class: "button small explore-link"}, "Explore these events")));
  if (events.length >= TRACE_LIMIT) {
    head.append(notice("info", `Showing the first ${fmtCount(TRACE_LIMIT)} events of this trace.`));
  }
  const legend = h("div", {class: "trace-legend"}, systems.map((s) =>
    h("span", {class: "legend-item"}, h("span", {class: `swatch ${colour(s)}`}), s)));

  // The axis: TICKS labels from the start to the end of the whole trace.
  const axis = h("div", {class: "wf-axis", "aria-hidden": "true"});
  for (let i = 0; i < TICKS; i++) {
    const at = (i / (TICKS - 1)) * total;
    const tick = h("span", {class: "wf-tick"}, offsetLabel(at, fmtDuration));
    tick.style.left = `${(i / (TICKS - 1)) * 100}%`;
    axis.append(tick);
  }

  const list = h("div", {class: "wf-rows", role: "tree", "aria-label": "Trace events"});
  const detail = h("div", {class: "panel trace-detail hidden", "aria-live": "polite"});
  const byId = new Map();
  let selected = null;

  const onFilter = (text, exclude) => {
    const q = `${exploreParams.q} ${exclude ? "-" : ""}${text}`;
    ctx.navigate("/", {...exploreParams, q});
  };
  const onContext = (ev, by, box) => {
    loadContext(ctx.api, ev, by, box, ctx.signal).catch((err) => {
      if (err.name !== "AbortError") replace(box, notice("error", err.message));
    });
  };

  function select(node, {focus = false} = {}) {
    if (selected) selected.row.setAttribute("aria-selected", "false");
    selected = node;
    node.row.setAttribute("aria-selected", "true");
    if (focus) node.row.focus();
    replace(detail,
      h("div", {class: "panel-head"}, severityBadge(node.ev.severity),
        h("span", {class: "sys"}, node.ev.system),
        h("span", {class: "muted"}, `+${fmtDuration(Date.parse(node.ev.timestamp) - start)}`),
        h("span", {class: "spacer"}),
        h("button", {type: "button", class: "small close-detail", title: "Close (Escape)",
          onclick: () => unselect()}, "Close")),
      h("div", {class: "panel-body"}, eventDetail(node.ev, {onFilter, onContext})));
    detail.classList.remove("hidden");
    const params = new URLSearchParams(location.search);
    params.set("event", node.ev.id);
    ctx.setParams(params);
  }

  function unselect() {
    if (selected) selected.row.setAttribute("aria-selected", "false");
    selected = null;
    detail.classList.add("hidden");
    const params = new URLSearchParams(location.search);
    params.delete("event");
    ctx.setParams(params);
  }

  // Collapsing a span hides its descendants (their rows follow it in the list).
  function setExpanded(node, open) {
    if (!node.children.length) return;
    node.row.setAttribute("aria-expanded", String(open));
    const hide = (n, hidden) => {
      for (const child of n.children) {
        child.row.classList.toggle("hidden", hidden);
        const childOpen = child.row.getAttribute("aria-expanded") !== "false";
        hide(child, hidden || !childOpen);
      }
    };
    hide(node, !open);
  }

  const visible = () => rows.filter((n) => !n.row.classList.contains("hidden"));
  function onKey(node, e) {
    const shown = visible();
    const i = shown.indexOf(node);
    const moves = {ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: shown.length - 1};
    if (e.key in moves) {
      e.preventDefault();
      const next = shown[Math.max(0, Math.min(shown.length - 1, moves[e.key]))];
      if (next) next.row.focus();
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      select(node);
    } else if (e.key === "ArrowLeft") {
      if (node.children.length && node.row.getAttribute("aria-expanded") !== "false") {
        setExpanded(node, false);
      } else if (node.parent) node.parent.row.focus();
    } else if (e.key === "ArrowRight") {
      setExpanded(node, true);
    }
  }
  // Escape closes the detail from anywhere but a field or the key dialog.
  const onEscape = (e) => {
    if (e.key !== "Escape" || !selected || e.target.closest("input, select, dialog")) return;
    const row = selected.row;
    unselect();
    row.focus();
  };
  document.addEventListener("keydown", onEscape);

  for (const node of rows) {
    const ev = node.ev;
    const offset = Date.parse(ev.timestamp) - start;
    const isError = ERRORS.has(ev.severity);
    const timed = typeof ev.duration_ms === "number";
    const toggle = node.children.length
      ? h("button", {type: "button", class: "wf-toggle", tabindex: "-1",
        "aria-label": "Collapse or expand", onclick: (e) => {
          e.stopPropagation();
          setExpanded(node, node.row.getAttribute("aria-expanded") === "false");
        }})
      : h("span", {class: "wf-toggle-space"});
    const label = h("div", {class: "wf-label", title: ev.title},
      toggle,
      h("span", {class: `swatch ${colour(ev.system)}`, title: ev.system}),
      isError ? h("span", {class: "wf-error-mark", title: ev.severity}, "!") : null,
      h("span", {class: "wf-system"}, ev.system),
      h("span", {class: "wf-title"}, ev.title));
    label.style.paddingLeft = `${6 + node.depth * 14}px`;
    const bar = h("div", {
      class: `wf-bar ${colour(ev.system)}${timed ? "" : " wf-marker"}${isError ? " wf-err" : ""}`,
      title: `${ev.title} — ${timed ? fmtDuration(ev.duration_ms) : "no duration"}`,
    });
    bar.style.left = `${(offset / scale) * 100}%`;
    if (timed) bar.style.width = `${(ev.duration_ms / scale) * 100}%`;
    const text = h("span", {class: "wf-bar-label"}, timed ? fmtDuration(ev.duration_ms) : "");
    // The duration reads beside the bar: right of it; left of it, or inside when the
    // bar is long, when it ends late.
    const endsAt = (offset + (timed ? ev.duration_ms : 0)) / scale;
    if (endsAt > 0.85 && offset / scale < 0.15) {
      text.classList.add("wf-bar-label-inside");
      text.style.right = `${(1 - endsAt) * 100}%`;
    } else if (endsAt > 0.85) {
      text.style.right = `${(1 - offset / scale) * 100}%`;
    } else {
      text.style.left = `${endsAt * 100}%`;
    }
    const lane = h("div", {class: "wf-lane"}, bar, text);
    const row = h("div", {
      class: `wf-row${isError ? " wf-row-error" : ""}`, role: "treeitem", tabindex: "0",
      "aria-level": String(node.depth + 1), "aria-selected": "false",
      "aria-expanded": node.children.length ? "true" : null,
      dataset: {id: ev.id, ts: ev.timestamp, depth: String(node.depth),
        span: spanId(ev) || "", parent: node.parent ? node.parent.ev.id : ""},
    }, label, lane);
    row.addEventListener("click", (e) => { if (!e.target.closest("a, button")) select(node); });
    row.addEventListener("keydown", (e) => { if (e.target === row) onKey(node, e); });
    node.row = row;
    byId.set(ev.id, node);
    list.append(row);
  }

  replace(view, head, legend,
    h("div", {class: "panel waterfall"},
      h("div", {class: "wf-header"},
        h("div", {class: "wf-label muted"}, "Event"),
        h("div", {class: "wf-lane"}, axis)),
      list),
    detail);
  view.dataset.state = "ready";
  const wanted = byId.get(ctx.params.get("event") || "");
  if (wanted) select(wanted);
  return () => document.removeEventListener("keydown", onEscape);
}
