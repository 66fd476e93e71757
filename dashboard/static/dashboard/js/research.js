// Research: backtest and hyperopt launch forms, the jobs with live progress, a result's equity curve and tables.

import { html, useEffect, useMemo, useState } from "../vendor/htm/standalone.module.js";
import { api } from "./api.js";
import { LineChart, points } from "./charts.js";
import { TIMEFRAMES } from "./fleet.js";
import {
  Card, ConfirmDialog, Empty, ErrorText, FieldError, StatusBadge, dateTime, digitsFor, getState, num, pct, ratio, signed, tone, update,
  useLoad, useStore,
} from "./ui.js";

const ACTIVE = ["queued", "running"];
const FINISHED = ["completed", "failed", "cancelled"];
// Without the socket, the page asks for its running jobs this often.
const POLL_MS = 3000;
const TRADES_PER_PAGE = 50;
const EPOCHS_PER_PAGE = 50;

// -- data -----------------------------------------------------------------------------------------------
// A job's end is final: an answer that left before the end arrived (over the socket) does not undo it.
function merged(known, job) {
  if (known && FINISHED.includes(known.status) && !FINISHED.includes(job.status)) {
    return { ...known, ...job, status: known.status, progress: known.progress, step: known.step };
  }
  return { ...known, ...job };
}

export async function loadJobs() {
  const page = await api("jobs/", { query: { per_page: 50 } });
  update((s) => {
    const jobs = { ...s.jobs };
    for (const job of page.jobs) jobs[job.id] = merged(s.jobs[job.id], job);
    return { jobs };
  });
}

function mergeJob(job) {
  update((s) => ({ jobs: { ...s.jobs, [job.id]: merged(s.jobs[job.id], job) } }));
}

// job_progress: status and progress of one of our jobs. Its end brings the reason (error, step) with the list.
export function applyJobProgress(data) {
  const known = getState().jobs[data.job_id];
  update((s) => ({
    jobs: { ...s.jobs, [data.job_id]: { ...(s.jobs[data.job_id] || { id: data.job_id, kind: data.kind, parameters: {} }),
      status: data.status, progress: data.progress, step: data.step, attempt: data.attempt } },
  }));
  if (FINISHED.includes(data.status) && (!known || !FINISHED.includes(known.status))) {
    loadJobs().catch((error) => console.warn(error.message));
  }
}

