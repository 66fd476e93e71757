// One bot's page: its state and commands, its log tail, its trades and its profit chart.

import { html, useMemo, useState } from "../vendor/htm/standalone.module.js";
import { api } from "./api.js";
import { LineChart, points } from "./charts.js";
import { botCommand, TradeFeed, TradesTable } from "./fleet.js";
import {
  Card, ConfirmDialog, Empty, ErrorText, StatusBadge, dateTime, duration, group, num, signed, tone, useLoad, useNow,
  useStore,
} from "./ui.js";

const WINDOWS = ["24h", "7d", "30d", "all"];

export function WindowPicker({ value, onChange }) {
  return html`<div class="segmented" role="group" aria-label="window">${WINDOWS.map((w) => html`
    <button type="button" class=${w === value ? "on" : ""} onClick=${() => onChange(w)}>${w}</button>`)}</div>`;
}

function LogTail({ id }) {
  const [lines, setLines] = useState(200);
  const logs = useLoad(() => api(`bots/${id}/logs`, { query: { lines } }), [id, lines], 5000);
  return html`
    <${Card} title="Log" id="bot-log" actions=${html`
      <select value=${lines} onChange=${(event) => setLines(Number(event.target.value))} aria-label="lines">
        ${[100, 200, 500, 1000].map((n) => html`<option value=${n}>${n} lines</option>`)}</select>`}>
      <${ErrorText} error=${logs.error} />
      <pre class="log">${logs.data && logs.data.logs.length ? logs.data.logs.join("\n") : "No log yet."}</pre>
    <//>`;
}

function BotProfit({ id }) {
  const [span, setSpan] = useState("7d");
  const profit = useLoad(() => api("analytics/profit", { query: { bot: id, window: span } }), [id, span]);
  const series = useMemo(() => (profit.data ? profit.data.data : []).map((entry) => ({
    name: group(entry), data: points(entry.combined.cumulative, "profit_abs"),
  })), [profit.data]);
  return html`
    <${Card} title="Cumulative profit" id="bot-profit" actions=${html`<${WindowPicker} value=${span} onChange=${setSpan} />`}>
      <${ErrorText} error=${profit.error} />
      <${LineChart} series=${series} label="bot profit" />
    <//>`;
}

function BotTrades({ id }) {
  const version = useStore((s) => s.tradesVersion);
  const open = useLoad(() => api("analytics/trades", { query: { bot: id, is_open: "true", per_page: 100 } }), [id, version], 15000);
  const closed = useLoad(() => api("analytics/trades", { query: { bot: id, is_open: "false", window: "all", per_page: 50 } }),
    [id, version]);
  return html`
    <${Card} title="Trades" id="bot-trades">
      <${ErrorText} error=${open.error || closed.error} />
      <h3>Open</h3>
      ${open.data && open.data.trades.length ? html`<${TradesTable} trades=${open.data.trades} showBot=${false} />`
        : html`<${Empty}>No open trades.<//>`}
      <h3>Closed (latest)</h3>
      ${closed.data && closed.data.trades.length ? html`<${TradesTable} trades=${closed.data.trades} showBot=${false} />`
        : html`<${Empty}>No closed trades.<//>`}
    <//>`;
}

export function BotPage({ id }) {
  const bot = useStore((s) => s.bots[id]);
  const metrics = useStore((s) => s.metrics[id]);
  const now = useNow();
  const [ask, setAsk] = useState(null);
  const [error, setError] = useState(null);
  if (!bot) return html`<${Card} title="Bot"><${Empty}>No bot ${id} (or not yours).<//><//>`;
  const run = async () => {
    setError(null);
    try {
      await botCommand(id, ask);
    } catch (err) {
      setError(err);
    }
    setAsk(null);
  };
  const profit = metrics && metrics.profit !== undefined ? metrics.profit : bot.total_profit;
  return html`
    <p><a href="#/">← Fleet</a></p>
    <${Card} title=${bot.name} id="bot-head" actions=${html`<span>
      ${["start", "stop", "restart"].map((c) => html`<button type="button" class="small" onClick=${() => setAsk(c)}>${c}</button>`)}</span>`}>
      <dl class="facts">
        <div><dt>Status</dt><dd><${StatusBadge} status=${bot.status} /> ${bot.status_detail || ""}</dd></div>
        <div><dt>Strategy</dt><dd>${bot.strategy_name || "–"}</dd></div>
        <div><dt>Pairs</dt><dd>${(bot.pair_whitelist || []).join(", ") || "all markets"}</dd></div>
        <div><dt>Timeframe</dt><dd>${bot.timeframe || "–"}</dd></div>
        <div><dt>Stake</dt><dd>${bot.stake_amount} ${bot.stake_currency}</dd></div>
        <div><dt>Mode</dt><dd>${bot.dry_run === false ? "live" : "dry run"} on ${bot.exchange || "?"}</dd></div>
        <div><dt>PID</dt><dd>${bot.pid || "–"}</dd></div>
        <div><dt>Up since</dt><dd>${["running", "unresponsive"].includes(bot.status) && bot.started_at
          ? `${dateTime(bot.started_at)} (${duration((now - new Date(bot.started_at)) / 1000)})` : "–"}</dd></div>
        <div><dt>Profit</dt><dd class=${tone(profit)}>${signed(profit)} ${bot.stake_currency}</dd></div>
        <div><dt>Trades</dt><dd>${bot.total_trades ?? "–"} (${bot.profitable_trades ?? "–"} profitable)</dd></div>
        <div><dt>CPU / memory</dt><dd>${metrics ? `${num(metrics.cpu_percent, 1)}% / ${num(metrics.memory_mb, 0)} MB` : "–"}</dd></div>
      </dl>
      <${ErrorText} error=${error} />
    <//>
    <div class="columns">
      <${BotProfit} id=${id} />
      <${TradeFeed} botId=${id} />
    </div>
    <${BotTrades} id=${id} />
    <${LogTail} id=${id} />
    ${ask ? html`<${ConfirmDialog} title=${`${ask} ${bot.name}?`} confirmLabel=${ask} onConfirm=${run}
      onCancel=${() => setAsk(null)}><p>Send <b>${ask}</b> to ${bot.name}.</p><//>` : null}`;
}
