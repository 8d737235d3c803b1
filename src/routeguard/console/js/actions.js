// Operator actions. Each one computes, from the view on screen, exactly what will change,
// asks for confirmation, then makes the same admin API call the CLI makes (no second path).

import { call } from "./api.js";
import { deploymentsOf } from "./adapter.js";
import { confirmChange, formStep } from "./dialogs.js";
import { fmt } from "./dom.js";

let ctx = { refresh: () => {}, toast: () => {} };

/** ``refresh`` re-polls at once after a change; ``toast`` reports the outcome. */
export function configureActions(context) {
  ctx = context;
}

function finished(message) {
  return (result) => {
    ctx.toast(typeof message === "function" ? message(result) : message);
    ctx.refresh();
  };
}

function groupsOf(view, name) {
  return Object.entries(view.groups ?? {}).filter(([, g]) => (g.deployments ?? []).some((d) => d.name === name));
}

/** Weight changes when ``name`` goes to ``weight``, with a warning if a group is left empty. */
function weightChanges(view, name, weight) {
  const changes = [];
  const notes = [];
  for (const [group, g] of groupsOf(view, name)) {
    const members = g.deployments;
    const d = members.find((m) => m.name === name);
    changes.push({ what: `${group} / ${name} weight`, from: fmt.num(d.weight), to: fmt.num(weight) });
    const rest = members.filter((m) => m.name !== name && m.weight > 0 && m.breaker?.state !== "open");
    if (weight === 0 && rest.length === 0) {
      notes.push({ warn: true, text: `${group} would have no routable deployment left: its requests fail (or go to its fallbacks).` });
    } else if (weight === 0) {
      notes.push(`${group} traffic goes to ${rest.map((m) => `${m.name} (weight ${fmt.num(m.weight)})`).join(", ")}.`);
    }
  }
  return { changes, notes };
}

export function resetBreaker(view, d) {
  confirmChange({
    title: `Reset the breaker of ${d.name}`,
    intro: "The breaker forgets its failures and closes now; traffic goes back at its weight.",
    changes: [{ what: `${d.name} breaker`, from: d.breaker?.state ?? "—", to: "closed" }],
    notes: ["Audited in DECISIONS.log as circuit_breaker_reset under your operator name."],
    label: "Reset breaker",
    run: () => call("POST", "/admin/circuit-breaker/reset", { deployment: d.name }),
    done: finished(`Breaker of ${d.name} reset.`),
  });
}

export function drain(view, d) {
  const { changes, notes } = weightChanges(view, d.name, 0);
  const leavesEmpty = notes.some((n) => n.warn);
  confirmChange({
    title: `Drain ${d.name}`,
    intro: "No new requests go to it; requests in flight finish.",
    changes: [...changes, { what: `${d.name} drained`, from: "no", to: "yes" }],
    notes: leavesEmpty ? [...notes, { warn: true, text: "Sent with force: true, as the runbook allows for a full drain." }] : notes,
    label: "Drain",
    run: () => call("POST", "/admin/drain", { target: d.name, force: leavesEmpty }),
    done: finished((r) => `Drained ${(r?.drained ?? [d.name]).join(", ")}.`),
  });
}

export function undrain(view, d) {
  confirmChange({
    title: `Undrain ${d.name}`,
    intro: "It takes traffic again at the weight it had before the drain.",
    changes: [
      { what: `${d.name} drained`, from: "yes", to: "no" },
      { what: `${d.name} weight`, from: fmt.num(d.weight), to: `as before the drain (file: ${fmt.num(d.file_weight)})` },
    ],
    label: "Undrain",
    run: () => call("POST", "/admin/undrain", { target: d.name }),
    done: finished(`Undrained ${d.name}.`),
  });
}

export async function probe(d) {
  ctx.toast(`Probing ${d.name}…`);
  try {
    const r = await call("POST", "/admin/probe", { deployment: d.name });
    const lines = (r?.results ?? []).map(
      (p) => `${p.deployment}: ${p.status}${p.ttfb_ms != null ? `, first byte ${fmt.ms(p.ttfb_ms)}` : ""}${p.error ? ` (${p.error})` : ""}`,
    );
    ctx.toast(lines.join("; ") || "Probe sent.");
  } catch (err) {
    ctx.toast(`Probe failed: ${err.message}`);
  }
}

