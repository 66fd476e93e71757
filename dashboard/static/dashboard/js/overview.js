// Analytics and operations: profit charts, performance and risk per group, streams, audit, system.

import { html, useMemo, useState } from "../vendor/htm/standalone.module.js";
import { api } from "./api.js";
import { WindowPicker } from "./bot.js";
import { LineChart, points } from "./charts.js";
import { Card, Empty, ErrorText, dateTime, group, num, pct, ratio, signed, time, tone, useLoad, useStore } from "./ui.js";

// -- normalising what the API and the socket say alike ---------------------------------------------------
export function streamsFromApi(report) {
  const streams = Object.entries((report.metrics && report.metrics.streams) || {}).map(([name, s]) => ({
    name, length: s.length, pending: s.total_pending, lag: s.total_lag,
    dead_letters: s.dlq ? s.dlq.total_messages : 0, status: s.exists === false ? "missing" : "",
  }));
  return { overall_status: report.status, streams, issues: report.issues || [], at: report.timestamp };
}

export function streamsFromEvent(data, at) {
  return { overall_status: data.overall_status, streams: data.streams || [], issues: data.issues || [], at };
}

export function auditFromApi(row) {
  return { id: row.id, at: row.timestamp, user: row.user, action: row.action, resource: row.resource, status: row.status };
}

export function auditFromEvent(data) {
  const resource = data.resource_type ? `${data.resource_type}${data.resource_id ? `:${data.resource_id}` : ""}` : "";
  return { id: data.id, at: data.at, user: data.user, action: data.action, resource, status: data.status };
}

// -- cards ------------------------------------------------------------------------------------------------
function GroupCards({ title, entries, rows, id }) {
  return html`
    <${Card} title=${title} id=${id}>
      ${entries.length === 0 ? html`<${Empty}>No trades in this window.<//>` : html`
        <div class="group-cards">${entries.map((entry) => html`
          <div class="group-card" data-group=${`${entry.stake_currency}-${entry.dry_run}`}>
            <h3>${group(entry)}</h3>
            <dl>${rows.map(([label, render]) => html`<div><dt>${label}</dt><dd>${render(entry)}</dd></div>`)}</dl>
          </div>`)}</div>`}
    <//>`;
}

const PERFORMANCE = [
  ["Profit", (e) => html`<span class=${tone(e.profit_abs)}>${signed(e.profit_abs)} ${e.stake_currency}</span>`],
  ["Profit %", (e) => html`<span class=${tone(e.profit_pct)}>${pct(e.profit_pct)}</span>`],
  ["Closed trades", (e) => e.total_trades],
  ["Win rate", (e) => `${pct(e.win_rate, 1)} (${e.profitable_trades} won)`],
  ["Avg profit / trade", (e) => pct(e.avg_profit)],
  ["Open trades", (e) => e.open_trades],
];

const RISK = [
  ["Max drawdown", (e) => `${pct(e.max_drawdown)}${e.max_drawdown_abs !== undefined ? ` (${num(e.max_drawdown_abs)} ${e.stake_currency})` : ""}`],
  ["Sharpe", (e) => ratio(e.sharpe_ratio)],
  ["Sortino", (e) => ratio(e.sortino_ratio)],
  ["Calmar", (e) => ratio(e.calmar_ratio)],
];

