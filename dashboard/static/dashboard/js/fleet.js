// The fleet: the live bot table with its commands, the emergency stop, the new-bot form, trades.

import { html, useState, useEffect } from "../vendor/htm/standalone.module.js";
import { api, ApiError } from "./api.js";
import {
  Card, ConfirmDialog, Empty, ErrorText, FieldError, StatusBadge, dateTime, duration, getState, num, signed, time, tone,
  update, useLoad, useNow, useStore,
} from "./ui.js";

// A process exists in these (an unresponsive bot's too: it can be stopped, and it may recover).
const ACTIVE = ["starting", "running", "stopping", "unresponsive"];
export const TIMEFRAMES = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"];

// -- data -----------------------------------------------------------------------------------------------
export async function loadBots() {
  const list = await api("bots/");
  const bots = {};
  for (const bot of list) bots[bot.id] = { ...getState().bots[bot.id], ...bot };
  update({ bots });
  // The list has no start time; a running bot's status has it (for the uptime column).
  await Promise.all(list.filter((bot) => ACTIVE.includes(bot.status)).map(async (bot) => {
    try {
      const status = await api(`bots/${bot.id}/status`);
      mergeBot(bot.id, { started_at: status.started_at, status_detail: status.detail, restart_count: status.restart_count });
    } catch {
      /* deleted meanwhile */
    }
  }));
}

export function mergeBot(id, change) {
  update((s) => (s.bots[id] ? { bots: { ...s.bots, [id]: { ...s.bots[id], ...change } } } : {}));
}

// bot_status_update: the gateway's word on one bot.
export function applyStatus(data) {
  update((s) => ({
    // A bot that is down has no process figures; its last heartbeat's would mislead.
    metrics: ACTIVE.includes(data.status) ? s.metrics : { ...s.metrics, [data.bot_id]: undefined },
    bots: {
      ...s.bots,
      [data.bot_id]: {
        ...(s.bots[data.bot_id] || { id: data.bot_id }),
        name: data.bot_name, status: data.status, pid: data.pid, started_at: data.started_at,
        status_detail: data.status_detail, restart_count: data.restart_count, host: data.host,
        dry_run: data.dry_run, stake_currency: data.stake_currency, total_profit: data.profit, pending: null,
      },
    },
  }));
}

// bot_metrics: the gateway's heartbeat figures, per bot.
export function applyMetrics(data) {
  update((s) => {
    const metrics = { ...s.metrics };
    for (const entry of data.bots || []) metrics[entry.bot_id] = entry;
    return { metrics };
  });
}

export async function botCommand(id, command) {
  const answer = await api(`bots/${id}/${command}`, { method: "POST" });
  mergeBot(id, { pending: command });
  return answer;
}

