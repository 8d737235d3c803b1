// The console's lifecycle: sign in once per tab, find which admin endpoints this router has,
// then poll. A poll makes at most two requests and the next one waits a second per request
// made (two at the least), so an open page costs the router at most one request a second;
// a hidden tab does not poll at all.

import { ApiError, call, probeEndpoints, token } from "./api.js";
import { configureActions } from "./actions.js";
import { fleetMembers, fromLegacy, fromStatus } from "./adapter.js";
import { installDialog } from "./dialogs.js";
import { renderAll, tickCountdowns } from "./render.js";

const $ = (id) => document.getElementById(id);
const MIN_INTERVAL_MS = 2000;
const PER_REQUEST_MS = 1000;
const REPROBE_MS = 5 * 60 * 1000;

const state = {
  caps: null,
  probedAt: 0,
  useStatus: true,
  extras: {},
  extraTurn: 0,
  timer: null,
  running: false,
  lastOk: 0,
};

// Sections a router without them in /admin/status may still serve on their own endpoints.
const EXTRAS = [
  { key: "incident", cap: "incidents", path: "/admin/incidents", pick: (r) => r?.open ?? null },
  { key: "rollouts", cap: "rollouts", path: "/admin/rollouts", pick: (r) => r },
  { key: "fleet", cap: "fleet", path: "/admin/fleet", pick: (r) => (fleetMembers(r).length ? r : null) },
];

function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("shown"), 6000);
}

function setConn(text, kind) {
  const el = $("conn");
  el.textContent = text;
  el.dataset.kind = kind;
}

function showLogin(message) {
  stop();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.textContent = message ?? "";
  err.hidden = !message;
  setConn("Not signed in", "off");
  $("class-badge").dataset.class = "none";
  $("class-badge").textContent = "—";
  $("token").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
}

async function loadView() {
  let requests = 0;
  let view;
  if (state.useStatus && state.caps.status) {
    requests += 1;
    try {
      view = await fromStatus();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      state.useStatus = false;
    }
  }
  if (!view) {
    requests += 2;
    view = await fromLegacy();
  }
  // One missing section per poll, in turn, from its own endpoint.
  const missing = EXTRAS.filter((x) => state.caps[x.cap] && !Object.hasOwn(view, x.key));
  if (missing.length && requests < 2) {
    const extra = missing[state.extraTurn++ % missing.length];
    requests += 1;
    try {
      state.extras[extra.key] = extra.pick(await call("GET", extra.path));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
    }
  }
  for (const x of missing) {
    if (Object.hasOwn(state.extras, x.key)) view[x.key] = state.extras[x.key];
  }
  return { view, requests };
}

async function poll() {
  state.timer = null;
  if (!state.running) return;
  let requests = 1;
  try {
    if (!state.caps || performance.now() - state.probedAt > REPROBE_MS) {
      state.caps = await probeEndpoints();
      state.probedAt = performance.now();
      state.useStatus = true;
    }
    const loaded = await loadView();
    requests = loaded.requests;
    const fetchedAt = performance.now();
    state.view = loaded.view;
    state.lastOk = Date.now();
    renderAll(loaded.view, state.caps, fetchedAt);
    showApp();
    $("stale").hidden = true;
    setConn(`Live · updated ${new Date().toLocaleTimeString()}`, "live");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      token.clear();
      showLogin(err.status === 403 ? err.message : "The router refused this token.");
      return;
    }
    setConn("Connection lost, retrying", "lost");
    const stale = $("stale");
    stale.textContent = `Not updated since ${state.lastOk ? new Date(state.lastOk).toLocaleTimeString() : "sign-in"}: ${err.message}`;
    stale.hidden = !state.lastOk;
  }
  schedule(Math.max(MIN_INTERVAL_MS, requests * PER_REQUEST_MS));
}

function schedule(delay) {
  if (!state.running || document.hidden) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, delay);
}

function start() {
  state.running = true;
  state.caps = null;
  state.extras = {};
  setConn("Connecting…", "off");
  schedule(0);
}

function stop() {
  state.running = false;
  clearTimeout(state.timer);
  state.timer = null;
}

function refreshNow() {
  if (!state.running) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, 0);
}

function init() {
  installDialog();
  configureActions({ refresh: refreshNow, toast });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("token");
    const value = input.value.trim();
    input.value = "";
    if (!value) {
      showLogin("Enter a token.");
      return;
    }
    token.set(value);
    $("login-error").hidden = true;
    start();
  });
  $("logout").addEventListener("click", () => {
    token.clear();
    showLogin(null);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(state.timer);
    else if (state.running) refreshNow();
  });
  setInterval(tickCountdowns, 1000);
  if (token.get()) start();
  else showLogin(null);
}

init();
