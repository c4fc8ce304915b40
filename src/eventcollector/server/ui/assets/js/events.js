// The event table shared by Explore and Live: a row per event that expands to the
// whole event (fields, data and metadata as a JSON tree), where clicking a value adds
// field:value to the filter. Text only: see dom.js.

import {fmtDuration, fmtTime, h, replace, severityBadge} from "./dom.js";
import {pathText, term} from "./filter.js";

export function eventTable(extraClass = "") {
  const tbody = h("tbody");
  const table = h("table", {class: `grid events ${extraClass}`},
    h("colgroup", {},
      h("col", {class: "col-ts"}), h("col", {class: "col-sev"}), h("col", {class: "col-sys"}),
      h("col", {class: "col-type"}), h("col"), h("col", {class: "col-dur"})),
    h("thead", {}, h("tr", {},
      h("th", {}, "Time"), h("th", {}, "Severity"), h("th", {}, "System"), h("th", {}, "Type"),
      h("th", {}, "Title"), h("th", {class: "num"}, "Duration"))),
    tbody);
  return {table, tbody};
}

// options.detail(ev) builds the expanded content; rows toggle on click, Enter or Space.
export function eventRow(ev, options) {
  const row = h("tr", {
    class: "event-row", tabindex: "0", "aria-expanded": "false",
    dataset: {id: ev.id, ts: ev.timestamp},
  },
  h("td", {class: "ts", title: ev.timestamp}, fmtTime(ev.timestamp)),
  h("td", {}, severityBadge(ev.severity)),
  h("td", {class: "sys", title: ev.system}, ev.system),
  h("td", {title: ev.event_type}, ev.event_type),
  h("td", {class: "title-cell", title: ev.title},
    h("span", {class: "title"}, ev.title), " ",
    ev.tags.map((t) => h("span", {class: "tag"}, t))),
  h("td", {class: "num"}, fmtDuration(ev.duration_ms)));
  const toggle = () => toggleRow(row, ev, options);
  row.addEventListener("click", (e) => {
    if (e.target.closest("a, button")) return;
    toggle();
  });
  row.addEventListener("keydown", (e) => {
    if (e.target !== row) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    if (e.key === "Escape") collapse(row);
  });
  return row;
}

export function collapse(row) {
  if (row.getAttribute("aria-expanded") !== "true") return;
  row.setAttribute("aria-expanded", "false");
  const next = row.nextElementSibling;
  if (next && next.classList.contains("detail-row")) next.remove();
}

function toggleRow(row, ev, options) {
  if (row.getAttribute("aria-expanded") === "true") {
    collapse(row);
    return;
  }
  row.setAttribute("aria-expanded", "true");
  const cell = h("td", {colspan: "6"}, options.detail(ev));
  row.after(h("tr", {class: "detail-row"}, cell));
}

// Removes an event row together with its expanded detail.
export function removeRow(row) {
  collapse(row);
  row.remove();
}

// -- the expanded event ------------------------------------------------------------

function clickable(text, field, value, onFilter, cls = "") {
  return h("span", {
    class: `value ${cls}`, tabindex: "0", role: "button",
    title: `Filter ${term(field, value)} (Alt: exclude)`,
    onclick: (e) => onFilter(term(field, value), e.altKey),
    onkeydown: (e) => {
      if (e.key === "Enter") { e.preventDefault(); onFilter(term(field, value), e.altKey); }
    },
  }, text);
}

export function jsonTree(value, root, keys, onFilter) {
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    if (!entries.length) return h("span", {class: "null"}, isArray ? "[]" : "{}");
    const list = h("ul", {}, entries.map(([k, v]) => h("li", {},
      h("span", {class: "key"}, isArray ? `${k}` : JSON.stringify(k)), ": ",
      // Arrays are not searched by the filter language: their items are not clickable.
      isArray ? plain(v) : jsonTree(v, root, [...keys, k], onFilter))));
    const label = isArray ? `[${entries.length}]` : `{${entries.length}}`;
    return h("details", {class: "json-node", open: keys.length < 3},
      h("summary", {class: "muted"}, label), list);
  }
  const cls = value === null ? "null" : typeof value === "string" ? "str" : typeof value === "number"
    ? "num" : "bool";
  const shown = typeof value === "string" ? JSON.stringify(value) : String(value);
  if (!keys.length) return h("span", {class: cls}, shown);
  return clickable(shown, pathText(root, keys), value, onFilter, cls);
}