function sortedBots(bots) {
  return Object.values(bots).sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

// -- the table ---------------------------------------------------------------------------------------------
function uptime(bot, now) {
  if (!["running", "unresponsive"].includes(bot.status) || !bot.started_at) return "–";
  return duration((now - new Date(bot.started_at).getTime()) / 1000);
}

function BotRow({ bot, metrics, selected, onSelect, onCommand, now }) {
  const profit = metrics && metrics.profit !== undefined ? metrics.profit : bot.total_profit;
  const active = ACTIVE.includes(bot.status);
  return html`
    <tr data-bot-id=${bot.id} data-bot-name=${bot.name} class=${selected ? "selected" : ""}>
      <td class="select"><input type="checkbox" aria-label=${`select ${bot.name}`} checked=${selected}
        onChange=${(event) => onSelect(bot.id, event.target.checked)} /></td>
      <td data-label="Name" class="name"><a href=${`#/bots/${bot.id}`}>${bot.name}</a>
        ${bot.dry_run === false ? html`<span class="badge live">live</span>` : null}
        ${bot.status_detail && ["error", "unresponsive"].includes(bot.status) ? html`<div class="detail">${bot.status_detail}</div>` : null}</td>
      <td data-label="Status" class="status"><${StatusBadge} status=${bot.status} />
        ${bot.pending ? html`<span class="pending">${bot.pending}…</span>` : null}</td>
      <td data-label="PID" class="pid">${bot.pid || "–"}</td>
      <td data-label="Uptime">${uptime(bot, now)}</td>
      <td data-label="Profit" class=${`num ${tone(profit)}`}>${signed(profit)} ${bot.stake_currency || ""}</td>
      <td data-label="Open trades" class="num">${metrics ? metrics.open_trades : "–"}</td>
      <td data-label="CPU" class="num">${metrics && metrics.cpu_percent !== undefined ? `${num(metrics.cpu_percent, 1)}%` : "–"}</td>
      <td data-label="Memory" class="num">${metrics && metrics.memory_mb !== undefined ? `${num(metrics.memory_mb, 0)} MB` : "–"}</td>
      <td class="actions">
        <button type="button" class="small" disabled=${active} onClick=${() => onCommand([bot], "start")}>Start</button>
        <button type="button" class="small" disabled=${!active} onClick=${() => onCommand([bot], "stop")}>Stop</button>
        <button type="button" class="small" onClick=${() => onCommand([bot], "restart")}>Restart</button>
      </td>
    </tr>`;
}

const VERBS = { start: "Start", stop: "Stop", restart: "Restart" };
const EXPLAIN = {
  start: "Each bot's freqtrade process is started with its configuration and strategy.",
  stop: "Each bot stops (SIGTERM, then SIGKILL after the grace period); its open trades stay open in its own database.",
  restart: "Each bot is stopped and started again; its open trades stay open.",
};

// A command asked for: per-bot (bots given) or the whole fleet through /bots/<command>-all.
function CommandDialog({ ask, onDone }) {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const { command, bots, all } = ask;
  const run = async () => {
    setBusy(true);
    let results;
    if (all) {
      try {
        const answer = await api(`bots/${command}-all`, { method: "POST" });
        results = answer.results.map((r) => ({ name: r.bot_name, answer: r.status, detail: r.detail || "" }));
        for (const r of answer.results) if (r.status !== "refused") mergeBot(r.bot_id, { pending: command });
      } catch (error) {
        results = [{ name: "fleet", answer: "failed", detail: error.message }];
      }
    } else {
      results = await Promise.all(bots.map((bot) => botCommand(bot.id, command).then(
        (answer) => ({ name: bot.name, answer: answer.status, detail: "" }),
        (error) => ({ name: bot.name, answer: "refused", detail: error.message }),
      )));
    }
    setBusy(false);
    setOutcome(results);
  };
  if (outcome) {
    return html`
      <${ConfirmDialog} title=${`${VERBS[command]}: sent`} confirmLabel="Close" cancelLabel=${null} onConfirm=${onDone} onCancel=${onDone}>
        <ul class="outcome">${outcome.map((r) => html`<li><b>${r.name}</b>: ${r.answer} ${r.detail}</li>`)}</ul>
      <//>`;
  }
  const names = all ? "every bot of the fleet" : bots.map((bot) => bot.name).join(", ");
  return html`
    <${ConfirmDialog} title=${`${VERBS[command]} ${all ? "all bots" : `${bots.length} bot${bots.length === 1 ? "" : "s"}`}?`}
      confirmLabel=${VERBS[command]} busy=${busy} onConfirm=${run} onCancel=${onDone}>
      <p>${VERBS[command]}: <b>${names}</b>.</p>
      <p>${EXPLAIN[command]}</p>
    <//>`;
}