// One chart per (stake currency, dry run) group: amounts of different currencies share no axis.
function ProfitCharts({ span }) {
  const profit = useLoad(() => api("analytics/profit", { query: { window: span } }), [span]);
  const entries = profit.data ? profit.data.data : [];
  const charts = useMemo(() => entries.map((e) => ({
    entry: e,
    combined: [{ name: group(e), data: points(e.combined.cumulative, "profit_abs") }],
    bots: e.bots.map((b) => ({ name: b.bot_name, data: points(b.cumulative, "profit_abs") })),
  })), [profit.data]);
  return html`
    <${ErrorText} error=${profit.error} />
    ${charts.length === 0 && profit.data ? html`<${Card} title="Profit"><${Empty}>No trades in this window.<//><//>` : null}
    ${charts.map(({ entry, combined, bots }) => html`
      <div class="columns profit-group" data-group=${`${entry.stake_currency}-${entry.dry_run}`}>
        <${Card} title=${`Combined cumulative profit · ${group(entry)}`} className="combined-profit">
          <${LineChart} series=${combined} label=${`combined profit ${group(entry)}`} />
        <//>
        <${Card} title=${`Per bot · ${group(entry)}`} className="per-bot-profit">
          <${LineChart} series=${bots} label=${`per bot ${group(entry)}`} />
        <//>
      </div>`)}`;
}

function Figures({ span }) {
  const performance = useLoad(() => api("analytics/performance", { query: { window: span } }), [span], 30000);
  const risk = useLoad(() => api("analytics/risk", { query: { window: span } }), [span], 60000);
  return html`
    <div class="columns">
      <div>
        <${ErrorText} error=${performance.error} />
        <${GroupCards} title="Performance" id="performance" entries=${performance.data ? performance.data.data : []} rows=${PERFORMANCE} />
      </div>
      <div>
        <${ErrorText} error=${risk.error} />
        <${GroupCards} title="Risk" id="risk" entries=${risk.data ? risk.data.data : []} rows=${RISK} />
      </div>
    </div>`;
}

export function StreamHealth() {
  const streams = useStore((s) => s.streams);
  return html`
    <${Card} title="Stream health" id="stream-health" actions=${streams ? html`<span
      class=${`badge health-${streams.overall_status}`}>${streams.overall_status}</span>` : null}>
      ${!streams ? html`<${Empty}>Waiting for the streams report…<//>` : html`
        ${streams.issues.length ? html`<ul class="issues">${streams.issues.map((i) => html`<li>${i}</li>`)}</ul>` : null}
        <div class="table-wrap"><table class="compact">
          <thead><tr><th>Stream</th><th class="num">Length</th><th class="num">Pending</th><th class="num">Lag</th>
            <th class="num">Dead</th></tr></thead>
          <tbody>${streams.streams.map((s) => html`<tr class=${s.dead_letters ? "warn" : ""}>
            <td>${s.name}</td><td class="num">${s.length}</td><td class="num">${s.pending}</td>
            <td class="num">${s.lag ?? "–"}</td><td class="num">${s.dead_letters}</td></tr>`)}</tbody>
        </table></div>`}
    <//>`;
}

export function AuditFeed() {
  const audit = useStore((s) => s.audit);
  return html`
    <${Card} title="Audit" id="audit-feed">
      ${audit.length === 0 ? html`<${Empty}>No audited actions yet.<//>` : html`
        <ul class="feed audit">${audit.map((a) => html`<li class=${a.status === "failure" ? "loss" : ""}>
          <span class="when">${time(a.at)}</span> <b>${a.user || "system"}</b> ${a.action}
          ${a.resource ? html` <span class="muted">${a.resource}</span>` : null} <span class="muted">${a.status}</span></li>`)}</ul>`}
    <//>`;
}

function Meter({ label, value }) {
  const v = Number(value) || 0;
  return html`<div class="meter"><span>${label}</span><div class="bar"><i class=${v > 90 ? "hot" : ""}
    style=${{ width: `${Math.min(100, v)}%` }}></i></div><b>${pct(v, 0)}</b></div>`;
}

export function SystemMetrics() {
  const system = useStore((s) => s.system);
  return html`
    <${Card} title="System" id="system-metrics">
      ${!system ? html`<${Empty}>Waiting for metrics…<//>` : html`
        <${Meter} label="CPU" value=${system.cpu_usage} />
        <${Meter} label="Memory" value=${system.memory_usage} />
        <${Meter} label="Disk" value=${system.disk_usage} />
        <p class="muted">at ${dateTime(system.at)}</p>`}
    <//>`;
}

export function OverviewPage() {
  const [span, setSpan] = useState("7d");
  return html`
    <div class="page-head"><h1>Analytics</h1><${WindowPicker} value=${span} onChange=${setSpan} /></div>
    <${Figures} span=${span} />
    <${ProfitCharts} span=${span} />
    <div class="columns three">
      <${StreamHealth} />
      <${SystemMetrics} />
      <${AuditFeed} />
    </div>`;
}
