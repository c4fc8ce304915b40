// Overview (/overview): totals by system, severity and type; events per hour with the
// anomalies of detect_patterns (/v1/analysis/patterns) marked; duration percentiles
// (p50/p95/p99) overall and by system. Every number links to Explore with the filter
// and range it counts. The URL holds since and until (default: the last seven days).
// docs/ui.md.

import {SEVERITIES, term} from "../filter.js";
import {systemColours} from "../palette.js";
import {rangePicker} from "../timerange.js";
import {showFailure, startLoad} from "../viewstate.js";

const DEFAULT_SINCE = "-7d";
const TOP = 12;
const HOUR = 3600e3;
const PERCENTILES = ["p50", "p95", "p99"];
const DURATION_METRICS = ["count", ...PERCENTILES.map((p) => `${p}:duration_ms`),
  "max:duration_ms"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// The hourly counts as uPlot columns, every hour of the range present.
function hourly(rows, fromMs, toMs) {
  const counts = new Map(rows.map((r) => [Date.parse(r.bucket), r.values.count]));
  const first = Math.floor(fromMs / HOUR) * HOUR;
  const x = [];
  const y = [];
  for (let t = first; t < toMs; t += HOUR) {
    x.push(t / 1000);
    y.push(counts.get(t) || 0);
  }
  return [x, y];
}

// Explore over one hour (an anomaly's).
function hourHref(hour) {
  const from = Date.parse(hour);
  return `/?${new URLSearchParams({since: new Date(from).toISOString(),
    until: new Date(from + HOUR).toISOString()})}`;
}

function hourChart(container, [x, y], anomalies, onPick) {
  const marks = new Map(anomalies.map((a) => [Date.parse(a.hour) / 1000, a]));
  let plot = null;
  const build = () => {
    if (plot) plot.destroy();
    const axis = {stroke: cssVar("--muted"), grid: {stroke: cssVar("--border"), width: 1},
      ticks: {stroke: cssVar("--border"), width: 1}, font: `11px ${cssVar("--sans")}`};
    const bar = cssVar("--accent");
    plot = new window.uPlot({
      width: Math.max(container.clientWidth - 12, 200), height: 190,
      legend: {show: false},
      cursor: {points: {show: false}, drag: {x: true, y: false, setScale: false}},
      select: {show: true},
      // The last hour's bar starts at its hour and is drawn to its right: room for it.
      scales: {x: {time: true, range: (u, min, max) => [min, max + 3600]},
        y: {range: (u, min, max) => [0, Math.max(1, max * 1.15)]}},
      axes: [{...axis}, {...axis, size: 46}],
      series: [{}, {label: "events", fill: bar, stroke: bar, width: 0, points: {show: false},
        paths: window.uPlot.paths.bars({size: [0.9, 40], gap: 1, align: 1})}],
      hooks: {
        // Anomalous hours: a band behind the bar and a triangle above it.
        draw: [(u) => {
          const c = u.ctx;
          c.save();
          for (const [t, a] of marks) {
            const left = u.valToPos(t, "x", true);
            const right = u.valToPos(t + 3600, "x", true);
            if (right < u.bbox.left || left > u.bbox.left + u.bbox.width) continue;
            const colour = cssVar(a.type === "spike" ? "--sev-error" : "--sev-warning");
            c.fillStyle = colour;
            c.globalAlpha = 0.18;
            c.fillRect(left, u.bbox.top, Math.max(right - left, 2), u.bbox.height);
            c.globalAlpha = 1;
            const mid = (left + right) / 2;
            const top = u.valToPos(a.count, "y", true) - 6 * devicePixelRatio;
            const s = 5 * devicePixelRatio;
            c.beginPath();
            if (a.type === "spike") {
              c.moveTo(mid - s, top - s); c.lineTo(mid + s, top - s); c.lineTo(mid, top);
            } else {
              c.moveTo(mid - s, top); c.lineTo(mid + s, top); c.lineTo(mid, top - s);
            }
            c.fill();
          }
          c.restore();
          container.dataset.drawn = String(Number(container.dataset.drawn || 0) + 1);
        }],
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
          onPick(from, to);
        }],
      },
    }, [x, y], container);
  };
  build();
  const resize = new ResizeObserver(() => {
    if (plot) plot.setSize({width: Math.max(container.clientWidth - 12, 200), height: 190});
  });
  resize.observe(container);
  window.addEventListener("ec:theme", build);
  return () => {
    resize.disconnect();
    window.removeEventListener("ec:theme", build);
    if (plot) plot.destroy();
  };
}