export function FleetTable() {
  const bots = useStore((s) => s.bots);
  const metrics = useStore((s) => s.metrics);
  const [selected, setSelected] = useState(new Set());
  const [ask, setAsk] = useState(null);
  const now = useNow();
  const list = sortedBots(bots);
  const onSelect = (id, on) => {
    const next = new Set(selected);
    on ? next.add(id) : next.delete(id);
    setSelected(next);
  };
  const chosen = list.filter((bot) => selected.has(bot.id));
  const allOn = list.length > 0 && chosen.length === list.length;
  return html`
    <${Card} title="Fleet" id="fleet" actions=${html`<${EmergencyButton} />`}>
      <div class="toolbar">
        <span class="muted">${chosen.length ? `${chosen.length} selected:` : "Selected:"}</span>
        ${["start", "stop", "restart"].map((command) => html`
          <button type="button" class="small" disabled=${!chosen.length}
            onClick=${() => setAsk({ command, bots: chosen })}>${VERBS[command]} selected</button>`)}
        <span class="spacer"></span>
        ${["start", "stop", "restart"].map((command) => html`
          <button type="button" class="small secondary" disabled=${!list.length}
            onClick=${() => setAsk({ command, all: true })}>${VERBS[command]} all</button>`)}
      </div>
      ${list.length === 0 ? html`<${Empty}>No bots yet: create one below.<//>` : html`
        <div class="table-wrap">
          <table class="fleet responsive">
            <thead><tr>
              <th class="select"><input type="checkbox" aria-label="select all" checked=${allOn}
                onChange=${(event) => setSelected(event.target.checked ? new Set(list.map((b) => b.id)) : new Set())} /></th>
              <th>Name</th><th>Status</th><th>PID</th><th>Uptime</th><th class="num">Profit</th>
              <th class="num">Open trades</th><th class="num">CPU</th><th class="num">Memory</th><th></th>
            </tr></thead>
            <tbody>${list.map((bot) => html`<${BotRow} key=${bot.id} bot=${bot} metrics=${metrics[bot.id]} now=${now}
              selected=${selected.has(bot.id)} onSelect=${onSelect}
              onCommand=${(bots, command) => setAsk({ command, bots })} />`)}</tbody>
          </table>
        </div>`}
      ${ask ? html`<${CommandDialog} ask=${ask} onDone=${() => setAsk(null)} />` : null}
    <//>`;
}

// -- emergency stop ----------------------------------------------------------------------------------------
export function EmergencyButton() {
  const bots = useStore((s) => s.bots);
  const metrics = useStore((s) => s.metrics);
  const user = useStore((s) => s.user);
  const [open, setOpen] = useState(false);
  const [forceExit, setForceExit] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const [error, setError] = useState(null);
  const list = sortedBots(bots);
  const running = list.filter((bot) => ACTIVE.includes(bot.status));
  const openTrades = Object.values(metrics).reduce((sum, m) => sum + ((m && m.open_trades) || 0), 0);
  const close = () => {
    setOpen(false);
    setOutcome(null);
    setError(null);
    setForceExit(false);
  };
  const fire = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await api("emergency/stop-all", { method: "POST", body: { force_exit: forceExit } });
      setOutcome(answer);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  let dialog = null;
  if (open && outcome) {
    dialog = html`
      <${ConfirmDialog} title="Emergency stop sent" confirmLabel="Close" cancelLabel=${null} onConfirm=${close} onCancel=${close}>
        <p class="emergency-outcome">${outcome.message} ${outcome.total} bot${outcome.total === 1 ? "" : "s"},
          open trades ${outcome.force_exit ? "force-exited" : "left open"}.</p>
        <table class="outcome-table">
          <thead><tr><th>Bot</th><th>Was</th><th>Command</th><th>Now</th></tr></thead>
          <tbody>${outcome.bots.map((b) => html`<tr data-outcome-bot=${b.bot_id}>
            <td>${b.bot_name}</td><td><${StatusBadge} status=${b.was} /></td><td>${b.status}</td>
            <td>${bots[b.bot_id] ? html`<${StatusBadge} status=${bots[b.bot_id].status} />` : "–"}</td></tr>`)}</tbody>
        </table>
      <//>`;
  } else if (open) {
    const scope = user && user.is_superuser ? "every bot of every user" : "all of your bots";
    dialog = html`
      <${ConfirmDialog} title="Emergency stop all" confirmLabel=${`Stop ${list.length} bot${list.length === 1 ? "" : "s"} now`}
        danger busy=${busy} onConfirm=${fire} onCancel=${close}>
        <p class="emergency-summary">This stops <b>${scope}: ${list.length} bot${list.length === 1 ? "" : "s"}</b>,
          ${" "}<b>${running.length} running</b>${running.length ? ` (${running.map((b) => b.name).join(", ")})` : ""}, at once.</p>
        <p>Each bot stops taking new entries${forceExit
          ? html`, <b>force-exits its open trades at market</b> (${openTrades} open across the fleet)`
          : html`; <b>its open trades stay open</b> (${openTrades} open across the fleet)`},
          then its process is terminated (SIGTERM, then SIGKILL).</p>
        <label class="check"><input type="checkbox" name="force_exit" checked=${forceExit}
          onChange=${(event) => setForceExit(event.target.checked)} /> Force-exit open trades first</label>
        <${ErrorText} error=${error} />
      <//>`;
  }
  return html`
    <button type="button" class="emergency" onClick=${() => setOpen(true)}>Emergency stop all</button>
    ${dialog}`;
}

