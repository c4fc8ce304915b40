// Time ranges in the URL: since is relative (-15m, -24h, -7d) or ISO 8601, until ISO or
// absent (now). Relative ranges are resolved at each request, so a bookmark stays "the
// last day". The histogram's bucket width is one the server knows (docs/aggregations.md).

import {h} from "./dom.js";

export const PRESETS = [["-15m", "15m"], ["-1h", "1h"], ["-24h", "24h"], ["-7d", "7d"],
  ["-30d", "30d"]];
export const DEFAULT_SINCE = "-24h";
const UNITS = {s: 1, m: 60, h: 3600, d: 86400, w: 604800};
const INTERVALS = [["1m", 60], ["5m", 300], ["15m", 900], ["1h", 3600], ["1d", 86400]];
const MAX_BARS = 200;

export function relativeSeconds(text) {
  const m = /^-(\d+(?:\.\d+)?)([smhdw])$/.exec(text || "");
  return m ? Number(m[1]) * UNITS[m[2]] : null;
}

// {since, until} from the URL -> ISO strings for the API and the range in ms.
export function resolve(since, until, now = Date.now()) {
  const rel = relativeSeconds(since);
  const toMs = until ? Date.parse(until) : now;
  const fromMs = rel !== null ? toMs - rel * 1000 : Date.parse(since);
  if (Number.isNaN(fromMs) || Number.isNaN(toMs)) throw new Error("since/until: not a time");
  return {fromMs, toMs, since: new Date(fromMs).toISOString(),
    until: until ? new Date(toMs).toISOString() : undefined};
}

// The smallest interval that keeps the histogram at most MAX_BARS bars wide.
export function interval(fromMs, toMs) {
  const span = (toMs - fromMs) / 1000;
  for (const [name, seconds] of INTERVALS) {
    if (span / seconds <= MAX_BARS) return {name, seconds};
  }
  return {name: "1d", seconds: 86400};
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// The preset buttons and absolute from/to; onChange({since, until}).
export function rangePicker(since, until, onChange) {
  const presets = h("div", {class: "segmented", role: "group", "aria-label": "Time range"},
    PRESETS.map(([value, label]) => h("button", {
      type: "button", class: "preset", dataset: {since: value},
      "aria-pressed": String(!until && since === value),
      onclick: () => onChange({since: value, until: undefined}),
    }, label)));
  const {fromMs, toMs} = resolve(since, until);
  const from = h("input", {type: "datetime-local", "aria-label": "From", class: "range-from",
    value: localInput(fromMs)});
  const to = h("input", {type: "datetime-local", "aria-label": "To", class: "range-to",
    value: localInput(toMs)});
  const form = h("form", {class: "range-inputs row-actions"}, from, "→", to,
    h("button", {type: "submit", class: "small"}, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const a = new Date(from.value);
    const b = new Date(to.value);
    if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime()) || a >= b) return;
    onChange({since: a.toISOString(), until: b.toISOString()});
  });
  return h("div", {class: "row-actions range"}, presets, form);
}
