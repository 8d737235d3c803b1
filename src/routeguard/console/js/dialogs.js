// One modal dialog for every action: a form step (optional) and a confirmation step that says
// exactly what will change before anything is sent. Keyboard: focus moves into the dialog,
// Tab cycles inside it, Escape cancels, and focus returns to the button that opened it.

import { h, replace } from "./dom.js";

const dialog = () => document.getElementById("dialog");
let opener = null;
let openerKey = null;

function focusables(root) {
  return [...root.querySelectorAll("button, input, select, textarea, [href], [tabindex]")].filter(
    (el) => !el.disabled && el.tabIndex >= 0 && !el.hidden && el.getClientRects().length > 0,
  );
}

function trapTab(event) {
  if (event.key !== "Tab") return;
  const items = focusables(dialog());
  if (items.length === 0) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

export function installDialog() {
  const el = dialog();
  el.addEventListener("keydown", trapTab);
  el.addEventListener("close", () => {
    // The opener may have been re-rendered by a poll meanwhile: find it again by its key.
    const again = openerKey ? document.querySelector(`[data-key="${CSS.escape(openerKey)}"]`) : null;
    // A button the action made obsolete (a reset breaker's) is gone: keep focus in the page.
    const target = again ?? (opener?.isConnected ? opener : document.getElementById("main"));
    target?.focus?.();
    opener = null;
    openerKey = null;
  });
}

export function closeDialog() {
  if (dialog().open) dialog().close();
}

function setError(message) {
  const el = document.getElementById("dialog-error");
  el.textContent = message ?? "";
  el.hidden = !message;
}

function render(title, body, actions) {
  document.getElementById("dialog-title").textContent = title;
  replace(document.getElementById("dialog-body"), body);
  replace(document.getElementById("dialog-actions"), actions);
  setError(null);
}

function open(focusTarget) {
  const el = dialog();
  if (!el.open) {
    opener = document.activeElement;
    openerKey = opener?.dataset?.key ?? null;
    el.showModal();
  }
  (focusTarget ?? focusables(el)[0])?.focus();
}

/**
 * Ask before acting. ``changes`` is a list of {what, from, to}; ``notes`` are extra lines
 * (warnings). ``run`` does the call; its resolved value goes to ``done``.
 */
export function confirmChange({ title, intro, changes = [], notes = [], label = "Apply", run, done }) {
  const table = changes.length
    ? h(
        "table",
        { class: "changes" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Now"), h("th", { scope: "col" }, "After"))),
        h(
          "tbody",
          {},
          changes.map((c) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, c.what),
              h("td", { "data-label": "Now" }, String(c.from ?? "—")),
              h("td", { "data-label": "After", class: "after" }, String(c.to ?? "—")),
            ),
          ),
        ),
      )
    : null;
  const body = h(
    "div",
    {},
    intro ? h("p", {}, intro) : null,
    table,
    notes.map((n) => h("p", { class: n.warn ? "note warn" : "note" }, n.text ?? n)),
  );
  const cancel = h("button", { type: "button", class: "quiet", "data-role": "cancel" }, "Cancel");
  const apply = h("button", { type: "button", class: "danger", "data-role": "apply" }, label);
  cancel.addEventListener("click", closeDialog);
  apply.addEventListener("click", async () => {
    apply.disabled = true;
    cancel.disabled = true;
    setError(null);
    try {
      const result = await run();
      closeDialog();
      done?.(result);
    } catch (err) {
      setError(err.message ?? String(err));
      apply.disabled = false;
      cancel.disabled = false;
      apply.focus();
    }
  });
  render(title, body, [cancel, apply]);
  open(cancel); // the safe choice has focus: Enter alone never applies a change
}

/**
 * A form step: ``fields`` are {id, label, type, value, options, help}; ``review`` turns the
 * values into a confirmChange() argument (or throws an Error whose message is shown).
 */
export function formStep({ title, intro, fields, review }) {
  const inputs = {};
  const rows = fields.map((f) => {
    const id = `field-${f.id}`;
    let input;
    if (f.type === "select") {
      input = h("select", { id }, f.options.map((o) => h("option", { value: o.value, selected: o.value === f.value }, o.label ?? o.value)));
    } else if (f.type === "textarea") {
      input = h("textarea", { id, rows: 3 });
      input.value = f.value ?? "";
    } else if (f.type === "checkbox") {
      input = h("input", { id, type: "checkbox", checked: Boolean(f.value) });
    } else {
      input = h("input", { id, type: f.type ?? "text", step: f.step, min: f.min, inputmode: f.inputmode, autocomplete: "off" });
      input.value = f.value ?? "";
    }
    inputs[f.id] = input;
    return h(
      "div",
      { class: f.type === "checkbox" ? "field check" : "field" },
      h("label", { for: id }, f.label),
      input,
      f.help ? h("small", {}, f.help) : null,
    );
  });
  const form = h("form", { class: "form", novalidate: true }, intro ? h("p", {}, intro) : null, rows);
  const values = () =>
    Object.fromEntries(
      Object.entries(inputs).map(([k, el]) => [k, el.type === "checkbox" ? el.checked : el.value.trim()]),
    );
  const next = () => {
    try {
      confirmChange(review(values()));
    } catch (err) {
      setError(err.message);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    next();
  });
  const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
  cancel.addEventListener("click", closeDialog);
  const reviewButton = h("button", { type: "button", class: "primary", "data-role": "review" }, "Review…");
  reviewButton.addEventListener("click", next);
  render(title, form, [cancel, reviewButton]);
  open(Object.values(inputs)[0]);
}