// -- a new bot ----------------------------------------------------------------------------------------------
const BOT_DEFAULTS = {
  name: "", strategy_name: "", exchange: "replay", stake_currency: "USDT", stake_amount: "100",
  timeframe: "5m", pairs: "BTC/USDT", max_open_trades: "3", dry_run: true,
};

export function CreateBotForm({ onCreated }) {
  const [form, setForm] = useState(BOT_DEFAULTS);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const strategies = useLoad(() => api("strategies/"), []);
  useEffect(() => {
    if (strategies.data && !form.strategy_name && strategies.data.length) {
      setForm((f) => ({ ...f, strategy_name: strategies.data[0] }));
    }
  }, [strategies.data]);
  const set = (name) => (event) => {
    const value = event.target.type === "checkbox" ? event.target.checked : event.target.value;
    setForm((f) => ({ ...f, [name]: value }));
  };
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const stake = form.stake_amount.trim();
    const body = {
      name: form.name.trim(), strategy_name: form.strategy_name, exchange: form.exchange.trim(),
      stake_currency: form.stake_currency.trim(), timeframe: form.timeframe, dry_run: form.dry_run,
      stake_amount: stake === "unlimited" || stake === "" || Number.isNaN(Number(stake)) ? stake : Number(stake),
      pair_whitelist: form.pairs.split(/[\s,]+/).filter(Boolean),
    };
    if (form.max_open_trades !== "") body.max_open_trades = Number(form.max_open_trades);
    try {
      const bot = await api("bots/", { method: "POST", body });
      update((s) => ({ bots: { ...s.bots, [bot.id]: bot } }));
      setForm({ ...BOT_DEFAULTS, strategy_name: form.strategy_name });
      onCreated && onCreated(bot);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const general = error && (!(error instanceof ApiError) || !Object.keys(error.fields).length || error.fields.__all__);
  const field = (name, label, input) => html`
    <label class="field" data-field=${name}><span>${label}</span>${input}<${FieldError} error=${error} field=${name} /></label>`;
  return html`
    <form class="bot-form grid-form" onSubmit=${submit} novalidate>
      ${field("name", "Name", html`<input name="name" value=${form.name} onInput=${set("name")} required />`)}
      ${field("strategy_name", "Strategy", html`
        <input name="strategy_name" list="strategy-names" value=${form.strategy_name} onInput=${set("strategy_name")}
          autocomplete="off" />
        <datalist id="strategy-names">${(strategies.data || []).map((name) => html`<option value=${name} />`)}</datalist>`)}
      ${field("pair_whitelist", "Pairs", html`<input name="pair_whitelist" value=${form.pairs} onInput=${set("pairs")}
        placeholder="BTC/USDT, ETH/USDT" />`)}
      ${field("stake_amount", "Stake amount", html`<input name="stake_amount" value=${form.stake_amount}
        onInput=${set("stake_amount")} inputmode="decimal" />`)}
      ${field("stake_currency", "Stake currency", html`<input name="stake_currency" value=${form.stake_currency}
        onInput=${set("stake_currency")} />`)}
      ${field("timeframe", "Timeframe", html`
        <select name="timeframe" value=${form.timeframe} onChange=${set("timeframe")}>
          ${TIMEFRAMES.map((tf) => html`<option value=${tf}>${tf}</option>`)}
        </select>`)}
      ${field("max_open_trades", "Max open trades", html`<input name="max_open_trades" type="number"
        value=${form.max_open_trades} onInput=${set("max_open_trades")} />`)}
      ${field("exchange", "Exchange", html`<input name="exchange" value=${form.exchange} onInput=${set("exchange")} />`)}
      <label class="field check" data-field="dry_run"><input type="checkbox" name="dry_run" checked=${form.dry_run}
        onChange=${set("dry_run")} /> <span>Dry run</span><${FieldError} error=${error} field="dry_run" /></label>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy}>${busy ? "Creating…" : "Create bot"}</button>
        ${general ? html`<${ErrorText} error=${error} />` : null}
        <${ErrorText} error=${strategies.error} />
      </div>
    </form>`;
}

// -- trades -------------------------------------------------------------------------------------------------
const EVENT_WORDS = { entry: "entry placed", entry_fill: "entry filled", entry_cancel: "entry cancelled", exit: "exit" };

export function TradeFeed({ botId = null }) {
  const trades = useStore((s) => s.trades);
  const shown = botId ? trades.filter((t) => t.bot_id === botId) : trades;
  return html`
    <${Card} title="Trade notifications" id="trade-feed">
      ${shown.length === 0 ? html`<${Empty}>Trades appear here as they happen.<//>` : html`
        <ul class="feed">${shown.map((t) => html`
          <li data-trade-event=${t.event} data-bot-id=${t.bot_id} class=${`event-${t.event}`}>
            <span class="when">${time(t.at)}</span>
            <b>${t.bot_name}</b> ${EVENT_WORDS[t.event] || t.event}: ${t.side} ${num(t.amount, 6)} ${t.pair}${" "}
            @ ${num(t.price, 4)}
            ${t.event === "exit" ? html` <span class=${tone(t.profit_abs)}>${signed(t.profit_abs)} ${t.stake_currency}${" "}
              (${signed((t.profit_ratio || 0) * 100, 2)}%)</span> ${t.exit_reason || ""}` : null}
            ${t.dry_run ? html` <span class="badge">dry</span>` : null}
          </li>`)}</ul>`}
    <//>`;
}

export function TradesTable({ trades, showBot = true }) {
  return html`
    <div class="table-wrap"><table class="trades compact responsive">
      <thead><tr>${showBot ? html`<th>Bot</th>` : null}<th>Pair</th><th>Side</th><th class="num">Amount</th>
        <th class="num">Open</th><th class="num">Current/close</th><th class="num">Profit</th><th>Opened</th><th>Exit</th></tr></thead>
      <tbody>${trades.map((t) => html`<tr data-trade-id=${t.id}>
        ${showBot ? html`<td data-label="Bot"><a href=${`#/bots/${t.bot_id}`}>${t.bot_name}</a></td>` : null}
        <td data-label="Pair">${t.pair}</td><td data-label="Side">${t.side}</td>
        <td data-label="Amount" class="num">${num(t.amount, 6)}</td>
        <td data-label="Open" class="num">${num(t.open_rate, 4)}</td>
        <td data-label="Current/close" class="num">${num(t.is_open ? t.current_rate : t.close_rate, 4)}</td>
        <td data-label="Profit" class=${`num ${tone(t.profit_abs)}`}>${signed(t.profit_abs)} ${t.stake_currency}${" "}
          (${signed((t.profit_ratio || 0) * 100, 2)}%)</td>
        <td data-label="Opened">${dateTime(t.open_date)}</td>
        <td data-label="Exit">${t.is_open ? "open" : t.exit_reason || "closed"}</td></tr>`)}</tbody>
    </table></div>`;
}

export function OpenTrades() {
  const version = useStore((s) => s.tradesVersion);
  const result = useLoad(() => api("analytics/trades", { query: { is_open: "true", per_page: 200 } }), [version], 15000);
  const trades = result.data ? result.data.trades : [];
  return html`
    <${Card} title=${`Open trades${result.data ? ` (${result.data.total})` : ""}`} id="open-trades">
      <${ErrorText} error=${result.error} />
      ${trades.length ? html`<${TradesTable} trades=${trades} />` : html`<${Empty}>No open trades.<//>`}
    <//>`;
}

export function FleetPage() {
  const [creating, setCreating] = useState(false);
  return html`
    <${FleetTable} />
    <div class="columns">
      <${TradeFeed} />
      <${OpenTrades} />
    </div>
    <${Card} title="New bot" id="new-bot" actions=${html`<button type="button" class="small secondary"
      onClick=${() => setCreating(!creating)}>${creating ? "Hide" : "New bot"}</button>`}>
      ${creating ? html`<${CreateBotForm} onCreated=${() => setCreating(false)} />`
        : html`<p class="muted">A dry-run bot on the replay exchange by default.</p>`}
    <//>`;
}