export function setWeights(view, group) {
  const members = view.groups[group].deployments ?? [];
  formStep({
    title: `Weights of ${group}`,
    intro: "Runtime overrides on top of the file's weights; they last until cleared or until the file's weights for this group change.",
    fields: members.map((m) => ({
      id: `w-${m.name}`,
      label: `${m.name} (file ${fmt.num(m.file_weight)})`,
      type: "number",
      min: 0,
      step: "any",
      inputmode: "decimal",
      value: String(m.weight),
    })),
    review: (values) => {
      const update = {};
      const changes = [];
      for (const m of members) {
        const raw = values[`w-${m.name}`];
        const weight = Number(raw);
        if (raw === "" || !Number.isFinite(weight) || weight < 0) throw new Error(`${m.name}: weight must be a number ≥ 0.`);
        if (weight !== m.weight) {
          update[m.name] = weight;
          changes.push({ what: `${group} / ${m.name} weight`, from: fmt.num(m.weight), to: fmt.num(weight) });
        }
      }
      if (changes.length === 0) throw new Error("Nothing to change.");
      const after = members.map((m) => (m.name in update ? update[m.name] : m.weight));
      const empty = !after.some((w) => w > 0);
      const total = after.reduce((a, b) => a + b, 0);
      const notes = empty
        ? [{ warn: true, text: `${group} would refuse all traffic (no positive weight); sent with force: true.` }]
        : [`Shares after: ${members.map((m, i) => `${m.name} ${((after[i] / total) * 100).toFixed(0)} %`).join(", ")}.`];
      return {
        title: `Set weights of ${group}`,
        changes,
        notes,
        label: "Set weights",
        run: () => call("PUT", "/admin/weights", { weights: { [group]: update }, force: empty }),
        done: finished(`Weights of ${group} set.`),
      };
    },
  });
}

export function clearOverrides(view) {
  const changes = [];
  for (const [group, g] of Object.entries(view.groups ?? {})) {
    for (const m of g.deployments ?? []) {
      if (m.overridden) changes.push({ what: `${group} / ${m.name} weight`, from: fmt.num(m.weight), to: `${fmt.num(m.file_weight)} (file)` });
    }
  }
  confirmChange({
    title: "Clear every weight override",
    intro: "Every model group goes back to the weights in the config file.",
    changes,
    label: "Clear overrides",
    run: () => call("DELETE", "/admin/weights"),
    done: finished("Weight overrides cleared."),
  });
}

export function startRollout(view) {
  const deployments = deploymentsOf(view);
  formStep({
    title: "Start a gradual restore or a canary",
    fields: [
      { id: "kind", label: "Kind", type: "select", value: "restore", options: [{ value: "restore", label: "Gradual restore" }, { value: "canary", label: "Canary" }] },
      { id: "deployment", label: "Deployment", type: "select", value: "0", options: deployments.map((d, i) => ({ value: String(i), label: `${d.name} (${d.group})` })) },
      { id: "steps", label: "Steps, % of traffic (restore)", value: "10,25,50,100" },
      { id: "hold_s", label: "Hold per step, s", type: "number", value: "60", min: 0 },
      { id: "max_error_rate", label: "Guard rail: max error rate (0–1)", type: "number", value: "0.05", step: "any", min: 0 },
      { id: "max_p95_ms", label: "Guard rail: max p95, ms", type: "number", value: "5000", min: 0 },
      { id: "traffic_pct", label: "Canary traffic, %", type: "number", value: "5", min: 0 },
      { id: "duration_s", label: "Canary duration, s", type: "number", value: "300", min: 0 },
    ],
    review: (v) => {
      const picked = deployments[Number(v.deployment)];
      if (!picked) throw new Error("Pick a deployment.");
      const { group, name: deployment } = picked;
      const body = { kind: v.kind, deployment, group, max_error_rate: Number(v.max_error_rate), max_p95_ms: Number(v.max_p95_ms) };
      if (v.kind === "restore") {
        body.steps = v.steps.split(",").map((x) => Number(x.trim()));
        body.hold_s = Number(v.hold_s);
        if (body.steps.some((x) => !Number.isFinite(x) || x <= 0 || x > 100)) throw new Error("Steps are percentages between 1 and 100.");
      } else {
        body.traffic_pct = Number(v.traffic_pct);
        body.duration_s = Number(v.duration_s);
      }
      for (const [k, x] of Object.entries(body)) {
        if (typeof x === "number" && !Number.isFinite(x)) throw new Error(`${k} must be a number.`);
      }
      const changes = Object.entries(body).map(([k, x]) => ({ what: k, from: "", to: Array.isArray(x) ? x.join(" → ") : x }));
      return {
        title: `Start a ${v.kind} of ${deployment}`,
        intro: v.kind === "restore"
          ? `${deployment}'s share of ${group} rises step by step; a broken guard rail rolls it back.`
          : `${deployment} gets ${body.traffic_pct} % of ${group} for ${body.duration_s} s, then a verdict.`,
        changes,
        label: "Start",
        run: () => call("POST", "/admin/rollouts", body),
        done: finished(`${v.kind} of ${deployment} started.`),
      };
    },
  });
}