function plain(value) {
  if (value !== null && typeof value === "object") {
    return h("span", {class: "str"}, JSON.stringify(value));
  }
  return h("span", {class: typeof value === "string" ? "str" : "num"}, JSON.stringify(value));
}

// {onFilter(term, exclude), onContext(ev, by, element)} and ctx for links.
export function eventDetail(ev, {onFilter, onContext}) {
  const fields = h("dl", {class: "fields"});
  const row = (name, content) => fields.append(h("dt", {}, name), h("dd", {}, content));
  const field = (name, filterName = name) => {
    if (ev[name] === null || ev[name] === undefined || ev[name] === "") return;
    row(name, clickable(String(ev[name]), filterName, ev[name], onFilter));
  };
  field("id");
  row("timestamp", h("span", {title: fmtTime(ev.timestamp)}, ev.timestamp));
  ["system", "event_type", "severity", "source_component"].forEach((n) => field(n));
  if (ev.correlation_id) {
    row("correlation_id", [
      clickable(ev.correlation_id, "correlation_id", ev.correlation_id, onFilter), " ",
      h("a", {href: `/trace/${encodeURIComponent(ev.correlation_id)}`, class: "trace-link"},
        "Trace →")]);
  }
  if (ev.duration_ms !== null) row("duration_ms", h("span", {}, fmtDuration(ev.duration_ms)));
  if (ev.tags.length) {
    row("tags", ev.tags.map((t) => [clickable(t, "tag", t, onFilter, "tag"), " "]));
  }
  const contextBox = h("div", {class: "context-box"});
  const json = JSON.stringify(ev, null, 2);
  const copy = h("button", {type: "button", class: "small copy-json", onclick: async () => {
    try {
      await navigator.clipboard.writeText(json);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Copy failed";
    }
  }}, "Copy JSON");
  const actions = h("div", {class: "row-actions"},
    copy,
    h("a", {href: `/?event=${encodeURIComponent(ev.id)}`, class: "button small permalink"},
      "Permalink"),
    h("button", {type: "button", class: "small context-system",
      onclick: () => onContext(ev, "system", contextBox)}, "Context: same system"),
    ev.correlation_id ? h("button", {type: "button", class: "small context-correlation",
      onclick: () => onContext(ev, "correlation_id", contextBox)}, "Context: same correlation")
      : null,
    ev.correlation_id ? h("a", {href: `/trace/${encodeURIComponent(ev.correlation_id)}`,
      class: "button small"}, "Open trace") : null);
  return h("div", {class: "detail"},
    h("div", {class: "detail-title"}, ev.title),
    ev.description ? h("div", {class: "detail-desc"}, ev.description) : null,
    actions,
    contextBox,
    fields,
    Object.keys(ev.data).length ? [h("h3", {}, "data"),
      h("div", {class: "json data-tree"}, jsonTree(ev.data, "data", [], onFilter))] : null,
    Object.keys(ev.metadata).length ? [h("h3", {}, "metadata"),
      h("div", {class: "json metadata-tree"}, jsonTree(ev.metadata, "metadata", [], onFilter))]
      : null);
}

// Context: the events just before and after ev with the same system or correlation id.
export async function loadContext(api, ev, by, box, signal, size = 5) {
  replace(box, h("div", {class: "muted"}, "Loading context…"));
  const q = term(by, ev[by]);
  const [before, after] = await Promise.all([
    api.get("/v1/events", {q, until: ev.timestamp, limit: size}, {signal}),
    api.get("/v1/events", {q, since: ev.timestamp, ascending: "true", limit: size + 1},
      {signal}),
  ]);
  const later = after.events.filter((e) => e.id !== ev.id).slice(0, size).reverse();
  const rows = [...later, ev, ...before.events];
  const {table, tbody} = eventTable("context-table");
  for (const e of rows) {
    const r = h("tr", {class: e.id === ev.id ? "here" : ""},
      h("td", {class: "ts"}, fmtTime(e.timestamp)), h("td", {}, severityBadge(e.severity)),
      h("td", {class: "sys"}, e.system), h("td", {}, e.event_type), h("td", {}, e.title),
      h("td", {class: "num"}, fmtDuration(e.duration_ms)));
    tbody.append(r);
  }
  replace(box, h("div", {class: "context"},
    h("h3", {}, `Context: ${q}`), table));
}
