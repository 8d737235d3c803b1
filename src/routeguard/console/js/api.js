// The admin API, as the CLI calls it: bearer token in the Authorization header, JSON in and out.
// The token lives in sessionStorage (this tab only, gone when it closes) and is never put in a
// URL, so it cannot reach an access log, a Referer header or the browser history.

const TOKEN_KEY = "routeguard.console.token";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** One admin call; resolves to the parsed JSON body, or rejects with an ApiError. */
export async function call(method, path, body) {
  const headers = { accept: "application/json" };
  const current = token.get();
  if (current) headers.authorization = `Bearer ${current}`;
  const init = {
    method,
    headers,
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
    referrerPolicy: "no-referrer",
  };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `router unreachable (${err.message})`, null);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}

/**
 * Which admin endpoints this router has. A GET answers 404 only when the path is unknown:
 * a POST-only path answers 405 before authentication, a GET path 200 (or 401), so the probe
 * has no side effects. Buttons whose endpoint is missing are hidden.
 */
export const ENDPOINTS = {
  status: "/admin/status",
  deployments: "/admin/deployments",
  weights: "/admin/weights",
  reset: "/admin/circuit-breaker/reset",
  drain: "/admin/drain",
  undrain: "/admin/undrain",
  probe: "/admin/probe",
  rollouts: "/admin/rollouts",
  incidents: "/admin/incidents",
  incidentOpen: "/admin/incidents/open",
  incidentNote: "/admin/incidents/note",
  incidentResolve: "/admin/incidents/resolve",
  fleet: "/admin/fleet",
};

export async function probeEndpoints() {
  const entries = await Promise.all(
    Object.entries(ENDPOINTS).map(async ([name, path]) => {
      const headers = { accept: "application/json" };
      const current = token.get();
      if (current) headers.authorization = `Bearer ${current}`;
      try {
        const response = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
        await response.body?.cancel();
        return [name, response.status !== 404];
      } catch {
        return [name, false];
      }
    }),
  );
  return Object.fromEntries(entries);
}