export function abortRollout(r) {
  confirmChange({
    title: `Abort the ${r.kind} of ${r.deployment}`,
    changes: [{ what: `${r.kind} ${r.id}`, from: `${r.state}, ${fmt.share(r.share_pct / 100)}`, to: "aborted" }],
    label: "Abort",
    run: () => call("DELETE", "/admin/rollouts", { id: r.id }),
    done: finished(`${r.kind} of ${r.deployment} aborted.`),
  });
}

export function openIncident(view) {
  const suggested = view.class && view.class !== "OK" ? view.class : "P2";
  formStep({
    title: "Open an incident",
    fields: [
      { id: "class", label: "Class", type: "select", value: suggested, options: ["P0", "P1", "P2"].map((c) => ({ value: c })) },
      { id: "summary", label: "Summary", type: "textarea", value: (view.reasons ?? []).join("; ") },
    ],
    review: (v) => ({
      title: "Open an incident",
      changes: [
        { what: "incident", from: "none open", to: `${v.class} open` },
        { what: "summary", from: "", to: v.summary || "—" },
      ],
      label: "Open incident",
      run: () => call("POST", "/admin/incidents/open", { class: v.class, summary: v.summary }),
      done: finished("Incident opened."),
    }),
  });
}

export function noteIncident(incident) {
  formStep({
    title: `Add to the timeline of ${incident.id}`,
    fields: [{ id: "text", label: "Note", type: "textarea" }],
    review: (v) => {
      if (!v.text) throw new Error("Write the note first.");
      return {
        title: "Add a timeline note",
        changes: [{ what: `${incident.id} timeline`, from: `${(incident.timeline ?? []).length} entries`, to: `+ “${v.text}”` }],
        label: "Add note",
        run: () => call("POST", "/admin/incidents/note", { text: v.text }),
        done: finished("Note added."),
      };
    },
  });
}

export function resolveIncident(incident) {
  formStep({
    title: `Resolve ${incident.id}`,
    fields: [
      { id: "cause", label: "Cause", type: "textarea" },
      { id: "impact", label: "Impact", type: "textarea" },
      { id: "prevention", label: "Prevention (optional)", type: "textarea" },
    ],
    review: (v) => {
      if (!v.cause || !v.impact) throw new Error("Cause and impact are required.");
      const body = { cause: v.cause, impact: v.impact };
      if (v.prevention) body.prevention = v.prevention;
      return {
        title: `Resolve ${incident.id}`,
        changes: [
          { what: `incident ${incident.id}`, from: `${incident.class} open`, to: "resolved" },
          { what: "cause", from: "", to: v.cause },
          { what: "impact", from: "", to: v.impact },
        ],
        label: "Resolve",
        run: () => call("POST", "/admin/incidents/resolve", body),
        done: finished(`Incident ${incident.id} resolved.`),
      };
    },
  });
}
