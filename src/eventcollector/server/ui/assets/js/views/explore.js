// Explore (/): the filter, a time range, the volume histogram, facets and the events,
// newest first, paged with the server's cursor. The URL holds q, since, until, facets
// (added data paths) and event (a permalink). docs/ui.md.

import {collapse, eventDetail, eventRow, eventTable, loadContext} from "../events.js";
import {facetSidebar, FIXED_FACETS} from "../facets.js";
import {addTerm} from "../filter.js";
import {filterBox} from "../filterbox.js";
import {histogram, histogramBox} from "../histogram.js";
import {DEFAULT_SINCE, interval, rangePicker, resolve} from "../timerange.js";

const PAGE = 100;

export async function mount(root, ctx) {
  const {h, replace, notice, fmtCount} = ctx.dom;
  const state = {
    q: ctx.params.get("q") || "",
    since: ctx.params.get("since") || DEFAULT_SINCE,
    until: ctx.params.get("until") || undefined,
    paths: new Set((ctx.params.get("facets") || "").split(",").filter(Boolean)),
  };
  let pinnedId = ctx.params.get("event"); // a permalink; dropped by the next search
  let generation = 0;
  let controller = null;
  let cursor = null;
  let loaded = [];
  const valueCache = new Map();

  const seenPaths = () => {
    const out = new Set();
    for (const ev of loaded.slice(0, 50)) {
      for (const k of Object.keys(ev.data)) out.add(`data.${k}`);
      for (const k of Object.keys(ev.metadata)) out.add(`metadata.${k}`);
    }
    return [...out].sort();
  };
  const filter = filterBox({
    value: state.q,
    onRun: (q) => { state.q = q.trim(); run(true); },
    paths: seenPaths,
    values: (field) => {
      if (!valueCache.has(field)) {
        const {since, until} = resolve(state.since, state.until);
        valueCache.set(field, ctx.api.get("/v1/facets", {field, top: 50, since, until},
          {signal: ctx.signal}).then((r) => r.facets[0].values));
      }
      return valueCache.get(field);
    },
  });
  const rangeBox = h("div", {class: "range-box"});
  const liveLink = h("a", {class: "button live-toggle", href: "/live", title: "Tail this filter live"},
    "● Live");
  const summary = h("div", {class: "summary", id: "summary"});
  const chartBox = histogramBox();
  const chart = histogram(chartBox, {
    onZoom: (fromMs, toMs) => {
      state.since = new Date(fromMs).toISOString();
      state.until = new Date(toMs).toISOString();
      run(true);
    },
  });
  const facets = facetSidebar({
    onFilter: (t, exclude) => applyTerm(t, exclude),
    onAddPath: (path) => { state.paths.add(path); run(true); },
    onRemovePath: (path) => { state.paths.delete(path); run(true); },
  });
  const pinned = h("div", {class: "pinned"});
  const status = h("div", {class: "results-status"});
  const {table, tbody} = eventTable();
  const more = h("div", {class: "more"});
  const results = h("section", {class: "panel results"}, table, more);

  root.append(h("div", {class: "explore"},
    facets.el,
    h("div", {class: "explore-main"},
      h("div", {class: "filter-bar"}, filter.el,
        h("button", {type: "button", class: "primary run", onclick: () => {
          state.q = filter.input.value.trim();
          run(true);
        }}, "Search"),
        liveLink),
      h("div", {class: "toolbar"}, rangeBox, h("span", {class: "spacer"}), summary),
      chartBox, pinned, status, results)));

  function applyTerm(t, exclude) {
    state.q = addTerm(filter.input.value, t, exclude);
    filter.input.value = state.q;
    run(true);
  }

  const detailOptions = {
    onFilter: applyTerm,
    onContext: (ev, by, box) => loadContext(ctx.api, ev, by, box, ctx.signal)
      .catch((err) => replace(box, notice("error", err.message))),
  };

  function urlParams() {
    const p = {};
    if (state.q) p.q = state.q;
    if (state.since !== DEFAULT_SINCE || state.until) p.since = state.since;
    if (state.until) p.until = state.until;
    if (state.paths.size) p.facets = [...state.paths].join(",");
    if (pinnedId) p.event = pinnedId;
    return p;
  }

  function addRows(events) {
    for (const ev of events) tbody.append(eventRow(ev, {detail: (e) => eventDetail(e, detailOptions)}));
  }

  function showMore(next, params, signal) {
    cursor = next;
    if (!cursor) {
      replace(more, loaded.length ? h("span", {class: "muted"}, "End of results") : null);
      return;
    }
    replace(more, h("button", {type: "button", class: "load-more", onclick: async () => {
      try {
        const page = await ctx.api.get("/v1/events", {...params, limit: PAGE, cursor}, {signal});
        loaded = loaded.concat(page.events);
        addRows(page.events);
        showMore(page.next_cursor, params, signal);
      } catch (err) {
        if (err.name !== "AbortError") replace(more, notice("error", err.message));
      }
    }}, "Load more"));
  }

  function failed(err) {
    if (err.name === "AbortError") return;
    if (err.status === 400 && err.message.startsWith("q:")) filter.showError(err.message);
    else if (err.status === 503 && err.message.startsWith("query_timeout")) {
      replace(status, notice("error", `${err.message}. Counting took too long: narrow the ` +
        "time range or the filter, or index a data path it names (eventcollector index " +
        "add data.PATH)."));
    } else replace(status, notice("error", err.message));
  }

  async function run(push = false) {
    const gen = ++generation;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    ctx.signal.addEventListener("abort", () => controller.abort(), {once: true});
    root.dataset.state = "loading";
    if (push && pinnedId) {
      pinnedId = null;
      replace(pinned);
    }
    filter.clearError();
    replace(status);
    ctx.setParams(urlParams(), {push});
    const liveParams = new URLSearchParams(state.q ? {q: state.q} : {});
    liveLink.setAttribute("href", `/live${liveParams.size ? `?${liveParams}` : ""}`);
    replace(rangeBox, rangePicker(state.since, state.until, ({since, until}) => {
      state.since = since;
      state.until = until;
      run(true);
    }));
    let range;
    try {
      range = resolve(state.since, state.until);
    } catch (err) {
      replace(status, notice("error", err.message));
      return;
    }
    const params = {q: state.q || undefined, since: range.since, until: range.until};
    const step = interval(range.fromMs, range.toMs);
    const fields = [...FIXED_FACETS.map(([f]) => f), ...state.paths].slice(0, 10).join(",");

    const rows = ctx.api.get("/v1/events", {...params, limit: PAGE}, {signal}).then((page) => {
      if (gen !== generation) return;
      loaded = page.events;
      tbody.replaceChildren();
      addRows(page.events);
      if (!page.events.length) {
        tbody.append(h("tr", {}, h("td", {colspan: "6", class: "empty"},
          "No events match this filter in this time range.")));
      }
      showMore(page.next_cursor, params, signal);
      performance.mark("explore-rows", {detail: gen});
    });
    const bars = ctx.api.get("/v1/aggregate",
      {...params, by: "severity", interval: step.name}, {signal}).then((agg) => {
      if (gen !== generation) return;
      const total = agg.rows.reduce((n, r) => n + r.values.count, 0);
      replace(summary, h("strong", {}, fmtCount(total)), ` event${total === 1 ? "" : "s"}`,
        h("span", {class: "muted"}, ` · ${step.name} buckets`));
      chart.update(agg.rows, step.seconds, [range.fromMs / 1000, range.toMs / 1000]);
      performance.mark("explore-histogram", {detail: gen});
    });
    const side = ctx.api.get("/v1/facets", {...params, field: fields, top: 8}, {signal});
    const outcome = await Promise.allSettled([rows, bars, side]);
    if (gen !== generation) return;
    const errors = outcome.filter((o) => o.status === "rejected").map((o) => o.reason);
    if (errors.length) {
      failed(errors[0]);
      if (outcome[1].status === "rejected") {
        replace(summary);
        chart.update([], step.seconds, [range.fromMs / 1000, range.toMs / 1000]);
      }
      if (outcome[0].status === "rejected") {
        tbody.replaceChildren();
        loaded = [];
        replace(more);
      }
    }
    facets.update(outcome[2].status === "fulfilled" ? outcome[2].value.facets : null, state.paths);
    root.dataset.generation = String(gen);
    root.dataset.state = errors.length ? "error" : "ready";
    // The benchmark (benchmarks/_ui.py) reads when each run had its rows, its histogram
    // and everything (facets too) on the page.
    performance.mark("explore-ready", {detail: gen});
  }

  async function showPinned() {
    try {
      const ev = await ctx.api.get(`/v1/events/${encodeURIComponent(pinnedId)}`, undefined,
        {signal: ctx.signal});
      replace(pinned, h("section", {class: "panel pinned-event"},
        h("div", {class: "panel-head"}, h("h2", {}, "Event"), h("code", {}, ev.id)),
        h("div", {class: "panel-body"}, eventDetail(ev, detailOptions))));
    } catch (err) {
      if (err.name !== "AbortError") replace(pinned, notice("error", err.message));
    }
  }

  // Escape closes the expanded rows and puts the focus back on the row.
  const onKey = (e) => {
    if (e.key !== "Escape" || e.target.closest("input, dialog")) return;
    for (const row of tbody.querySelectorAll('tr.event-row[aria-expanded="true"]')) {
      collapse(row);
      row.focus();
    }
  };
  document.addEventListener("keydown", onKey);
  const onTheme = () => chart.redraw();
  window.addEventListener("ec:theme", onTheme);

  if (pinnedId) showPinned();
  await run(false);
  return () => {
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("ec:theme", onTheme);
    if (controller) controller.abort();
    chart.destroy();
  };
}
