// The REST API: JWT kept in sessionStorage (gone with the tab), one refresh at a time, one error shape.

const BASE = "/api/v1";
const KEY = "multibot.session";
const listeners = new Set();

export class ApiError extends Error {
  // detail: the API's {"detail": "..."} or its 422 list [{type, loc, msg, input}].
  constructor(status, body) {
    const detail = body && body.detail !== undefined ? body.detail : body;
    super(ApiError.describe(status, detail));
    this.status = status;
    this.detail = detail;
    this.fields = {};
    if (Array.isArray(detail)) {
      for (const item of detail) {
        // loc is ["body", field, ...] or ["query", field]; a rule across fields has loc ["body"].
        const field = (item.loc || []).slice(1).join(".") || "__all__";
        (this.fields[field] = this.fields[field] || []).push(item.msg);
      }
    }
  }

  static describe(status, detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => `${(item.loc || []).slice(1).join(".") || "input"}: ${item.msg}`).join("; ");
    }
    return `HTTP ${status}`;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function store(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener(value);
}

// Called with the new session (or null when logged out, e.g. a refresh token that no longer works).
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function send(path, { method = "GET", body, query, token } = {}) {
  let url = path.startsWith("/") ? path : `${BASE}/${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, value);
    }
    if ([...params].length) url += `?${params}`;
  }
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  return { response, data };
}

export async function login(username, password) {
  const { response, data } = await send("auth/login/json", { method: "POST", body: { username, password } });
  if (!response.ok) throw new ApiError(response.status, data);
  store({ access: data.access_token, refresh: data.refresh_token, user: data.user, expiresAt: expiry(data) });
  return data.user;
}

export async function logout() {
  const current = session();
  store(null);
  if (current) {
    // Blacklists the refresh token; the page forgets both tokens whatever the answer.
    await send("auth/logout", { method: "POST", body: { refresh_token: current.refresh }, token: current.access })
      .catch(() => {});
  }
}

function expiry(data) {
  return Date.now() + (data.expires_in || 3600) * 1000;
}

let refreshing = null;

// One refresh at a time: the refresh token rotates, so a second concurrent refresh would use a spent one.
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const current = session();
      if (!current) throw new ApiError(401, { detail: "Not logged in" });
      const { response, data } = await send("auth/refresh", { method: "POST", body: { refresh_token: current.refresh } });
      if (!response.ok) {
        store(null);
        throw new ApiError(response.status, data);
      }
      store({ ...current, access: data.access_token, refresh: data.refresh_token || current.refresh, expiresAt: expiry(data) });
      return data.access_token;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// A valid access token, refreshed first when it expires within a minute (the socket handshake needs one).
export async function freshToken() {
  const current = session();
  if (!current) throw new ApiError(401, { detail: "Not logged in" });
  if (current.expiresAt - Date.now() < 60_000) return refresh();
  return current.access;
}

export async function api(path, options = {}) {
  const current = session();
  if (!current) throw new ApiError(401, { detail: "Not logged in" });
  let { response, data } = await send(path, { ...options, token: current.access });
  if (response.status === 401) {
    const token = await refresh();
    ({ response, data } = await send(path, { ...options, token }));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
