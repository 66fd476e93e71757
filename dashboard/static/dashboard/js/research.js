// Research: backtest and hyperopt launch forms, the jobs with live progress, a result's equity curve and tables.

import { html, useEffect, useMemo, useState } from "../vendor/htm/standalone.module.js";
import { api } from "./api.js";
import { LineChart, points } from "./charts.js";
import { TIMEFRAMES } from "./fleet.js";
import { Card, Empty, ErrorText, FieldError, StatusBadge, dateTime, num, pct, signed, tone, update, useLoad, useStore } from "./ui.js";

export async function loadJobs() {
  const page = await api("jobs/", { query: { per_page: 50 } });
  const jobs = {};
  for (const job of page.jobs) jobs[job.id] = job;
  update({ jobs });
}

// job_progress: status and progress of one of our jobs.
export function applyJobProgress(data) {
  update((s) => ({
    jobs: { ...s.jobs, [data.job_id]: { ...(s.jobs[data.job_id] || { id: data.job_id, kind: data.kind, parameters: {} }),
      status: data.status, progress: data.progress, step: data.step, attempt: data.attempt } },
  }));
}

function fraction(progress) {
  const value = Number(progress) || 0;
  return value > 1 ? value / 100 : value; // the contract allows 0..1 or a percentage
}

export function ProgressBar({ progress, status }) {
  const share = status === "completed" ? 1 : fraction(progress);
  return html`<div class="progress" role="progressbar" aria-valuenow=${Math.round(share * 100)} aria-valuemin="0"
    aria-valuemax="100"><i class=${`p-${status}`} style=${{ width: `${share * 100}%` }}></i>
    <span>${Math.round(share * 100)}%</span></div>`;
}

function lastDays(days) {
  const end = new Date();
  const start = new Date(end.getTime() - days * 86400_000);
  const day = (d) => d.toISOString().slice(0, 10).replaceAll("-", "");
  return `${day(start)}-${day(end)}`;
}

