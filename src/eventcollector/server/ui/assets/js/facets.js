// Explore's facet sidebar: the top values of a field with their counts; click a value
// to filter for it, "−" (or Alt+click) to exclude it. Data paths can be added.

import {fmtCount, h, replace} from "./dom.js";
import {term} from "./filter.js";

export const FIXED_FACETS = [
  ["system", "System"], ["severity", "Severity"], ["event_type", "Event type"],
  ["source_component", "Component"], ["tag", "Tags"],
];

// A data path's name may break after each dot (a text node and <wbr> apart: no markup).
function breakable(label) {
  return label.split(".").flatMap((part, i) => (i ? [h("wbr"), `.${part}`] : [part]));
}

function facetPanel(field, label, values, other, onFilter, extra, empty = "no values") {
  const max = Math.max(1, ...values.map((v) => v.count));
  const list = h("ul", {},
    values.map(({value, count}) => {
      if (value === null || value === undefined) {
        return h("li", {class: "muted"}, h("span", {class: "facet-value"}, "(none)"),
          h("span", {class: "facet-count"}, fmtCount(count)));
      }
      const text = typeof value === "string" ? value : JSON.stringify(value);
      const filterTerm = term(field, value);
      return h("li", {dataset: {value: text}},
        h("span", {class: "bar", dataset: {w: String(count / max)}}),
        h("button", {type: "button", class: "facet-value", title: `${filterTerm} (Alt: exclude)`,
          onclick: (e) => onFilter(filterTerm, e.altKey)}, text),
        h("span", {class: "facet-count"}, fmtCount(count)),
        h("button", {type: "button", class: "facet-exclude small", title: `-${filterTerm}`,
          "aria-label": `Exclude ${text}`, onclick: () => onFilter(filterTerm, true)}, "−"));
    }));
  // Widths set as properties: CSSOM writes are not inline style attributes under CSP.
  for (const bar of list.querySelectorAll(".bar")) {
    bar.style.width = `${Math.round(Number(bar.dataset.w) * 100)}%`;
  }
  return h("section", {class: "panel facet", dataset: {field}},
    h("h3", {}, h("span", {class: "facet-name"}, breakable(label)), extra),
    values.length ? list : h("div", {class: "muted"}, empty),
    other ? h("div", {class: "muted facet-other"}, `${fmtCount(other)} in other values`) : null);
}

// onFilter(term, exclude); paths: the data paths the user added (a Set, kept by Explore).
export function facetSidebar({onFilter, onAddPath, onRemovePath}) {
  const el = h("aside", {class: "facets", "aria-label": "Facets"});
  return {
    el,
    // facets: the /v1/facets answer (tags counted over every matching event too), or
    // null when it failed: the panels then say so instead of "no values".
    update(facets, paths) {
      const byField = new Map((facets || []).map((f) => [f.field, f]));
      const empty = facets ? "no values" : "not counted";
      const panels = FIXED_FACETS.map(([field, label]) => {
        const f = byField.get(field) || {values: [], other: 0};
        return facetPanel(field, label, f.values, f.other, onFilter, null, empty);
      });
      for (const path of paths) {
        const f = byField.get(path) || {values: [], other: 0};
        panels.push(facetPanel(path, path, f.values, f.other, onFilter,
          h("button", {type: "button", class: "link facet-remove", title: `Remove ${path}`,
            "aria-label": `Remove facet ${path}`, onclick: () => onRemovePath(path)}, "✕"),
          empty));
      }
      const input = h("input", {type: "text", placeholder: "data.path", "aria-label":
        "Add a facet for a data path", class: "facet-path"});
      const form = h("form", {class: "panel facet-add"}, input,
        h("button", {type: "submit", class: "small"}, "Add"));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const path = input.value.trim();
        if (path) onAddPath(path);
      });
      replace(el, panels, form);
    },
  };
}
