// Writing terms of the filter language (docs/filters.md) from values the user clicks,
// quoted so that they parse back to the same value, and the field names it knows.

// The fields, with their aliases, for suggestions (docs/filters.md, "Fields").
export const FIELDS = [
  ["system", "string"], ["severity", "debug … critical"], ["event_type", "string"],
  ["type", "alias of event_type"], ["title", "string"], ["description", "string"],
  ["tag", "a tag"], ["correlation_id", "string"], ["source_component", "string"],
  ["component", "alias of source_component"], ["duration_ms", "number"],
  ["duration", "alias of duration_ms"], ["timestamp", "ISO 8601 or -2h"], ["id", "string"],
  ["fingerprint", "an error issue's fingerprint"],
  ["data.", "a data path"], ["metadata.", "a metadata path"],
];
export const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
// Fields /v1/facets can count values of (besides data./metadata. paths).
const FACET_FIELDS = {
  system: "system", severity: "severity", event_type: "event_type", type: "event_type",
  source_component: "source_component", component: "source_component",
  correlation_id: "correlation_id", tag: "tag", tags: "tag",
};

// A bare value ends at whitespace, a parenthesis, a quote or a bracket (the lexer).
const BARE_VALUE = /^[^\s()"[\]]+$/;
const BARE_KEY = /^[^\s.:"()[\]]+$/;
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

export function quote(text) {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

// ["data", "a b", "c"] -> data."a b".c
export function pathText(root, keys) {
  return [root, ...keys.map((k) => (BARE_KEY.test(k) ? k : quote(k)))].join(".");
}

// The value as the filter language reads it back: on data paths an unquoted literal is
// typed (5 is a number, true a boolean), so a string that looks like one is quoted.
export function valueText(value, typed) {
  if (value === null) return "null";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  const ambiguous = typed && (JSON_NUMBER.test(text) || ["true", "false", "null"].includes(text));
  const special = !BARE_VALUE.test(text) || text.endsWith("*") || /^[<>]/.test(text);
  return ambiguous || special ? quote(text) : text;
}

// field is "system", "tag", or a path like data."a b".c written with pathText.
export function term(field, value) {
  const typed = field.startsWith("data.") || field.startsWith("metadata.");
  return `${field}:${valueText(value, typed)}`;
}

// q with one more term ANDed on (negated when exclude); a term already there is not
// repeated, and its opposite is replaced.
export function addTerm(q, text, exclude = false) {
  const wanted = exclude ? `-${text}` : text;
  const opposite = exclude ? text : `-${text}`;
  const parts = q.trim() ? q.trim().split(/\s+/) : [];
  if (parts.includes(wanted)) return q.trim();
  const kept = parts.filter((p) => p !== opposite);
  if (kept.length !== parts.length && !/[()"]/.test(q)) return [...kept, wanted].join(" ");
  const base = q.trim();
  // An OR at the top level would bind looser than the new term: keep its meaning.
  const wrapped = /\bOR\b/.test(base) ? `(${base})` : base;
  return wrapped ? `${wrapped} ${wanted}` : wanted;
}

// The field a facet call can count for a name typed in the filter, or null.
export function facetField(name) {
  if (name.startsWith("data.") || name.startsWith("metadata.")) {
    return name.length > name.indexOf(".") + 1 ? name : null;
  }
  return FACET_FIELDS[name] || null;
}

// "q: expected a value after 'severity:' at column 10" -> 10 (1-based), or null.
export function errorColumn(message) {
  const m = /^q: .* at column (\d+)$/.exec(message);
  return m ? Number(m[1]) : null;
}
