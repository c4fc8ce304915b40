// The volume histogram of Explore: counts per time bucket stacked by severity, drawn
// with the vendored uPlot (window.uPlot, a classic script). Dragging across it calls
// onZoom(fromMs, toMs).

import {fmtCount, h} from "./dom.js";
import {SEVERITIES} from "./filter.js";

// Stacked bottom to top: the worst at the base, where it is seen first.
const STACK = ["critical", "error", "warning", "info", "debug"];
const HEIGHT = 130;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// rows of /v1/aggregate?by=severity&interval=...: {bucket, key: {severity}, values: {count}}
function columns(rows, stepSeconds, range) {
  const index = new Map();
  for (const row of rows) {
    const t = Date.parse(row.bucket) / 1000;
    if (!index.has(t)) index.set(t, Object.fromEntries(SEVERITIES.map((s) => [s, 0])));
    const sev = row.key.severity;
    if (sev in index.get(t)) index.get(t)[sev] += row.values.count;
  }
  // Buckets without events are drawn as zeros, so the axis shows the whole range.
  if (range && stepSeconds) {
    const first = Math.floor(range[0] / stepSeconds) * stepSeconds;
    for (let t = first; t < range[1] && index.size < 2000; t += stepSeconds) {
      if (!index.has(t)) index.set(t, Object.fromEntries(SEVERITIES.map((s) => [s, 0])));
    }
  }
  const times = [...index.keys()].sort((a, b) => a - b);
  const raw = Object.fromEntries(STACK.map((s) => [s, times.map((t) => index.get(t)[s])]));
  const stacked = [];
  let below = times.map(() => 0);
  for (const sev of STACK) {
    below = below.map((v, i) => v + raw[sev][i]);
    stacked.push(below);
  }
  // Drawn largest first, so each smaller stack paints over the bottom of the last.
  const x = times.map((t) => t + stepSeconds / 2);
  return {x, raw, stacked: [...stacked].reverse(), order: [...STACK].reverse()};
}

export function histogram(container, {onZoom}) {
  let plot = null;
  let last = null;
  const resize = new ResizeObserver(() => {
    if (plot) plot.setSize({width: container.clientWidth - 12, height: HEIGHT});
  });
  resize.observe(container);

  function build({x, raw, stacked, order}, range) {
    if (plot) plot.destroy();
    const axis = {stroke: cssVar("--muted"), grid: {stroke: cssVar("--border"), width: 1},
      ticks: {stroke: cssVar("--border"), width: 1}, font: `11px ${cssVar("--sans")}`};
    const bars = window.uPlot.paths.bars({size: [0.86, 60], gap: 1});
    // Off the bars, the legend says each severity's count over the whole range.
    const totals = Object.fromEntries(order.map((sev) => [sev, raw[sev].reduce((a, b) => a + b, 0)]));
    plot = new window.uPlot({
      width: Math.max(container.clientWidth - 12, 200),
      height: HEIGHT,
      legend: {show: true, live: true},
      cursor: {drag: {x: true, y: false, setScale: false}, points: {show: false}},
      select: {show: true},
      scales: {x: {time: true, range: range ? () => range : undefined},
        y: {range: (u, min, max) => [0, Math.max(1, max * 1.08)]}},
      axes: [{...axis}, {...axis, size: 46, values: (u, ticks) => ticks.map(compact)}],
      series: [
        {value: (u, v) => (v === null ? "" : new Date(v * 1000).toLocaleString())},
        ...order.map((sev) => ({
          label: sev,
          fill: cssVar(`--sev-${sev}`),
          stroke: cssVar(`--sev-${sev}`),
          width: 0,
          paths: bars,
          points: {show: false},
          value: (u, v, si, i) => fmtCount(i === null ? totals[sev] : raw[sev][i]),
        })),
      ],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
          onZoom(from, to);
        }],
        draw: [() => { container.dataset.drawn = String(Number(container.dataset.drawn || 0) + 1); }],
      },
    }, [x, ...stacked], container);
  }

  return {
    // rows from /v1/aggregate; stepSeconds the bucket width; range [from, to] in seconds.
    update(rows, stepSeconds, range) {
      last = [columns(rows, stepSeconds, range), range];
      build(...last);
    },
    redraw() { if (last) build(...last); },
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

function compact(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function histogramBox() {
  return h("div", {class: "panel histogram", id: "histogram", "aria-label": "Events over time"});
}
