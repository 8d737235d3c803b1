// The page's sections, each drawn from the view (the /admin/status shape). A section whose key
// is absent from the view is hidden, so the page works on routers with fewer endpoints.

import * as act from "./actions.js";
import { fleetMembers, rolloutList } from "./adapter.js";
import { button, fmt, h, replace, show } from "./dom.js";
import { sparkline } from "./spark.js";

const $ = (id) => document.getElementById(id);

// The JSON each section was last drawn from: a poll that brings nothing new leaves that
// section's DOM alone, so hover, text selection and screen readers are not disturbed every poll.
const drawn = new Map();

function changed(section, ...inputs) {
  const key = JSON.stringify(inputs);
  if (drawn.get(section) === key) return false;
  drawn.set(section, key);
  return true;
}

export function renderAll(view, caps, fetchedAt) {
  renderHeader(view);
  show($("legacy"), view.legacy);
  renderSummary(view);
  if (changed("incident", view.incident, Object.hasOwn(view, "incident"), view.class, view.reasons, caps)) renderIncident(view, caps);
  if (changed("groups", view.groups, view.legacy, caps)) renderGroups(view, caps, fetchedAt);
  if (changed("providers", view.providers)) renderProviders(view);
  if (changed("rollouts", view.rollouts, Object.hasOwn(view, "rollouts"), caps)) renderRollouts(view, caps);
  if (changed("fleet", view.fleet)) renderFleet(view);
}

function renderHeader(view) {
  const badge = $("class-badge");
  const cls = view.class ?? null;
  badge.dataset.class = cls ?? "none";
  badge.textContent = cls ?? "class n/a";
  badge.title = cls ? (view.reasons ?? []).join("; ") || "no active alert" : "this router does not compute an incident class";
}

function renderSummary(view) {
  const section = $("summary");
  if (view.legacy || (!view.class && !view.windows && !view.replica)) {
    show(section, false);
    return;
  }
  show(section, true);
  const reasons = view.reasons ?? [];
  const replica = view.replica;
  const windows = view.windows ?? {};
  replace(
    $("summary-body"),
    h(
      "div",
      { class: "summary-head" },
      h("span", { class: "badge big", dataset: { class: view.class ?? "none" } }, view.class ?? "—"),
      h("span", {}, view.class_since ? `since ${fmt.time(view.class_since)} (${fmt.since(view.class_since)})` : ""),
    ),
    reasons.length
      ? h("ul", { class: "reasons" }, reasons.map((r) => h("li", {}, r)))
      : h("p", { class: "muted" }, "No alert condition holds."),
    Object.keys(windows).length
      ? h(
          "table",
          { class: "compact" },
          h("caption", { class: "sr-only" }, "Client traffic by window"),
          h("thead", {}, h("tr", {}, ["Window", "Requests", "Errors", "Error rate", "p50", "p95"].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            Object.entries(windows).map(([name, w]) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, name),
                cell("Requests", fmt.num(w.requests)),
                cell("Errors", fmt.num(w.errors)),
                cell("Error rate", fmt.pct(w.error_rate)),
                cell("p50", fmt.ms(w.p50_ms)),
                cell("p95", fmt.ms(w.p95_ms)),
              ),
            ),
          ),
        )
      : null,
    replica
      ? h(
          "p",
          { class: "muted replica" },
          `Replica ${replica.id ?? "?"} on ${replica.host ?? "?"} (pid ${replica.pid ?? "?"}) · RouteGuard ${replica.version ?? "?"} · config ${replica.config_version ?? "?"} · up ${fmt.age(replica.uptime_s)}`,
          view.in_flight != null ? ` · ${view.in_flight} in flight` : "",
        )
      : null,
  );
}

function cell(label, value, cls) {
  return h("td", { "data-label": label, class: cls }, value);
}

