// Building DOM nodes from data. Every value is inserted as text (textContent or an attribute),
// never as HTML, so a hostile deployment name or incident summary stays inert.

const SVG_NS = "http://www.w3.org/2000/svg";

function setProps(el, props) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h("td", {class: "num"}, "12"). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** An SVG element (sparklines). */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** Replace a container's children, keeping keyboard focus on the "same" control. */
export function replace(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

export function button(label, onClick, props = {}) {
  return h("button", { type: "button", ...props, onclick: onClick }, label);
}

export function show(el, visible) {
  el.hidden = !visible;
}

export const fmt = {
  pct(value, digits = 1) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    return `${(value * 100).toFixed(digits)} %`;
  },
  share(value) {
    if (value === null || value === undefined) return "—";
    const fraction = value > 1 ? value / 100 : value; // accept 0..1 or 0..100
    return `${(fraction * 100).toFixed(0)} %`;
  },
  ms(value) {
    if (value === null || value === undefined) return "—";
    return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
  },
  num(value) {
    if (value === null || value === undefined) return "—";
    return Number.isInteger(value) ? String(value) : String(+value.toFixed(3));
  },
  age(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${Math.round(seconds / 86400)} d`;
  },
  since(iso) {
    if (!iso) return "—";
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return String(iso);
    return `${fmt.age((Date.now() - t) / 1000)} ago`;
  },
  time(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? String(iso) : t.toISOString().replace("T", " ").slice(0, 19) + "Z";
  },
};
