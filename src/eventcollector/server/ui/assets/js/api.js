// The JSON API as the views use it. The key the user typed is kept in sessionStorage
// (gone when the tab closes) and sent as "Authorization: Bearer <key>", the header the
// server's auth reads; never in a URL, where it would land in logs and history.
// Live streams go through fetch too (not EventSource, which cannot send headers).

const KEY = "eventcollector.key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

// params: URLSearchParams, or an object whose values are strings or arrays (repeated).
export function queryString(params) {
  if (!params) return "";
  const out = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [name, value] of entries) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, String(v));
  }
  const text = out.toString();
  return text ? `?${text}` : "";
}

function headers(key) {
  return key ? {Authorization: `Bearer ${key}`} : {};
}

// A 401/403 tells the shell to ask for a key with ``scope`` (app.js listens).
function authFailed(status, message, scope) {
  window.dispatchEvent(new CustomEvent("ec:auth", {detail: {status, message, scope}}));
}

// ``key``: the one the request was sent with. A late answer to a request made with an
// older key (the user has given another since) must not reopen the prompt over the new one.
async function failure(response, key, scope = "read") {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch {
    // not JSON: keep the status line
  }
  if ((response.status === 401 || response.status === 403) && key === getKey()) {
    authFailed(response.status, message, scope);
  }
  return new ApiError(response.status, message);
}

export async function get(path, params, {signal} = {}) {
  const key = getKey();
  const response = await fetch(path + queryString(params), {headers: headers(key), signal});
  if (!response.ok) throw await failure(response, key);
  return response.json();
}

// Server-Sent Events over fetch: calls onFrame(kind, data) per frame until the server
// ends the stream (resolves) or the connection fails (rejects). abort() via signal.
export async function stream(path, params, onFrame, {signal, onOpen} = {}) {
  const key = getKey();
  const response = await fetch(path + queryString(params), {
    headers: {...headers(key), Accept: "text/event-stream"},
    signal,
    cache: "no-store",
  });
  if (!response.ok) throw await failure(response, key);
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    let gap;
    while ((gap = /\r?\n\r?\n/.exec(buffer))) {
      const block = buffer.slice(0, gap.index);
      buffer = buffer.slice(gap.index + gap[0].length);
      let kind = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onFrame(kind, JSON.parse(data.join("\n")));
    }
  }
}

// A state change (the Errors view's triage, the Alerts view's silences; ``scope`` what
// it needs); the server's cross-site guard lets only this page's own origin through.
async function change(method, path, body, {signal, scope} = {}) {
  const key = getKey();
  const response = await fetch(path, {
    method, body: body === undefined ? undefined : JSON.stringify(body), signal,
    headers: {...headers(key), "Content-Type": "application/json"},
  });
  if (!response.ok) throw await failure(response, key, scope);
  return response.json();
}

export function post(path, body, options) {
  return change("POST", path, body, options);
}

export function del(path, options) {
  return change("DELETE", path, undefined, options);
}

export const api = {get, post, del, stream, getKey, setKey};
