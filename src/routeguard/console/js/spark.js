// A sparkline: one SVG polyline over a fixed 15-minute axis, so a gap in traffic shows as a gap
// in time rather than a stretched line.

import { s } from "./dom.js";

const WIDTH = 160;
const HEIGHT = 32;
const SPAN_S = 900;

/** ``points`` are {age_s, value}; value null means no data in that bucket. */
export function sparkline(points, { label, format, ceiling }) {
  const ordered = [...points].sort((a, b) => b.age_s - a.age_s); // oldest first
  const values = ordered.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const top = Math.max(ceiling ?? 0, ...values, 1e-9);
  const segments = [];
  let current = [];
  for (const p of ordered) {
    if (p.value === null || p.value === undefined) {
      if (current.length) segments.push(current);
      current = [];
      continue;
    }
    const x = WIDTH - (Math.min(p.age_s, SPAN_S) / SPAN_S) * WIDTH;
    const y = HEIGHT - 2 - (p.value / top) * (HEIGHT - 4);
    current.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  if (current.length) segments.push(current);
  const latest = values.length ? values[values.length - 1] : null;
  const summary = values.length
    ? `${label}: now ${format(latest)}, peak ${format(Math.max(...values))} over 15 min`
    : `${label}: no traffic in 15 min`;
  return s(
    "svg",
    { class: "spark", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": summary },
    s("title", {}, summary),
    s("line", { class: "axis", x1: 0, x2: WIDTH, y1: HEIGHT - 1, y2: HEIGHT - 1 }),
    segments.map((seg) =>
      seg.length === 1
        ? s("circle", { cx: seg[0].split(",")[0], cy: seg[0].split(",")[1], r: 1.5 })
        : s("polyline", { points: seg.join(" ") }),
    ),
  );
}
