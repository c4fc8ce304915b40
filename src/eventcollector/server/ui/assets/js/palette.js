// A colour per system, the same system the same colour within a page: classes sc-0 to
// sc-7 (css/views.css) handed out in the order the systems first appear.

const COLOURS = 8;

export function systemColours(systems) {
  const index = new Map();
  for (const s of systems) if (!index.has(s)) index.set(s, index.size % COLOURS);
  return (system) => `sc-${index.has(system) ? index.get(system) : 0}`;
}
