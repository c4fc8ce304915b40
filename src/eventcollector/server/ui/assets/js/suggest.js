// Suggestions under the filter box: field names while a term has no colon yet, then
// the top values of that field (from /v1/facets). Arrow keys move, Tab or Enter takes
// the highlighted one, Escape closes the list.

import {fmtCount, h, replace} from "./dom.js";
import {FIELDS, SEVERITIES, facetField, valueText} from "./filter.js";

// The term under the caret: where it starts, its field (if it has a colon) and partial.
function currentTerm(text, caret) {
  const before = text.slice(0, caret);
  const start = Math.max(before.lastIndexOf(" "), before.lastIndexOf("("),
    before.lastIndexOf("\t")) + 1;
  let token = before.slice(start);
  const negated = token.startsWith("-");
  if (negated) token = token.slice(1);
  const colon = token.indexOf(":");
  return colon < 0
    ? {start: start + (negated ? 1 : 0), field: null, partial: token}
    : {start: start + (negated ? 1 : 0), field: token.slice(0, colon),
      partial: token.slice(colon + 1).replace(/^"/, "")};
}

// values(field) -> Promise<[{value, count}]> (cached per field by the caller);
// paths() -> data paths seen in loaded events.
export function attachSuggestions(input, {values, paths, onAccept}) {
  const list = h("ul", {class: "suggestions hidden", role: "listbox", id: "filter-suggestions"});
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-autocomplete", "list");
  let items = [];
  let active = -1;
  let ticket = 0;

  function close() {
    ticket++; // an answer still on its way is not shown
    items = [];
    active = -1;
    list.replaceChildren(); // a hidden list keeps no stale options for the next look
    list.classList.add("hidden");
    input.setAttribute("aria-expanded", "false");
  }

  function show(next) {
    items = next.slice(0, 12);
    active = -1;
    if (!items.length) { close(); return; }
    replace(list, items.map((item, i) => h("li", {
      role: "option", "aria-selected": "false", dataset: {index: String(i)},
      onmousedown: (e) => { e.preventDefault(); take(i); },
    }, h("span", {}, item.label), h("span", {class: "hint"}, item.hint))));
    list.classList.remove("hidden");
    input.setAttribute("aria-expanded", "true");
  }

  function highlight(i) {
    active = (i + items.length) % items.length;
    list.querySelectorAll("li").forEach((li, k) => {
      li.setAttribute("aria-selected", String(k === active));
      if (k === active) li.scrollIntoView({block: "nearest"});
    });
  }

  function take(i) {
    const item = items[i];
    const caret = input.selectionStart;
    const {start} = currentTerm(input.value, caret);
    let end = caret;
    while (end < input.value.length && !/\s/.test(input.value[end])) end++;
    const text = input.value.slice(0, start) + item.insert + input.value.slice(end);
    input.value = text;
    const at = start + item.insert.length;
    input.setSelectionRange(at, at);
    close();
    if (item.insert.endsWith(":") || item.insert.endsWith(".")) refresh();
    else if (onAccept) onAccept();
  }

  async function refresh() {
    const mine = ++ticket;
    const {field, partial} = currentTerm(input.value, input.selectionStart);
    const lower = partial.toLowerCase();
    if (field === null) {
      if (!partial) { close(); return; }
      const known = [...FIELDS.map(([name, hint]) => ({name, hint})),
        ...paths().map((name) => ({name, hint: "seen in results"}))];
      show(known.filter(({name}) => name.startsWith(lower) && name !== lower)
        .map(({name, hint}) => ({label: name, hint,
          insert: name.endsWith(".") ? name : `${name}:`})));
      return;
    }
    const typed = field.startsWith("data.") || field.startsWith("metadata.");
    if (field === "severity" || field === "level") {
      show(SEVERITIES.filter((s) => s.startsWith(lower))
        .map((s) => ({label: s, hint: "", insert: `${field}:${s}`})));
      return;
    }
    const facet = facetField(field);
    if (!facet) { close(); return; }
    let found;
    try {
      found = await values(facet);
    } catch {
      found = [];
    }
    if (mine !== ticket) return;
    show(found.filter((v) => v.value !== null && String(v.value).toLowerCase().startsWith(lower))
      .map((v) => ({label: String(v.value), hint: fmtCount(v.count),
        insert: `${field}:${valueText(v.value, typed)}`})));
  }

  // No debounce: field names are local and values() answers each field from a cache
  // after its first call, so the list follows every keystroke.
  input.addEventListener("input", () => refresh());
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (e) => {
    if (!items.length) return;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight(active + 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight(active - 1); }
    else if ((e.key === "Tab" || e.key === "Enter") && active >= 0) {
      e.preventDefault();
      e.stopImmediatePropagation();
      take(active);
    } else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); }
  });
  return {el: list, close, isOpen: () => items.length > 0};
}
