// A sparkline as inline SVG, built with DOM calls (no markup strings): an area under a
// line, one point per value, stretched to the element's box by css/views.css.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

// values: counts; label: what a screen reader hears (the SVG is an image).
export function sparkline(values, label) {
  const height = 20;
  const width = Math.max(values.length - 1, 1);
  const top = Math.max(1, ...values);
  const y = (v) => (height - 1 - (v / top) * (height - 2)).toFixed(2);
  const points = values.length === 1 ? [[0, values[0]], [1, values[0]]]
    : values.map((v, i) => [i, v]);
  const line = points.map(([x, v], i) => `${i ? "L" : "M"}${x},${y(v)}`).join(" ");
  const root = svg("svg", {
    class: "sparkline", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
    role: "img", "aria-label": label,
  });
  root.append(
    svg("path", {class: "spark-area", d: `${line} L${width},${height} L0,${height} Z`}),
    svg("path", {class: "spark-line", d: line, "vector-effect": "non-scaling-stroke"}));
  return root;
}
