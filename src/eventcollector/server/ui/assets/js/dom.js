// DOM helpers. Everything an event carries reaches the page as text: these build
// elements with textContent and setAttribute only, never innerHTML, so a title such as
// <img src=x onerror=alert(1)> shows those characters.

const SAFE_URL = /^(\/|#|\?|https?:)/;

// h("a", {href: "/x", class: "link", onclick: fn}, "text", child, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) {
        if (typeof value !== "function") throw new Error(`dom: ${name} must be a function`);
        el.addEventListener(name.slice(2), value);
      } else if (name === "class") {
        el.className = value;
      } else if (name === "dataset") {
        Object.assign(el.dataset, value);
      } else if ((name === "href" || name === "src") && !SAFE_URL.test(String(value))) {
        throw new Error(`dom: refusing ${name} ${String(value).slice(0, 40)}`);
      } else {
        el.setAttribute(name, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// Times are shown in the browser's zone, to the millisecond, ISO-like so they sort.
export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms === 0) return "0 ms";  // a whole 0 (duration_ms is an integer), not "0.00"
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

export function severityBadge(severity) {
  return h("span", {class: `sev sev-${severity}`}, severity);
}

// A message box; kind is "error" or "info".
export function notice(kind, ...text) {
  return h("div", {class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status"},
    ...text);
}
