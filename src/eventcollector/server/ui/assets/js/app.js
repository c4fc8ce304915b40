// The shell: the header (nav, key prompt, theme), and the router that maps the URL's
// path to a view module. docs/ui.md describes the views.
//
// THE VIEW CONTRACT. Each view is an ES module js/views/<name>.js exporting
//
//     export async function mount(root, ctx) { ...; return unmount; }
//
// mount renders into root (an empty element) and may return a function unmount()
// that the router calls before the next view mounts (close streams, clear timers);
// the router also aborts ctx.signal then. ctx carries:
//   api       the JSON API: await ctx.api.get(path, params) -> parsed JSON; throws an
//             Error whose message is the server's {"error": ...}; ctx.api.stream(...)
//             reads Server-Sent Events (see api.js). Both send the key as a header.
//   params    URLSearchParams of the current URL (the filter q, since, until, ...)
//   route     the path parameters, e.g. {correlation_id: "..."} on /trace/...
//   navigate(path, params, {replace})  pushState (or replaceState) and remount
//   setParams(params, {push})          change the URL's query without remounting
//   dom       the helpers of dom.js (h, replace, fmtTime, ...): text only, no innerHTML
//   signal    an AbortSignal aborted when the view unmounts (pass it to api calls)
// Views link to each other with plain <a href="/trace/..."> that the router
// intercepts; a 401/403 from the API makes the shell ask for a key.

import {api, getKey, setKey} from "./api.js";
import * as dom from "./dom.js";

const {h, replace} = dom;

const ROUTES = [
  [/^\/$/, "explore", []],
  [/^\/live$/, "live", []],
  [/^\/trace\/([^/]+)$/, "trace", ["correlation_id"]],
  [/^\/errors$/, "errors", []],
  [/^\/overview$/, "overview", []],
  [/^\/alerts$/, "alerts", []],
];
const NAV = [["/", "Explore"], ["/live", "Live"], ["/errors", "Errors"], ["/overview", "Overview"],
  ["/alerts", "Alerts"]];
const THEME_KEY = "eventcollector.theme";

let current = null; // {unmount, controller}
let mountId = 0;

function match(path) {
  for (const [pattern, name, keys] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      const route = {};
      keys.forEach((key, i) => { route[key] = decodeURIComponent(m[i + 1]); });
      return {name, route};
    }
  }
  return null;
}

function urlFor(path, params) {
  const text = params ? new URLSearchParams(params).toString() : "";
  return text ? `${path}?${text}` : path;
}

export function navigate(path, params, {replace: replaceState = false} = {}) {
  const url = urlFor(path, params);
  if (replaceState) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  mount();
}

function setParams(params, {push = false} = {}) {
  const url = urlFor(location.pathname, params);
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

async function unmountCurrent() {
  if (!current) return;
  const {unmount, controller} = current;
  current = null;
  controller.abort();
  if (typeof unmount === "function") {
    try { await unmount(); } catch (err) { console.error(err); }
  }
}

async function mount() {
  const id = ++mountId;
  await unmountCurrent();
  // A fresh element per view, so that nothing (dataset, listeners) outlives it.
  const root = h("div", {class: "view-root"});
  document.getElementById("view").replaceChildren(root);
  updateNav();
  const found = match(location.pathname);
  if (!found) {
    root.append(dom.notice("error", `No view at ${location.pathname}.`));
    return;
  }
  const controller = new AbortController();
  current = {unmount: null, controller};
  document.body.dataset.view = found.name;
  try {
    const module = await import(`./views/${found.name}.js`);
    if (id !== mountId) return;
    const ctx = {
      api, dom, navigate, setParams,
      params: new URLSearchParams(location.search),
      route: found.route,
      signal: controller.signal,
    };
    const unmount = await module.mount(root, ctx);
    if (id !== mountId) {
      if (typeof unmount === "function") unmount();
      return;
    }
    current.unmount = unmount;
  } catch (err) {
    if (err.name === "AbortError" || id !== mountId) return;
    console.error(err);
    root.append(dom.notice("error", err.message || String(err)));
  }
}

// -- the header --------------------------------------------------------------------

function updateNav() {
  for (const link of document.querySelectorAll("#nav a")) {
    const here = link.getAttribute("href") === location.pathname;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const button = document.getElementById("key-button");
  if (button) button.textContent = getKey() ? "Key ✓" : "Key";
}

function keyPrompt(message) {
  const dialog = document.getElementById("key-dialog");
  const input = h("input", {
    id: "key-input", type: "password", name: "key", autocomplete: "off", spellcheck: "false",
    placeholder: "eck_…", "aria-label": "API key", required: true,
  });
  const form = h("form", {class: "key-form", method: "dialog"},
    h("h2", {}, "API key"),
    h("p", {class: "muted"}, message ||
      "This server requires an API key. Give a key with the read scope; it is kept for " +
      "this tab only (sessionStorage) and sent as a header."),
    input,
    h("div", {class: "row-actions"},
      h("button", {type: "submit", class: "primary"}, "Use key"),
      getKey() ? h("button", {type: "button", id: "key-forget", onclick: () => {
        setKey("");
        dialog.close();
        mount();
      }}, "Forget key") : null,
      h("button", {type: "button", onclick: () => dialog.close()}, "Cancel")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setKey(input.value.trim());
    dialog.close();
    mount();
  });
  replace(dialog, form);
  if (!dialog.open) dialog.showModal();
  input.focus();
}

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const button = document.getElementById("theme-button");
  if (button) button.textContent = {light: "☀ Light", dark: "☾ Dark"}[theme] || "◐ Auto";
}

function cycleTheme() {
  const order = ["auto", "light", "dark"];
  const now = localStorage.getItem(THEME_KEY) || "auto";
  const next = order[(order.indexOf(now) + 1) % order.length];
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  window.dispatchEvent(new CustomEvent("ec:theme"));
}

function header() {
  return [
    h("a", {href: "/", class: "brand"}, h("span", {class: "brand-mark"}, "◆"), "eventcollector"),
    h("nav", {id: "nav", "aria-label": "Views"},
      NAV.map(([href, label]) => h("a", {href}, label))),
    h("div", {class: "header-actions"},
      h("button", {id: "key-button", type: "button", title: "API key",
        onclick: () => keyPrompt()}, "Key"),
      h("button", {id: "theme-button", type: "button", title: "Theme: auto, light, dark",
        onclick: cycleTheme}, "◐ Auto")),
    h("dialog", {id: "key-dialog"}),
  ];
}

// Same-origin links reload nothing: the router mounts their view.
function interceptLinks(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/ui/") ||
      url.pathname.startsWith("/v1/")) return;
  event.preventDefault();
  if (url.pathname + url.search === location.pathname + location.search) return;
  navigate(url.pathname, url.searchParams);
}

// "/" focuses the filter of the view that has one (marked data-filter).
function hotkeys(event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  const filter = document.querySelector("[data-filter]");
  if (filter) {
    event.preventDefault();
    filter.focus();
    filter.select();
  }
}

function start() {
  replace(document.getElementById("header"), header());
  applyTheme(localStorage.getItem(THEME_KEY) || "auto");
  document.addEventListener("click", interceptLinks);
  document.addEventListener("keydown", hotkeys);
  window.addEventListener("popstate", () => mount());
  window.addEventListener("ec:auth", (e) => {
    const {status, message, scope} = e.detail;
    if (status === 401) keyPrompt(getKey() ? `${message}. Give another key.` : undefined);
    else keyPrompt(`${message}. Give a key with the ${scope} scope.`);
  });
  mount();
}

start();
