// The filter box of Explore and Live: the input (data-filter: "/" focuses it), Enter
// runs it, suggestions, and a syntax error shown under it with a caret at its column.

import {h, replace} from "./dom.js";
import {errorColumn} from "./filter.js";
import {attachSuggestions} from "./suggest.js";

export function filterBox({value, onRun, values, paths, placeholder}) {
  const input = h("input", {
    type: "text", class: "filter-input", id: "filter", name: "q", value: value || "",
    placeholder: placeholder || "Filter: severity:>=warning system:deployer \"timed out\"",
    "aria-label": "Filter", autocomplete: "off", spellcheck: "false", dataset: {filter: ""},
  });
  const error = h("div", {class: "filter-error hidden", id: "filter-error", role: "alert"});
  const suggestions = attachSuggestions(input, {values, paths, onAccept: () => onRun(input.value)});
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      suggestions.close();
      onRun(input.value);
    }
  });
  const el = h("div", {class: "filter-wrap"}, input, suggestions.el, error);
  return {
    el,
    input,
    // A server error about q: the text with a caret under the column it names.
    showError(message) {
      const column = errorColumn(message);
      input.setAttribute("aria-invalid", "true");
      const lines = [message];
      if (column !== null) {
        lines.unshift(input.value, `${" ".repeat(Math.max(0, column - 1))}^`);
      }
      replace(error, lines.join("\n"));
      error.classList.remove("hidden");
    },
    clearError() {
      input.removeAttribute("aria-invalid");
      error.classList.add("hidden");
      error.replaceChildren();
    },
  };
}
