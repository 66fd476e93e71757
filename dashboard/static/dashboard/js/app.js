// The page: login, the navigation between areas, and the socket feeding the store.

import { html, render, useEffect, useState } from "../vendor/htm/standalone.module.js";
import { api, freshToken, login, logout, onSession, session } from "./api.js";
import { BotPage } from "./bot.js";
import { applyMetrics, applyStatus, FleetPage, loadBots } from "./fleet.js";
import { auditFromApi, auditFromEvent, OverviewPage, streamsFromApi, streamsFromEvent } from "./overview.js";
import { applyJobProgress, loadJobs, ResearchPage } from "./research.js";
import { Socket } from "./socket.js";
import { ErrorText, pushLimited, resetState, update, useStore } from "./ui.js";

let socket = null;

function startSocket() {
  socket = new Socket({ token: freshToken, onState: (state, detail) => update({ socket: { state, detail } }) });
  let opened = 0;
  socket.on("welcome", () => {
    // After a reconnect, what happened meanwhile was missed: read the state again.
    if (opened++ > 0) loadAll();
  });
  socket.on("bot_status_update", applyStatus);
  socket.on("bot_metrics", applyMetrics);
  socket.on("trade_notification", (data) =>
    update((s) => ({ trades: pushLimited(s.trades, data), tradesVersion: s.tradesVersion + 1 })));
  socket.on("job_progress", applyJobProgress);
  socket.on("system_metrics", (data, message) => update({ system: { ...data, at: message.at } }));
  socket.on("stream_health", (data, message) => update({ streams: streamsFromEvent(data, message.at) }));
  socket.on("audit_event", (data) => update((s) => ({ audit: pushLimited(s.audit, auditFromEvent(data)) })));
  socket.start();
}

function loadAll() {
  const quiet = (promise) => promise.catch((error) => console.warn(error.message));
  quiet(loadBots());
  quiet(loadJobs());
  quiet(api("health/streams").then((report) => update({ streams: streamsFromApi(report) })));
  quiet(api("audit/", { query: { per_page: 50 } }).then((page) => update({ audit: page.logs.map(auditFromApi) })));
  quiet(api("monitoring/monitoring/status").then((status) =>
    update({ system: systemFromStatus(status) })));
}

// The status endpoint nests its figures; the socket's system_metrics is flat (percentages).
function systemFromStatus(status) {
  const m = status.system_metrics || {};
  return { cpu_usage: m.cpu && m.cpu.usage_percent, memory_usage: m.memory && m.memory.usage_percent,
    disk_usage: m.disk && m.disk.usage_percent, at: status.timestamp };
}

function begin(user) {
  resetState(user);
  loadAll();
  startSocket();
}

function end() {
  if (socket) socket.stop();
  socket = null;
  resetState(null);
}

function Login() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      begin(await login(username, password));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`
    <main class="login">
      <form class="card login-card" onSubmit=${submit}>
        <h1>Multibot</h1>
        <label class="field"><span>Username</span><input name="username" autocomplete="username" value=${username}
          onInput=${(e) => setUsername(e.target.value)} required /></label>
        <label class="field"><span>Password</span><input name="password" type="password" autocomplete="current-password"
          value=${password} onInput=${(e) => setPassword(e.target.value)} required /></label>
        <button type="submit" class="primary" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
        <${ErrorText} error=${error} />
      </form>
    </main>`;
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const bot = hash.match(/^bots\/(\d+)$/);
  if (bot) return { page: "bot", id: Number(bot[1]) };
  if (hash === "analytics") return { page: "analytics" };
  const research = hash.match(/^research(?:\/(\d+))?$/);
  if (research) return { page: "research", id: research[1] ? Number(research[1]) : null };
  return { page: "fleet" };
}

function useRoute() {
  const [current, setCurrent] = useState(route());
  useEffect(() => {
    const onHash = () => setCurrent(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return current;
}

function Shell() {
  const user = useStore((s) => s.user);
  const live = useStore((s) => s.socket);
  const current = useRoute();
  const [error, setError] = useState(null);
  const nav = [["fleet", "#/", "Fleet"], ["analytics", "#/analytics", "Analytics"], ["research", "#/research", "Research"]];
  return html`
    <header class="top">
      <a class="brand" href="#/">Multibot</a>
      <nav>${nav.map(([page, href, label]) => html`<a href=${href} class=${current.page === page ? "on" : ""}>${label}</a>`)}</nav>
      <span class="spacer"></span>
      <span class=${`live live-${live.state}`} title=${live.detail} data-socket=${live.state}>
        ${live.state === "open" ? "live" : live.state}</span>
      <span class="who">${user.username}${user.is_superuser ? " (admin)" : ""}</span>
      <button type="button" class="small secondary" onClick=${() => logout().catch(setError)}>Log out</button>
    </header>
    <main class="content">
      <${ErrorText} error=${error} />
      ${current.page === "bot" ? html`<${BotPage} id=${current.id} />`
        : current.page === "analytics" ? html`<${OverviewPage} />`
        : current.page === "research" ? html`<${ResearchPage} id=${current.id} />`
        : html`<${FleetPage} />`}
    </main>`;
}

function App() {
  const user = useStore((s) => s.user);
  return user ? html`<${Shell} />` : html`<${Login} />`;
}

// Logged out anywhere (logout, a refresh token that stopped working): back to the login form.
onSession((value) => {
  if (!value) end();
});

const existing = session();
if (existing) begin(existing.user);
render(html`<${App} />`, document.getElementById("app"));