function renderIncident(view, caps) {
  const section = $("incident");
  if (!Object.hasOwn(view, "incident")) {
    show(section, false);
    return;
  }
  show(section, true);
  const incident = view.incident;
  if (!incident) {
    replace(
      $("incident-body"),
      h("p", { class: "muted" }, "No open incident."),
      caps.incidentOpen ? h("div", { class: "actions" }, button("Open incident…", () => act.openIncident(view), { "data-key": "incident-open", class: "primary" })) : null,
    );
    return;
  }
  replace(
    $("incident-body"),
    h(
      "p",
      {},
      h("span", { class: "badge", dataset: { class: incident.class ?? "none" } }, incident.class ?? "?"),
      " ",
      h("strong", {}, incident.id ?? ""),
      ` opened ${fmt.time(incident.opened_at)} (${fmt.since(incident.opened_at)})`,
    ),
    incident.summary ? h("p", {}, incident.summary) : null,
    h(
      "ol",
      { class: "timeline" },
      (incident.timeline ?? []).map((e) => h("li", {}, h("time", { datetime: e.ts }, fmt.time(e.ts)), " ", e.event)),
    ),
    h(
      "div",
      { class: "actions" },
      caps.incidentNote ? button("Add note…", () => act.noteIncident(incident), { "data-key": "incident-note" }) : null,
      caps.incidentResolve ? button("Resolve…", () => act.resolveIncident(incident), { "data-key": "incident-resolve", class: "danger" }) : null,
    ),
  );
}

function breakerCell(d, fetchedAt) {
  const b = d.breaker ?? {};
  const state = b.state ?? "closed";
  const countdown =
    state === "open" && b.retry_in_s != null
      ? h("span", { class: "countdown", dataset: { retryIn: b.retry_in_s, fetchedAt } }, countdownText(b.retry_in_s, fetchedAt))
      : null;
  return h(
    "td",
    { "data-label": "Breaker" },
    h("span", { class: "state", dataset: { state, testid: `breaker-${d.name}` } }, state.replace("_", "-")),
    countdown ? " " : null,
    countdown,
  );
}

export function countdownText(retryIn, fetchedAt) {
  const left = Number(retryIn) - (performance.now() - Number(fetchedAt)) / 1000;
  return left > 0 ? `half-open in ${Math.ceil(left)} s` : "half-open due";
}

/** Tick the half-open countdowns between polls, without a request. */
export function tickCountdowns() {
  for (const el of document.querySelectorAll(".countdown")) {
    el.textContent = countdownText(el.dataset.retryIn, el.dataset.fetchedAt);
  }
}

function weightCell(d) {
  const tags = [];
  if (d.drained) tags.push(h("span", { class: "tag warn" }, "drained"));
  if (d.overridden) tags.push(h("span", { class: "tag", title: `file weight ${fmt.num(d.file_weight)}` }, `override · file ${fmt.num(d.file_weight)}`));
  return h("td", { "data-label": "Weight", class: "num" }, fmt.num(d.weight), tags.length ? " " : null, tags);
}