export async function mount(root, ctx) {
  const {h, replace, fmtTime, fmtCount, fmtDuration, severityBadge} = ctx.dom;
  const state = {since: ctx.params.get("since") || DEFAULT_SINCE,
    until: ctx.params.get("until") || undefined};
  const view = h("div", {class: "view-root overview-view", dataset: {state: "loading"}});
  const body = h("div", {class: "overview-body"});
  root.append(view);
  let cleanup = () => {};
  let generation = 0;

  function drawHead() {
    replace(view,
      h("div", {class: "toolbar"}, h("h2", {}, "Overview"), h("span", {class: "spacer"}),
        rangePicker(state.since, state.until, (range) => {
          Object.assign(state, range);
          const out = {};
          if (state.since !== DEFAULT_SINCE || state.until) out.since = state.since;
          if (state.until) out.until = state.until;
          ctx.setParams(out, {push: true});
          drawHead();
          load();
        })),
      body);
  }

  async function load() {
    const run = ++generation;
    cleanup();
    cleanup = () => {};
    const range = startLoad(view, body, state);
    if (!range) return;
    if (!body.firstChild) body.append(h("div", {class: "panel panel-body muted"}, "Loading…"));
    const bounds = {since: range.since, until: range.until};
    const days = Math.max((Date.now() - range.fromMs) / 86400e3, 1 / 24);
    const get = (path, params) => ctx.api.get(path, params, {signal: ctx.signal});
    let found;
    try {
      found = await Promise.all([
        get("/v1/events/count", bounds),
        get("/v1/facets", {...bounds, field: "system,severity,event_type", top: TOP}),
        get("/v1/aggregate", {...bounds, interval: "1h"}),
        get("/v1/analysis/patterns", {days: String(days)}),
        get("/v1/aggregate", {...bounds, q: "duration_ms:*", metric: DURATION_METRICS}),
        get("/v1/aggregate", {...bounds, q: "duration_ms:*", by: "system", top: TOP,
          metric: DURATION_METRICS}),
      ]);
    } catch (err) {
      if (err.name !== "AbortError" && run === generation) showFailure(view, body, err);
      return;
    }
    if (run !== generation) return;
    const [{count: total}, {facets}, perHour, patterns, overall, bySystem] = found;
    body.classList.remove("loading");
    if (!total) {
      replace(body, h("div", {class: "panel empty"}, "No events in this range."));
      view.dataset.state = "empty";
      return;
    }
    const explore = (q) => {
      const params = {since: range.since};
      if (q) params.q = q;
      if (range.until) params.until = range.until;
      return `/?${new URLSearchParams(params)}`;
    };
    const facet = Object.fromEntries(facets.map((f) => [f.field, f]));
    const severityCount = Object.fromEntries(facet.severity.values.map((v) => [v.value, v.count]));
    const errors = (severityCount.error || 0) + (severityCount.critical || 0);
    const anomalies = patterns.patterns.filter((a) => {
      const t = Date.parse(a.hour);
      return t + HOUR > range.fromMs && t < range.toMs;
    });
    const p95 = overall.rows.length ? overall.rows[0].values["p95:duration_ms"] : null;

    const card = (label, value, href, cls) => h("a", {class: `card ${cls}`, href},
      h("span", {class: "card-value"}, value), h("span", {class: "card-label"}, label));
    const cards = h("div", {class: "cards"},
      card("events", fmtCount(total), explore(""), "card-total"),
      card("errors and critical", fmtCount(errors), explore("severity:>=error"),
        `card-errors${errors ? " card-bad" : ""}`),
      card("systems", fmtCount(facet.system.values.length + (facet.system.other ? 1 : 0)) +
        (facet.system.other ? "+" : ""), explore(""), "card-systems"),
      card("anomalous hours", fmtCount(anomalies.length),
        anomalies.length ? hourHref(anomalies[0].hour) : explore(""),
        `card-anomalies${anomalies.length ? " card-warn" : ""}`),
      card("p95 duration", p95 === null ? "–" : fmtDuration(p95),
        p95 === null ? explore("duration_ms:*") : explore(`duration_ms:>=${p95}`), "card-p95"));

    const chartBox = h("div", {class: "hour-chart", "aria-label": "Events per hour"});
    const anomalyList = h("ul", {class: "anomalies", id: "anomalies"},
      anomalies.length ? anomalies.map((a) => {
        return h("li", {class: `anomaly anomaly-${a.type}`, dataset: {hour: a.hour}},
          h("span", {class: "anomaly-kind"}, a.type === "spike" ? "▲ spike" : "▼ drop"),
          h("a", {href: hourHref(a.hour)}, fmtTime(a.hour).slice(0, 16)),
          h("span", {}, `${fmtCount(a.count)} events, about ${fmtCount(Math.round(a.expected))}` +
            ` expected (${a.deviation > 0 ? "+" : ""}${a.deviation.toFixed(1)} σ)`));
      }) : h("li", {class: "muted"}, "No anomalous hours (2.5 σ from the mean of the period)."));

    const colour = systemColours(facet.system.values.map((v) => v.value));
    const breakdown = (title, id, field, render) => {
      const f = facet[field];
      const top = Math.max(1, ...f.values.map((v) => v.count));
      const items = f.values.map((v) => {
        const fill = h("span", {class: "fill"});
        fill.style.width = `${(v.count / top) * 100}%`;
        return h("li", {dataset: {value: v.value === null ? "" : String(v.value)}},
          h("a", {class: "breakdown-link",
            href: explore(v.value === null ? `-${field}:*` : term(field, v.value)),
            title: `${v.value} in Explore`},
          fill, h("span", {class: "name"}, render(v.value)),
          h("span", {class: "count"}, fmtCount(v.count))));
      });
      if (f.other) {
        items.push(h("li", {class: "other muted"}, h("span", {class: "name"}, "other values"),
          h("span", {class: "count"}, fmtCount(f.other))));
      }
      return h("section", {class: "panel breakdown", id, dataset: {field}},
        h("div", {class: "panel-head"}, h("h3", {}, title)), h("ul", {}, items));
    };
    const sevOrder = [...SEVERITIES].reverse();
    facet.severity.values.sort((a, b) => sevOrder.indexOf(a.value) - sevOrder.indexOf(b.value));

    const percentileRow = (label, values, q, cls) => h("tr", {class: cls},
      h("td", {class: "name"}, label),
      h("td", {class: "num"}, h("a", {href: explore(q ? `${q} duration_ms:*` : "duration_ms:*")},
        fmtCount(values.count))),
      [...PERCENTILES, "max"].map((p) => {
        const v = values[`${p}:duration_ms`];
        const slower = `duration_ms:>=${v}`;
        return h("td", {class: `num ${p}`}, v === null || v === undefined ? "–"
          : h("a", {href: explore(q ? `${q} ${slower}` : slower),
            title: `events of ${label} taking ${fmtDuration(v)} or longer`}, fmtDuration(v)));
      }));
    const systemsRows = bySystem.rows.filter((r) => r.key.system !== null)
      .sort((a, b) => b.values.count - a.values.count)
      .map((r) => percentileRow(r.key.system, r.values, term("system", r.key.system),
        "percentile-system"));
    const durations = h("section", {class: "panel durations"},
      h("div", {class: "panel-head"}, h("h3", {}, "Duration percentiles"),
        h("span", {class: "muted"}, "of the events with a duration")),
      overall.rows.length && overall.rows[0].values.count ? h("table", {class: "grid percentiles"},
        h("thead", {}, h("tr", {}, h("th", {}, "System"), h("th", {class: "num"}, "Events"),
          [...PERCENTILES, "max"].map((p) => h("th", {class: "num"}, p)))),
        h("tbody", {}, percentileRow("all systems", overall.rows[0].values, "", "percentile-all"),
          systemsRows))
        : h("div", {class: "empty"}, "No event in this range has a duration."));

    replace(body,
      cards,
      h("section", {class: "panel hours"},
        h("div", {class: "panel-head"}, h("h3", {}, "Events per hour"),
          h("span", {class: "muted"}, "drag across to explore a range"),
          h("span", {class: "spacer"}),
          h("span", {class: "legend-item"}, h("span", {class: "swatch swatch-spike"}), "spike"),
          h("span", {class: "legend-item"}, h("span", {class: "swatch swatch-drop"}), "drop")),
        chartBox, anomalyList),
      h("div", {class: "breakdowns"},
        breakdown("By system", "by-system", "system", (v) => [
          h("span", {class: `swatch ${colour(v)}`}), v]),
        breakdown("By severity", "by-severity", "severity", (v) => severityBadge(v)),
        breakdown("By type", "by-type", "event_type", (v) => v)),
      durations);
    cleanup = hourChart(chartBox, hourly(perHour.rows, range.fromMs, range.toMs), anomalies,
      (from, to) => ctx.navigate("/", {since: new Date(from).toISOString(),
        until: new Date(to).toISOString()}));
    view.dataset.state = "ready";
  }

  drawHead();
  await load();
  return () => cleanup();
}
