// Shared pieces: the page's one store (socket events and API answers land here), formatting, small widgets.

import { html, useEffect, useState } from "../vendor/htm/standalone.module.js";

export { html };

// -- store ------------------------------------------------------------------------------------------
const FEED_LIMIT = 100;

const initial = () => ({
  user: null,
  socket: { state: "closed", detail: "" },
  bots: {}, // id -> the API's bot, merged with bot_status_update
  metrics: {}, // id -> bot_metrics entry
  trades: [], // trade_notification, newest first
  jobs: {}, // job id -> the API's job, merged with job_progress
  system: null, // system_metrics
  streams: null, // stream_health / GET /health/streams
  audit: [], // audit rows, newest first
  tradesVersion: 0, // bumped on each trade notification: views that list trades reload
});

let state = initial();
const subscribers = new Set();

export function getState() {
  return state;
}

export function update(change) {
  state = { ...state, ...(typeof change === "function" ? change(state) : change) };
  for (const subscriber of subscribers) subscriber(state);
}

export function resetState(user) {
  state = { ...initial(), user };
  for (const subscriber of subscribers) subscriber(state);
}

export function useStore(select) {
  const [value, setValue] = useState(() => select(state));
  useEffect(() => {
    const subscriber = (next) => setValue(() => select(next));
    subscribers.add(subscriber);
    subscriber(state);
    return () => subscribers.delete(subscriber);
  }, []);
  return value;
}

export function pushLimited(list, item, limit = FEED_LIMIT) {
  return [item, ...list].slice(0, limit);
}

// -- formatting ---------------------------------------------------------------------------------------
export function num(value, digits = 2) {
  if (value === null || value === undefined || value === "" || Number.isNaN(Number(value))) return "–";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// Amounts of a coin (BTC, ETH) are small: show as many decimals as they need, up to 8.
export function digitsFor(value) {
  const abs = Math.abs(Number(value) || 0);
  if (abs === 0 || abs >= 1) return 2;
  return Math.min(8, Math.max(2, 1 - Math.floor(Math.log10(abs)) + 2));
}

export function signed(value, digits = null) {
  if (value === null || value === undefined) return "–";
  if (digits === null) digits = digitsFor(value);
  const text = num(value, digits);
  return Number(value) > 0 ? `+${text}` : text;
}

export function pct(value, digits = 2) {
  return value === null || value === undefined ? "–" : `${num(value, digits)}%`;
}

// freqtrade reports -100 for a ratio with nothing to divide by (one trade, no loss, no drawdown).
export function ratio(value) {
  return Number(value) === -100
    ? html`<span class="muted" title="freqtrade reports -100: not a meaningful ratio yet">n/a</span>` : num(value);
}

export function tone(value) {
  if (value === null || value === undefined || Number(value) === 0) return "";
  return Number(value) > 0 ? "gain" : "loss";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "–";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function time(value) {
  if (!value) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

export function dateTime(value) {
  if (!value) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 10)} ${date.toLocaleTimeString("en-GB", { hour12: false })}`;
}

export function group(entry) {
  return `${entry.stake_currency} · ${entry.dry_run ? "dry run" : "live"}`;
}

// A clock that ticks every second, for uptimes.
export function useNow(intervalMs = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

// Loads `load()` now, again on each change of `deps`, and every `everyMs` when given.
export function useLoad(load, deps = [], everyMs = 0) {
  const [result, setResult] = useState({ data: null, error: null, loading: true });
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (data) => live && setResult({ data, error: null, loading: false }),
        (error) => live && setResult((prev) => ({ data: prev.data, error, loading: false })),
      );
    run();
    const timer = everyMs ? setInterval(run, everyMs) : null;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, deps);
  return result;
}

// -- widgets -----------------------------------------------------------------------------------------
export function StatusBadge({ status }) {
  return html`<span class="badge status-${status}" data-status=${status}>${status}</span>`;
}

export function ErrorText({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function FieldError({ error, field }) {
  // A list field's errors come per item too (loc ["body", "pair_whitelist", "0"]).
  const messages = error && error.fields
    ? Object.entries(error.fields).filter(([key]) => key === field || key.startsWith(`${field}.`)).flatMap(([, m]) => m)
    : [];
  if (!messages.length) return null;
  return html`<span class="field-error" data-field-error=${field} role="alert">${messages.join(" ")}</span>`;
}

// A modal that asks before an action; `children` says exactly what will happen.
// cancelLabel null: a dialog that only reports (one button).
export function ConfirmDialog({ title, children, confirmLabel = "Confirm", cancelLabel = "Cancel", danger = false, busy = false,
  onConfirm, onCancel }) {
  useEffect(() => {
    const onKey = (event) => event.key === "Escape" && onCancel();
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [onCancel]);
  return html`
    <div class="overlay" onClick=${(event) => event.target === event.currentTarget && onCancel()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-label=${title}>
        <h2>${title}</h2>
        <div class="dialog-body">${children}</div>
        <div class="dialog-actions">
          ${cancelLabel ? html`<button type="button" class="secondary" onClick=${onCancel}>${cancelLabel}</button>` : null}
          <button type="button" class=${danger ? "danger" : "primary"} disabled=${busy} onClick=${onConfirm}
            data-confirm>${busy ? "Working…" : confirmLabel}</button>
        </div>
      </div>
    </div>`;
}

export function Card({ title, children, actions = null, id = null, className = "" }) {
  return html`
    <section class=${`card ${className}`} id=${id}>
      <header class="card-head"><h2>${title}</h2>${actions}</header>
      ${children}
    </section>`;
}

export function Empty({ children }) {
  return html`<p class="empty">${children}</p>`;
}