function shareCell(d) {
  if (d.share_5m == null) return h("td", { "data-label": "Share 5m", class: "num" }, "—");
  const fraction = d.share_5m > 1 ? d.share_5m / 100 : d.share_5m;
  const fill = h("span", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return h("td", { "data-label": "Share 5m", class: "num" }, h("span", { class: "bar", "aria-hidden": "true" }, fill), fmt.share(fraction));
}

function inflightCell(d) {
  const text = d.max_parallel_requests != null ? `${fmt.num(d.in_flight)} / ${d.max_parallel_requests}` : fmt.num(d.in_flight);
  return h("td", { "data-label": "In flight", class: "num" }, text);
}

function rowActions(view, d, caps) {
  const state = d.breaker?.state ?? "closed";
  const k = (what) => `${what}:${d.name}`;
  return h(
    "td",
    { "data-label": "Actions", class: "actions-cell" },
    h(
      "div",
      { class: "row-actions" },
      caps.reset && state !== "closed" ? button("Reset breaker", () => act.resetBreaker(view, d), { "data-key": k("reset"), "aria-label": `Reset the breaker of ${d.name}` }) : null,
    caps.drain && !d.drained ? button("Drain", () => act.drain(view, d), { "data-key": k("drain"), "aria-label": `Drain ${d.name}` }) : null,
    caps.undrain && d.drained ? button("Undrain", () => act.undrain(view, d), { "data-key": k("undrain"), "aria-label": `Undrain ${d.name}` }) : null,
    caps.probe ? button("Probe", () => act.probe(d), { "data-key": k("probe"), class: "quiet", "aria-label": `Probe ${d.name}` }) : null,
    ),
  );
}

function renderGroups(view, caps, fetchedAt) {
  const groups = Object.entries(view.groups ?? {});
  const anyOverride = groups.some(([, g]) => (g.deployments ?? []).some((d) => d.overridden));
  const traffic = !view.legacy; // the pre-status endpoints have no 5-minute traffic figures
  replace(
    $("groups-body"),
    groups.length ? null : h("p", { class: "muted" }, "No model groups."),
    groups.map(([name, g]) =>
      h(
        "div",
        { class: "group", dataset: { group: name } },
        h(
          "div",
          { class: "group-head" },
          h("h3", {}, name),
          g.fallbacks?.length ? h("span", { class: "muted" }, `falls back to ${g.fallbacks.join(", ")}`) : null,
          caps.weights ? button("Set weights…", () => act.setWeights(view, name), { "data-key": `weights:${name}`, "aria-label": `Set the weights of ${name}` }) : null,
        ),
        h(
          "table",
          { class: "deployments" },
          h("caption", { class: "sr-only" }, `Deployments of ${name}`),
          h(
            "thead",
            {},
            h("tr", {}, ["Deployment", "Provider", "Weight", ...(traffic ? ["Share 5m", "Req 5m", "Err 5m", "p50 / p95"] : []), "Breaker", "In flight", "Actions"].map((c) => h("th", { scope: "col" }, c))),
          ),
          h(
            "tbody",
            {},
            (g.deployments ?? []).map((d) =>
              h(
                "tr",
                { dataset: { deployment: d.name }, class: `state-${d.breaker?.state ?? "closed"}` },
                h("th", { scope: "row" }, d.name),
                cell("Provider", d.provider ?? "—"),
                weightCell(d),
                traffic ? shareCell(d) : null,
                traffic ? cell("Req 5m", fmt.num(d.requests_5m), "num") : null,
                traffic ? cell("Err 5m", fmt.pct(d.error_rate_5m), d.error_rate_5m > 0.05 ? "num bad" : "num") : null,
                traffic ? cell("p50 / p95", `${fmt.ms(d.p50_ms)} / ${fmt.ms(d.p95_ms)}`, "num") : null,
                breakerCell(d, fetchedAt),
                inflightCell(d),
                rowActions(view, d, caps),
              ),
            ),
          ),
        ),
      ),
    ),
    caps.weights && anyOverride ? h("div", { class: "actions" }, button("Clear all weight overrides…", () => act.clearOverrides(view), { "data-key": "weights-clear" })) : null,
  );
}

function renderProviders(view) {
  const providers = Object.entries(view.providers ?? {});
  show($("providers"), providers.length > 0);
  if (!providers.length) return;
  replace(
    $("providers-body"),
    providers.map(([name, p]) => {
      const series = p.series ?? [];
      const errors = series.map((x) => ({ age_s: x.age_s, value: x.requests ? x.errors / x.requests : null }));
      const p95 = series.map((x) => ({ age_s: x.age_s, value: x.requests ? x.p95_ms : null }));
      return h(
        "div",
        { class: "provider", dataset: { provider: name } },
        h("h3", {}, name),
        h(
          "p",
          { class: "muted" },
          `${fmt.num(p.requests_5m)} req · ${fmt.pct(p.error_rate_5m)} errors · p50 ${fmt.ms(p.p50_ms)} · p95 ${fmt.ms(p.p95_ms)} (5 min)`,
        ),
        h(
          "p",
          { class: "muted" },
          `${fmt.num(p.deployments)} deployments, ${fmt.num(p.breakers_open)} breakers open`,
          Object.keys(p.errors_by_reason_5m ?? {}).length
            ? ` · ${Object.entries(p.errors_by_reason_5m).map(([r, n]) => `${r} ${n}`).join(", ")}`
            : "",
        ),
        sparkRow("errors", errors, { label: `${name} error rate`, format: (v) => fmt.pct(v), ceiling: 0.05 }),
        sparkRow("p95", p95, { label: `${name} p95 latency`, format: fmt.ms }),
      );
    }),
  );
}

function sparkRow(title, points, options) {
  const latest = [...points].sort((a, b) => a.age_s - b.age_s).find((p) => p.value != null);
  return h(
    "div",
    { class: "spark-row" },
    h("span", {}, title),
    sparkline(points, options),
    h("span", { class: "spark-now", "aria-hidden": "true" }, latest ? options.format(latest.value) : "—"),
  );
}

function renderRollouts(view, caps) {
  const present = Object.hasOwn(view, "rollouts");
  show($("rollouts"), present || caps.rollouts);
  if (!present && !caps.rollouts) return;
  const list = rolloutList(view.rollouts);
  replace(
    $("rollouts-body"),
    list.length
      ? h(
          "table",
          { class: "rollouts" },
          h("thead", {}, h("tr", {}, ["Kind", "Deployment", "State", "Step", "Share", "Guard rails", "Verdict", ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            list.map((r) =>
              h(
                "tr",
                { dataset: { rollout: r.id } },
                h("th", { scope: "row" }, r.kind ?? "?"),
                cell("Deployment", `${r.deployment ?? "?"}${r.group ? ` (${r.group})` : ""}`),
                cell("State", h("span", { class: "state", dataset: { state: r.state } }, r.state ?? "?")),
                cell("Step", r.steps ? `${(r.step ?? 0) + 1} of ${r.steps.length} (${r.steps.join(" → ")} %)` : fmt.num(r.step)),
                cell("Share", r.share_pct != null ? `${fmt.num(r.share_pct)} %` : "—", "num"),
                cell("Guard rails", Object.entries(r.guard_rails ?? {}).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") || "—"),
                cell("Verdict", [r.verdict ?? "—", ...(r.reasons ?? [])].join(" · ")),
                h(
                  "td",
                  { "data-label": "Actions", class: "actions-cell" },
                  caps.rollouts && r.state === "running" ? button("Abort", () => act.abortRollout(r), { "data-key": `abort:${r.id}`, class: "danger", "aria-label": `Abort the ${r.kind} of ${r.deployment}` }) : null,
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No rollouts."),
    caps.rollouts ? h("div", { class: "actions" }, button("Start restore or canary…", () => act.startRollout(view), { "data-key": "rollout-start", class: "primary" })) : null,
  );
}

function renderFleet(view) {
  const present = Object.hasOwn(view, "fleet") && view.fleet;
  show($("fleet"), Boolean(present));
  if (!present) return;
  const members = fleetMembers(view.fleet);
  const redis = view.fleet.redis;
  replace(
    $("fleet-body"),
    h(
      "table",
      { class: "fleet" },
      h("thead", {}, h("tr", {}, ["Replica", "Host", "Version", "Config", "Heartbeat", "In flight"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        members.map((m) =>
          h(
            "tr",
            { dataset: { replica: m.id } },
            h("th", { scope: "row" }, m.id ?? "?"),
            cell("Host", `${m.host ?? "?"} (pid ${m.pid ?? "?"})`),
            cell("Version", m.version ?? "—"),
            cell("Config", m.config_mismatch ? `${m.config_version} (differs)` : m.config_version ?? "—", m.config_mismatch ? "bad" : ""),
            cell("Heartbeat", fmt.age(m.heartbeat_age_s), m.heartbeat_age_s > 15 ? "num bad" : "num"),
            cell("In flight", fmt.num(m.in_flight), "num"),
          ),
        ),
      ),
    ),
    redis && typeof redis === "object"
      ? h("p", { class: "muted" }, `Redis: ${Object.entries(redis).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ")}`)
      : null,
  );
}