function JobForm({ kind, onStarted }) {
  const hyperopt = kind === "hyperopt";
  const [form, setForm] = useState({
    strategy_name: "", timeframe: "5m", timerange: lastDays(14), pairs: "BTC/USDT", stake_amount: "100",
    dry_run_wallet: "1000", max_open_trades: "3", epochs: "30", spaces: "default", loss: "",
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const strategies = useLoad(() => api(hyperopt ? "hyperopt/strategies" : "strategies/"), [kind]);
  const losses = useLoad(() => (hyperopt ? api("hyperopt/losses") : Promise.resolve(null)), [kind]);
  useEffect(() => {
    if (strategies.data && strategies.data.length && !strategies.data.includes(form.strategy_name)) {
      setForm((f) => ({ ...f, strategy_name: strategies.data[0] }));
    }
  }, [strategies.data]);
  useEffect(() => {
    if (losses.data && !form.loss) setForm((f) => ({ ...f, loss: losses.data.default }));
  }, [losses.data]);
  const set = (name) => (event) => setForm((f) => ({ ...f, [name]: event.target.value }));
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body = { strategy_name: form.strategy_name, timeframe: form.timeframe, timerange: form.timerange.trim(),
      pairs: form.pairs.split(/[\s,]+/).filter(Boolean) };
    for (const name of ["stake_amount", "dry_run_wallet", "max_open_trades"]) if (form[name] !== "") body[name] = Number(form[name]);
    if (hyperopt) {
      body.epochs = Number(form.epochs);
      body.spaces = form.spaces.split(/[\s,]+/).filter(Boolean);
      if (form.loss) body.loss = form.loss;
    }
    try {
      const answer = await api(hyperopt ? "hyperopt/start" : "strategies/backtest", { method: "POST", body });
      await loadJobs();
      onStarted(answer.task_id);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const field = (name, label, input) => html`
    <label class="field" data-field=${name}><span>${label}</span>${input}<${FieldError} error=${error} field=${name} /></label>`;
  return html`
    <form class="grid-form" onSubmit=${submit} novalidate data-form=${kind}>
      ${field("strategy_name", "Strategy", html`<select name="strategy_name" value=${form.strategy_name} onChange=${set("strategy_name")}>
        ${(strategies.data || []).map((n) => html`<option value=${n}>${n}</option>`)}</select>`)}
      ${field("timeframe", "Timeframe", html`<select name="timeframe" value=${form.timeframe} onChange=${set("timeframe")}>
        ${TIMEFRAMES.map((tf) => html`<option value=${tf}>${tf}</option>`)}</select>`)}
      ${field("timerange", "Time range", html`<input name="timerange" value=${form.timerange} onInput=${set("timerange")}
        placeholder="20240101-20240131" />`)}
      ${field("pairs", "Pairs", html`<input name="pairs" value=${form.pairs} onInput=${set("pairs")} />`)}
      ${field("stake_amount", "Stake amount", html`<input name="stake_amount" value=${form.stake_amount} onInput=${set("stake_amount")} />`)}
      ${field("dry_run_wallet", "Starting wallet", html`<input name="dry_run_wallet" value=${form.dry_run_wallet} onInput=${set("dry_run_wallet")} />`)}
      ${field("max_open_trades", "Max open trades", html`<input name="max_open_trades" type="number" value=${form.max_open_trades}
        onInput=${set("max_open_trades")} />`)}
      ${hyperopt ? html`
        ${field("epochs", "Epochs", html`<input name="epochs" type="number" value=${form.epochs} onInput=${set("epochs")} />`)}
        ${field("spaces", "Spaces", html`<input name="spaces" value=${form.spaces} onInput=${set("spaces")} placeholder="buy sell roi" />`)}
        ${field("loss", "Loss", html`<select name="loss" value=${form.loss} onChange=${set("loss")}>
          ${(losses.data ? losses.data.losses : []).map((n) => html`<option value=${n}>${n}</option>`)}</select>`)}` : null}
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy || !form.strategy_name}>
          ${busy ? "Queuing…" : hyperopt ? "Start hyperopt" : "Start backtest"}</button>
        ${error && !Object.keys(error.fields || {}).length ? html`<${ErrorText} error=${error} />` : null}
        ${error && error.fields && error.fields.__all__ ? html`<${ErrorText} error=${error} />` : null}
        <${ErrorText} error=${strategies.error} />
      </div>
    </form>`;
}

function JobList({ selected, onSelect }) {
  const jobs = useStore((s) => s.jobs);
  const list = Object.values(jobs).sort((a, b) => b.id - a.id);
  return html`
    <${Card} title="Jobs" id="jobs">
      ${list.length === 0 ? html`<${Empty}>No backtests or hyperopts yet.<//>` : html`
        <div class="table-wrap"><table class="compact responsive jobs">
          <thead><tr><th>#</th><th>Kind</th><th>Strategy</th><th>Status</th><th>Progress</th><th></th></tr></thead>
          <tbody>${list.map((job) => html`<tr data-job-id=${job.id} class=${selected === job.id ? "selected" : ""}>
            <td data-label="#">${job.id}</td><td data-label="Kind">${job.kind}</td>
            <td data-label="Strategy">${(job.parameters || {}).strategy_name || "–"}</td>
            <td data-label="Status"><${StatusBadge} status=${job.status} /></td>
            <td data-label="Progress"><${ProgressBar} progress=${job.progress} status=${job.status} />
              <div class="muted small">${job.step || ""}</div></td>
            <td class="actions">
              <button type="button" class="small" onClick=${() => onSelect(job.id)}>Open</button>
              ${["queued", "running"].includes(job.status) ? html`<button type="button" class="small secondary"
                onClick=${() => api(`jobs/${job.id}/cancel`, { method: "POST" }).then(loadJobs)}>Cancel</button>` : null}
            </td></tr>`)}</tbody>
        </table></div>`}
    <//>`;
}

const SUMMARY = [
  ["Trades", "total_trades", (v) => v],
  ["Wins / draws / losses", null, (v, s) => `${s.wins ?? "–"} / ${s.draws ?? "–"} / ${s.losses ?? "–"}`],
  ["Profit", "profit_total_abs", (v) => html`<span class=${tone(v)}>${signed(v)}</span>`],
  ["Profit %", "profit_total", (v) => html`<span class=${tone(v)}>${pct((v || 0) * 100)}</span>`],
  ["CAGR", "cagr", (v) => pct((v || 0) * 100)],
  ["Profit factor", "profit_factor", (v) => num(v)],
  ["Expectancy", "expectancy", (v) => num(v, 4)],
  ["Max drawdown", "max_drawdown_account", (v, s) => `${pct((v || 0) * 100)} (${num(s.max_drawdown_abs)})`],
  ["Sharpe / Sortino / Calmar", null, (v, s) => `${num(s.sharpe)} / ${num(s.sortino)} / ${num(s.calmar)}`],
  ["Market change", "market_change", (v) => pct((v || 0) * 100)],
];

function BacktestResult({ id }) {
  const job = useStore((s) => s.jobs[id]);
  const status = job ? job.status : "";
  const result = useLoad(() => api(`strategies/backtest/${id}`), [id, status]);
  const data = result.data;
  const equity = useMemo(() => [{ name: "balance", data: points(data && data.equity_curve, "balance") }], [data]);
  if (!data) return html`<${ErrorText} error=${result.error} />`;
  const summary = data.summary || {};
  return html`
    <${ErrorText} error=${result.error} />
    <p>${data.strategy_name} · ${data.parameters.timeframe} · ${data.parameters.timerange} · <${StatusBadge} status=${data.status} />
      ${data.error ? html` <span class="loss">${data.error}</span>` : null}</p>
    ${data.summary ? html`
      <dl class="facts">${SUMMARY.map(([label, key, render]) => html`<div><dt>${label}</dt>
        <dd>${render(key ? summary[key] : null, summary)}</dd></div>`)}</dl>
      <h3>Equity curve</h3>
      <${LineChart} series=${equity} label="equity curve" />
      <h3>Per pair</h3>
      <div class="table-wrap"><table class="compact">
        <thead><tr><th>Pair</th><th class="num">Trades</th><th class="num">Profit</th><th class="num">Profit %</th><th class="num">Win %</th></tr></thead>
        <tbody>${(data.results_per_pair || []).map((r) => html`<tr><td>${r.key}</td><td class="num">${r.trades}</td>
          <td class=${`num ${tone(r.profit_total_abs)}`}>${signed(r.profit_total_abs)}</td>
          <td class="num">${pct((r.profit_total || 0) * 100)}</td><td class="num">${pct((r.winrate || 0) * 100, 1)}</td></tr>`)}</tbody>
      </table></div>
      <h3>Exit reasons</h3>
      <div class="table-wrap"><table class="compact">
        <thead><tr><th>Reason</th><th class="num">Trades</th><th class="num">Profit</th></tr></thead>
        <tbody>${(data.exit_reason_summary || []).map((r) => html`<tr><td>${r.key}</td><td class="num">${r.trades}</td>
          <td class=${`num ${tone(r.profit_total_abs)}`}>${signed(r.profit_total_abs)}</td></tr>`)}</tbody>
      </table></div>
      <h3>Trades (${data.trades.total})</h3>
      <div class="table-wrap"><table class="compact">
        <thead><tr><th>Pair</th><th>Open</th><th>Close</th><th class="num">Profit</th><th>Exit</th></tr></thead>
        <tbody>${data.trades.items.map((t) => html`<tr><td>${t.pair}</td><td>${dateTime(t.open_date)}</td>
          <td>${dateTime(t.close_date)}</td><td class=${`num ${tone(t.profit_abs)}`}>${signed(t.profit_abs)}</td>
          <td>${t.exit_reason}</td></tr>`)}</tbody>
      </table></div>` : html`<${Empty}>Results appear when the backtest completes.<//>`}`;
}

function HyperoptResult({ id }) {
  const job = useStore((s) => s.jobs[id]);
  const key = job ? `${job.status}:${job.progress}` : "";
  const result = useLoad(() => api(`hyperopt/results/${id}`), [id, key]);
  const data = result.data;
  if (!data) return html`<${ErrorText} error=${result.error} />`;
  const best = data.best_result;
  return html`
    <p>${data.strategy_name} · epochs ${data.epochs_done} of ${data.epochs_total} · <${StatusBadge} status=${data.status} />
      ${data.error ? html` <span class="loss">${data.error}</span>` : null}</p>
    ${best ? html`<h3>Best so far</h3><pre class="log">${JSON.stringify(best, null, 2)}</pre>`
      : html`<${Empty}>No epoch finished yet.<//>`}`;
}

export function ResearchPage() {
  const [kind, setKind] = useState("backtest");
  const [selected, setSelected] = useState(null);
  const job = useStore((s) => (selected ? s.jobs[selected] : null));
  return html`
    <div class="page-head"><h1>Research</h1>
      <div class="segmented" role="group" aria-label="kind">${["backtest", "hyperopt"].map((k) => html`
        <button type="button" class=${k === kind ? "on" : ""} onClick=${() => setKind(k)}>${k}</button>`)}</div></div>
    <${Card} title=${kind === "hyperopt" ? "New hyperopt" : "New backtest"} id="job-form">
      <${JobForm} key=${kind} kind=${kind} onStarted=${(taskId) => setSelected(Number(taskId))} />
    <//>
    <${JobList} selected=${selected} onSelect=${setSelected} />
    ${selected ? html`<${Card} title=${`Job ${selected}`} id="job-result">
      ${job && job.kind === "hyperopt" ? html`<${HyperoptResult} id=${selected} />` : html`<${BacktestResult} id=${selected} />`}
    <//>` : null}`;
}