// Only while the socket is down: the running jobs asked for one by one, every few seconds.
function usePollingWhileOffline() {
  // A boolean: the socket's reconnect attempts (connecting, closed, connecting...) do not restart the timer.
  const live = useStore((s) => s.socket.state === "open");
  useEffect(() => {
    if (live) return undefined;
    const timer = setInterval(() => {
      for (const job of Object.values(getState().jobs)) {
        if (ACTIVE.includes(job.status)) api(`jobs/${job.id}`).then(mergeJob, (error) => console.warn(error.message));
      }
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [live]);
}

// -- small pieces -----------------------------------------------------------------------------------------
function fraction(progress) {
  const value = Number(progress) || 0;
  return value > 1 ? value / 100 : value; // the contract allows 0..1 or a percentage
}

export function ProgressBar({ progress, status }) {
  const share = status === "completed" ? 1 : fraction(progress);
  return html`<div class="progress" role="progressbar" aria-valuenow=${Math.round(share * 100)} aria-valuemin="0"
    aria-valuemax="100" data-progress=${share.toFixed(3)}><i class=${`p-${status}`} style=${{ width: `${share * 100}%` }}></i>
    <span>${Math.round(share * 100)}%</span></div>`;
}

// freqtrade writes UTC dates as "2024-01-02 03:04:05" (often with "+00:00"); the browser would read a bare one as local.
function utc(text) {
  if (!text) return null;
  const iso = String(text).replace(" ", "T");
  return /[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`;
}

const ratioPct = (value, digits = 2) => (value === null || value === undefined ? "–" : pct(Number(value) * 100, digits));

// Why a job ended without results, in its own words.
function Outcome({ job }) {
  if (!job) return null;
  if (job.status === "failed") {
    return html`<p class="outcome-line loss" data-outcome="failed"><b>Failed:</b> ${job.error || job.step || "no reason given"}</p>`;
  }
  if (job.status === "cancelled") {
    // The step says "cancelled before it started" for a queued job; the error names what the reaper found.
    const why = job.error ? `: ${job.error}` : job.step && job.step !== "cancelled" ? ` (${job.step})`
      : " on request: its freqtrade run was ended";
    return html`<p class="outcome-line warn" data-outcome="cancelled"><b>Cancelled</b>${why}.</p>`;
  }
  return null;
}

function CancelButton({ job, className = "small secondary" }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (!ACTIVE.includes(job.status) || job.cancel_requested) return null;
  const close = () => {
    setAsking(false);
    setError(null);
  };
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await api(`jobs/${job.id}/cancel`, { method: "POST" });
      mergeJob(answer.job);
      close();
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const what = `${job.kind} ${job.id}${(job.parameters || {}).strategy_name ? ` (${job.parameters.strategy_name})` : ""}`;
  return html`
    <button type="button" class=${className} onClick=${() => setAsking(true)} data-cancel-job=${job.id}>Cancel</button>
    ${asking ? html`
      <${ConfirmDialog} title=${`Cancel ${what}?`} confirmLabel="Cancel the job" cancelLabel="Keep it running" danger
        busy=${busy} onConfirm=${confirm} onCancel=${close}>
        <p>${job.status === "queued" ? "It is still queued: it will never start."
          : "Its freqtrade run is ended within seconds and the job ends cancelled."}
          ${job.kind === "hyperopt" ? " The epochs done so far stay readable." : " A backtest keeps no partial result."}</p>
        <${ErrorText} error=${error} />
      <//>` : null}`;
}

// -- launch forms -----------------------------------------------------------------------------------------
function lastDays(days) {
  const end = new Date();
  const start = new Date(end.getTime() - days * 86400_000);
  const day = (d) => d.toISOString().slice(0, 10).replaceAll("-", "");
  return `${day(start)}-${day(end)}`;
}

const COMMON_FIELDS = ["strategy_name", "timeframe", "timerange", "pairs", "stake_amount", "dry_run_wallet", "max_open_trades"];
const HYPEROPT_FIELDS = ["epochs", "spaces", "loss"];

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
    // A number field left empty takes the API's default; anything else goes as typed, for the API to judge.
    const number = (text) => (text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text);
    for (const name of ["stake_amount", "dry_run_wallet", "max_open_trades"]) if (form[name].trim() !== "") body[name] = number(form[name]);
    if (hyperopt) {
      if (form.epochs.trim() !== "") body.epochs = number(form.epochs);
      body.spaces = form.spaces.split(/[\s,]+/).filter(Boolean);
      if (form.loss) body.loss = form.loss;
    }
    try {
      const answer = await api(hyperopt ? "hyperopt/start" : "strategies/backtest", { method: "POST", body });
      const id = Number(answer.task_id);
      mergeJob({ id, kind, status: "queued", progress: 0, step: "queued", parameters: { ...body } });
      onStarted(id);
      loadJobs().catch((err) => console.warn(err.message));
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const shown = hyperopt ? [...COMMON_FIELDS, ...HYPEROPT_FIELDS] : COMMON_FIELDS;
  // What no field of the form stands for (a rule across fields, a field the form does not show): said by the button.
  const elsewhere = error ? Object.entries(error.fields || {})
    .filter(([key]) => !shown.some((name) => key === name || key.startsWith(`${name}.`)))
    .map(([key, messages]) => (key === "__all__" ? messages.join(" ") : `${key}: ${messages.join(" ")}`)) : [];
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
      ${field("pairs", "Pairs", html`<input name="pairs" value=${form.pairs} onInput=${set("pairs")} placeholder="BTC/USDT ETH/USDT" />`)}
      ${field("stake_amount", "Stake amount", html`<input name="stake_amount" inputmode="decimal" value=${form.stake_amount}
        onInput=${set("stake_amount")} />`)}
      ${field("dry_run_wallet", "Starting wallet", html`<input name="dry_run_wallet" inputmode="decimal" value=${form.dry_run_wallet}
        onInput=${set("dry_run_wallet")} />`)}
      ${field("max_open_trades", "Max open trades", html`<input name="max_open_trades" inputmode="numeric" value=${form.max_open_trades}
        onInput=${set("max_open_trades")} />`)}
      ${hyperopt ? html`
        ${field("epochs", "Epochs", html`<input name="epochs" inputmode="numeric" value=${form.epochs} onInput=${set("epochs")} />`)}
        ${field("spaces", "Spaces", html`<input name="spaces" value=${form.spaces} onInput=${set("spaces")} placeholder="buy sell roi" />`)}
        ${field("loss", "Loss", html`<select name="loss" value=${form.loss} onChange=${set("loss")}>
          ${(losses.data ? losses.data.losses : []).map((n) => html`<option value=${n}>${n}</option>`)}</select>`)}` : null}
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy || !form.strategy_name}>
          ${busy ? "Queuing…" : hyperopt ? "Start hyperopt" : "Start backtest"}</button>
        ${error && !Array.isArray(error.detail) ? html`<${ErrorText} error=${error} />` : null}
        ${elsewhere.length ? html`<p class="error" role="alert" data-form-error>${elsewhere.join("; ")}</p>` : null}
        <${ErrorText} error=${strategies.error} />
        ${strategies.data && !strategies.data.length ? html`<span class="muted">${hyperopt
          ? "No strategy with hyperoptable parameters is stored." : "No strategy is stored."}</span>` : null}
      </div>
    </form>`;
}

// -- the jobs -------------------------------------------------------------------------------------------
function JobList({ selected, onSelect }) {
  const jobs = useStore((s) => s.jobs);
  const list = Object.values(jobs).sort((a, b) => b.id - a.id);
  return html`
    <${Card} title="Jobs" id="jobs">
      ${list.length === 0 ? html`<${Empty}>No backtests or hyperopts yet.<//>` : html`
        <div class="table-wrap"><table class="compact responsive jobs">
          <thead><tr><th>#</th><th>Kind</th><th>Strategy</th><th>Range</th><th>Status</th><th>Progress</th><th>Created</th><th></th></tr></thead>
          <tbody>${list.map((job) => html`<tr data-job-id=${job.id} data-kind=${job.kind} class=${selected === job.id ? "selected" : ""}>
            <td data-label="#">${job.id}</td><td data-label="Kind">${job.kind}</td>
            <td data-label="Strategy" class="name">${(job.parameters || {}).strategy_name || "–"}</td>
            <td data-label="Range">${(job.parameters || {}).timeframe || ""} ${(job.parameters || {}).timerange || ""}</td>
            <td data-label="Status"><${StatusBadge} status=${job.status} /></td>
            <td data-label="Progress" class="progress-cell"><${ProgressBar} progress=${job.progress} status=${job.status} />
              <div class="muted small step" title=${job.error || ""}>${job.status === "failed" && job.error ? job.error : job.step || ""}</div></td>
            <td data-label="Created">${dateTime(job.created_at)}</td>
            <td class="actions">
              <button type="button" class="small" onClick=${() => onSelect(job.id)}>Open</button>
              <${CancelButton} job=${job} />
            </td></tr>`)}</tbody>
        </table></div>`}
    <//>`;
}

function Pager({ page, total, perPage, onPage }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (pages <= 1) return null;
  return html`<div class="pager">
    <button type="button" class="small secondary" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span class="muted small">page ${page} of ${pages}</span>
    <button type="button" class="small secondary" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next</button></div>`;
}

function Running({ job }) {
  if (!job || !ACTIVE.includes(job.status)) return null;
  return html`<div class="job-running"><${ProgressBar} progress=${job.progress} status=${job.status} />
    <span class="muted small">${job.step || job.status}${job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}</span>
    <${CancelButton} job=${job} /></div>`;
}

// -- a backtest's result ----------------------------------------------------------------------------------
function summaryFacts(s) {
  const cur = s.stake_currency || "";
  return [
    ["Trades", s.total_trades],
    ["Wins / draws / losses", `${s.wins ?? "–"} / ${s.draws ?? "–"} / ${s.losses ?? "–"}`],
    ["Win rate", ratioPct(s.winrate, 1)],
    ["Profit", html`<span class=${tone(s.profit_total_abs)}>${signed(s.profit_total_abs)} ${cur}</span>`],
    ["Profit %", html`<span class=${tone(s.profit_total)}>${ratioPct(s.profit_total)}</span>`],
    ["Wallet", `${num(s.starting_balance)} → ${num(s.final_balance)} ${cur}`],
    ["CAGR", ratioPct(s.cagr)],
    ["Profit factor", ratio(s.profit_factor)],
    ["Expectancy", `${num(s.expectancy, 4)} (ratio ${num(s.expectancy_ratio)})`],
    ["Max drawdown", `${ratioPct(s.max_drawdown_account)} (${num(s.max_drawdown_abs)} ${cur})`],
    ["Sharpe / Sortino / Calmar", html`${ratio(s.sharpe)} / ${ratio(s.sortino)} / ${ratio(s.calmar)}`],
    ["SQN", num(s.sqn)],
    ["Market change", ratioPct(s.market_change)],
    ["Period", `${s.backtest_start || "–"} → ${s.backtest_end || "–"} (${s.backtest_days ?? "–"} d)`],
  ];
}

function Facts({ rows }) {
  return html`<dl class="facts">${rows.map(([label, value]) => html`<div data-fact=${label}><dt>${label}</dt><dd>${value ?? "–"}</dd></div>`)}</dl>`;
}

// freqtrade's per-row figures (per pair, per exit reason) under their own keys; TOTAL is its own last row.
function ResultRows({ rows, first, id }) {
  const body = (rows || []).filter((r) => r.key !== "TOTAL");
  const total = (rows || []).find((r) => r.key === "TOTAL");
  const row = (r) => html`<tr data-key=${r.key}><td>${r.key}</td><td class="num">${r.trades}</td>
    <td class="num">${pct(r.profit_mean_pct)}</td>
    <td class=${`num ${tone(r.profit_total_abs)}`}>${signed(r.profit_total_abs)}</td>
    <td class="num">${ratioPct(r.profit_total)}</td><td class="num">${r.duration_avg || "–"}</td>
    <td class="num">${r.wins ?? "–"} / ${r.draws ?? "–"} / ${r.losses ?? "–"}</td><td class="num">${ratioPct(r.winrate, 1)}</td>
    <td class="num">${ratioPct(r.max_drawdown_account)}</td></tr>`;
  return html`<div class="table-wrap"><table class="compact" id=${id}>
    <thead><tr><th>${first}</th><th class="num">Trades</th><th class="num">Avg profit</th><th class="num">Profit</th>
      <th class="num">Profit %</th><th class="num">Avg duration</th><th class="num">W / D / L</th><th class="num">Win %</th>
      <th class="num">Drawdown</th></tr></thead>
    <tbody>${body.map(row)}</tbody>
    ${total ? html`<tfoot>${row(total)}</tfoot>` : null}
  </table></div>`;
}

// The cumulative profit after each closed trade, as the API adds up freqtrade's own trade profits;
// its first point (no date) is the backtest's start.
function equitySeries(data) {
  const summary = data.summary || {};
  const curve = (data.equity_curve || []).map((point) => ({ ...point, date: utc(point.date || summary.backtest_start) }))
    .filter((point) => point.date);
  const key = curve.length && curve[0].profit_abs !== undefined ? "profit_abs" : "balance";
  const name = key === "profit_abs" ? `cumulative profit (${summary.stake_currency || ""})` : `wallet (${summary.stake_currency || ""})`;
  return [{ name, data: points(curve, key) }];
}

function BacktestResult({ id }) {
  const job = useStore((s) => s.jobs[id]);
  const status = job ? job.status : "";
  const [page, setPage] = useState(1);
  const result = useLoad(() => api(`strategies/backtest/${id}`, { query: { page, per_page: TRADES_PER_PAGE } }), [id, status, page]);
  const data = result.data;
  const equity = useMemo(() => (data && data.summary ? equitySeries(data) : []), [data]);
  if (!data) return html`<${ErrorText} error=${result.error} />`;
  const summary = data.summary;
  const p = data.parameters;
  const shown = { ...data, ...(job || {}), error: data.error || (job && job.error) };
  return html`
    <${ErrorText} error=${result.error} />
    <p class="job-head">${[data.strategy_name, p.timeframe, p.timerange, (p.pairs || []).join(", "),
      `stake ${p.stake_amount} ${p.stake_currency}`].join(" · ")} · <${StatusBadge} status=${shown.status} /></p>
    <${Running} job=${job} />
    <${Outcome} job=${shown} />
    ${summary ? html`
      <section id="backtest-summary"><${Facts} rows=${summaryFacts(summary)} /></section>
      <h3>Equity curve</h3>
      <div id="equity-curve"><${LineChart} series=${equity} label="equity curve" /></div>
      <h3>Per pair</h3>
      <${ResultRows} rows=${data.results_per_pair} first="Pair" id="results-per-pair" />
      <h3>Exit reasons</h3>
      <${ResultRows} rows=${data.exit_reason_summary} first="Exit reason" id="exit-reasons" />
      <h3>Trades (${data.trades.total})</h3>
      <div class="table-wrap"><table class="compact" id="backtest-trades">
        <thead><tr><th>Pair</th><th>Open</th><th>Close</th><th class="num">Open rate</th><th class="num">Close rate</th>
          <th class="num">Stake</th><th class="num">Profit</th><th class="num">Profit %</th><th class="num">Minutes</th><th>Exit</th></tr></thead>
        <tbody>${data.trades.items.map((t, index) => html`<tr data-trade=${(page - 1) * TRADES_PER_PAGE + index}>
          <td>${t.pair}${t.is_short ? html` <span class="badge">short</span>` : null}</td>
          <td>${dateTime(utc(t.open_date))}</td><td>${dateTime(utc(t.close_date))}</td>
          <td class="num">${num(t.open_rate, digitsFor(t.open_rate))}</td><td class="num">${num(t.close_rate, digitsFor(t.close_rate))}</td>
          <td class="num">${num(t.stake_amount)}</td>
          <td class=${`num ${tone(t.profit_abs)}`}>${signed(t.profit_abs)}</td>
          <td class=${`num ${tone(t.profit_ratio)}`}>${ratioPct(t.profit_ratio)}</td>
          <td class="num">${t.trade_duration ?? "–"}</td><td>${t.exit_reason}</td></tr>`)}</tbody>
      </table></div>
      <${Pager} page=${page} total=${data.trades.total} perPage=${TRADES_PER_PAGE} onPage=${setPage} />`
      : FINISHED.includes(shown.status) ? null : html`<${Empty}>Results appear when the backtest completes.<//>`}`;
}

// -- a hyperopt's result -----------------------------------------------------------------------------------
// A parameter as freqtrade found it, without the float's noise (0.009000000000000001 reads 0.009).
const paramText = (value) => (typeof value === "number" ? String(Number(value.toPrecision(12)))
  : typeof value === "object" ? JSON.stringify(value) : String(value));
const compactParams = (params) => Object.entries(params || {}).map(([name, value]) => `${name}=${paramText(value)}`).join(", ");

function BestEpoch({ best, currency }) {
  const r = best.results || {};
  const rows = Object.entries(best.params_details || {}).flatMap(([space, values]) =>
    Object.entries(values || {}).map(([name, value]) => ({ space, name, value })));
  return html`
    <section id="best-epoch">
      <h3>Best epoch: ${best.epoch} (loss ${num(best.loss, 5)})</h3>
      <div class="columns">
        <div class="table-wrap"><table class="compact" id="best-params">
          <thead><tr><th>Space</th><th>Parameter</th><th>Value</th></tr></thead>
          <tbody>${rows.map((row) => html`<tr data-param=${row.name}><td>${row.space}</td><td>${row.name}</td>
            <td class="value">${paramText(row.value)}</td></tr>`)}</tbody>
        </table></div>
        <${Facts} rows=${[
          ["Trades", r.total_trades],
          ["Wins / draws / losses", `${r.wins ?? "–"} / ${r.draws ?? "–"} / ${r.losses ?? "–"}`],
          ["Profit", html`<span class=${tone(r.profit_total_abs)}>${signed(r.profit_total_abs)} ${currency}</span>`],
          ["Profit %", ratioPct(r.profit_total)],
          ["Avg profit", ratioPct(r.profit_mean)],
          ["Max drawdown", `${ratioPct(r.max_drawdown_account)} (${num(r.max_drawdown_abs)} ${currency})`],
          ["Profit factor", ratio(r.profit_factor)],
          ["Sharpe / Sortino / Calmar", html`${ratio(r.sharpe)} / ${ratio(r.sortino)} / ${ratio(r.calmar)}`],
        ]} />
      </div>
      ${Object.keys(best.params_not_optimized || {}).length ? html`<details class="not-optimized">
        <summary class="muted small">Not optimized (the strategy's own values)</summary>
        <pre class="log">${JSON.stringify(best.params_not_optimized, null, 2)}</pre></details>` : null}
    </section>`;
}

function HyperoptResult({ id }) {
  const job = useStore((s) => s.jobs[id]);
  const key = job ? `${job.status}:${job.progress}` : "";
  const [page, setPage] = useState(1);
  const result = useLoad(() => api(`hyperopt/results/${id}`, { query: { page, per_page: EPOCHS_PER_PAGE } }), [id, key, page]);
  const data = result.data;
  if (!data) return html`<${ErrorText} error=${result.error} />`;
  const best = data.best_result;
  const p = data.parameters;
  const shown = { ...data, ...(job || {}), error: data.error || (job && job.error) };
  const epochs = data.epochs || { items: [], total: 0 };
  const currency = p.stake_currency || "";
  return html`
    <${ErrorText} error=${result.error} />
    <p class="job-head">${[data.strategy_name, p.timeframe, p.timerange, (p.pairs || []).join(", "), p.loss,
      `spaces ${(p.spaces || []).join(" ")}`].join(" · ")} · epochs <b data-epochs-done>${data.epochs_done}</b>
      ${" "}of ${data.epochs_total} · <${StatusBadge} status=${shown.status} /></p>
    <${Running} job=${job} />
    <${Outcome} job=${shown} />
    ${best ? html`<${BestEpoch} best=${best} currency=${currency} />`
      : FINISHED.includes(shown.status) ? null : html`<${Empty}>No epoch finished yet.<//>`}
    ${epochs.total ? html`
      <h3>Epochs (${epochs.total}, lowest loss first)</h3>
      <div class="table-wrap"><table class="compact" id="epochs">
        <thead><tr><th class="num">Epoch</th><th class="num">Loss</th><th class="num">Trades</th><th class="num">W / D / L</th>
          <th class="num">Avg profit</th><th class="num">Profit</th><th class="num">Profit %</th><th class="num">Drawdown</th>
          <th>Parameters</th></tr></thead>
        <tbody>${epochs.items.map((e) => {
          const r = e.results || {};
          return html`<tr data-epoch=${e.epoch} class=${best && e.epoch === best.epoch ? "selected" : ""}>
            <td class="num">${e.epoch}${e.is_best ? html` <span class="best" title="a new best when it ran">★</span>` : null}</td>
            <td class="num">${num(e.loss, 5)}</td><td class="num">${r.total_trades ?? "–"}</td>
            <td class="num">${r.wins ?? "–"} / ${r.draws ?? "–"} / ${r.losses ?? "–"}</td>
            <td class="num">${ratioPct(r.profit_mean)}</td>
            <td class=${`num ${tone(r.profit_total_abs)}`}>${signed(r.profit_total_abs)}</td>
            <td class="num">${ratioPct(r.profit_total)}</td><td class="num">${ratioPct(r.max_drawdown_account)}</td>
            <td class="params">${compactParams(e.params)}</td></tr>`;
        })}</tbody>
      </table></div>
      <${Pager} page=${page} total=${epochs.total} perPage=${EPOCHS_PER_PAGE} onPage=${setPage} />` : null}`;
}

// -- the page -------------------------------------------------------------------------------------------
function JobDetail({ id }) {
  const job = useStore((s) => s.jobs[id]);
  // A job not in the list (an old one, opened by its address): asked for once, to learn its kind.
  const fetched = useLoad(() => (job ? Promise.resolve(null) : api(`jobs/${id}`).then(mergeJob)), [id]);
  if (!job) return html`<${ErrorText} error=${fetched.error} />`;
  return job.kind === "hyperopt" ? html`<${HyperoptResult} id=${id} />` : html`<${BacktestResult} id=${id} />`;
}

export function ResearchPage({ id = null }) {
  const [kind, setKind] = useState("backtest");
  usePollingWhileOffline();
  const select = (jobId) => {
    location.hash = `#/research/${jobId}`;
  };
  return html`
    <div class="page-head"><h1>Research</h1>
      <div class="segmented" role="group" aria-label="kind">${["backtest", "hyperopt"].map((k) => html`
        <button type="button" class=${k === kind ? "on" : ""} onClick=${() => setKind(k)}>${k}</button>`)}</div></div>
    <${Card} title=${kind === "hyperopt" ? "New hyperopt" : "New backtest"} id="job-form">
      <${JobForm} key=${kind} kind=${kind} onStarted=${select} />
    <//>
    <${JobList} selected=${id} onSelect=${select} />
    ${id ? html`<${Card} title=${`Job ${id}`} id="job-result" actions=${html`<a href="#/research" class="small">Close</a>`}>
      <${JobDetail} key=${id} id=${id} />
    <//>` : null}`;
}
