// One view model for the page: the shape of GET /admin/status (ADMIN_CONTRACT.md). A router
// that predates /admin/status is read through /admin/deployments + /admin/weights and mapped
// onto the same shape, with what those cannot tell (traffic shares, windows, class) left null,
// so the renderer has one input and hides what is missing.

import { call } from "./api.js";

/** GET /admin/status as the view (it already has the shape). */
export async function fromStatus() {
  const status = await call("GET", "/admin/status");
  return { ...status, legacy: false };
}

/** The pre-status endpoints mapped onto the status shape. */
export async function fromLegacy() {
  const [deps, weights] = await Promise.all([
    call("GET", "/admin/deployments"),
    call("GET", "/admin/weights"),
  ]);
  return legacyView(deps, weights);
}

export function legacyView(deps, weights) {
  const byName = new Map((deps.deployments ?? []).map((d) => [d.deployment, d]));
  const groups = {};
  for (const [group, members] of Object.entries(weights.weights ?? {})) {
    const file = weights.file?.[group] ?? {};
    const overrides = weights.overrides?.[group] ?? {};
    groups[group] = {
      fallbacks: null,
      deployments: Object.entries(members).map(([name, weight]) => {
        const d = byName.get(name) ?? {};
        return {
          name,
          provider: d.provider ?? null,
          weight,
          file_weight: file[name] ?? null,
          overridden: Object.hasOwn(overrides, name),
          drained: null,
          share_5m: null,
          requests_5m: null,
          error_rate_5m: null,
          p50_ms: null,
          p95_ms: null,
          breaker: { state: d.breaker ?? "closed", since: null, retry_in_s: d.retry_in_s ?? null },
          in_flight: d.in_flight ?? null,
          max_parallel_requests: null,
        };
      }),
    };
  }
  return {
    class: null,
    reasons: [],
    class_since: null,
    replica: null,
    windows: null,
    providers: null,
    groups,
    in_flight: null,
    legacy: true,
  };
}

/** Rollouts from a status section or GET /admin/rollouts: a list either way. */
export function rolloutList(section) {
  if (!section) return [];
  if (Array.isArray(section)) return section;
  return Array.isArray(section.rollouts) ? section.rollouts : [];
}

/** Fleet members from a status section or GET /admin/fleet. */
export function fleetMembers(section) {
  if (!section) return [];
  if (Array.isArray(section)) return section;
  return Array.isArray(section.members) ? section.members : [];
}

/** Every deployment of the view, with its group: for selects and confirmations. */
export function deploymentsOf(view) {
  const out = [];
  for (const [group, g] of Object.entries(view?.groups ?? {})) {
    for (const d of g.deployments ?? []) out.push({ ...d, group });
  }
  return out;
}
