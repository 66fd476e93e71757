// Line charts (TradingView lightweight-charts): profit series by day, equity curves by time.

import { html, useEffect, useRef } from "../vendor/htm/standalone.module.js";
import { createChart, LineSeries } from "../vendor/lightweight-charts/lightweight-charts.standalone.production.mjs";
import { digitsFor } from "./ui.js";

export const PALETTE = ["#2f81f7", "#e3b341", "#3fb950", "#db61a2", "#a371f7", "#f0883e", "#56d4dd", "#ff7b72"];

// A day "YYYY-MM-DD" is a business day for the chart; anything else becomes UTC epoch seconds.
function chartTime(value) {
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value;
  const ms = typeof value === "number" ? (value > 1e12 ? value : value * 1000) : Date.parse(value);
  return Math.floor(ms / 1000);
}

// The chart wants ascending, unique times: the last value of a time wins.
export function points(rows, valueKey) {
  const byTime = new Map();
  for (const row of rows || []) {
    const value = Number(row[valueKey]);
    if (Number.isFinite(value)) byTime.set(chartTime(row.date), value);
  }
  const key = (t) => (typeof t === "string" ? Date.parse(t) / 1000 : t);
  return [...byTime.entries()].sort((a, b) => key(a[0]) - key(b[0])).map(([time, value]) => ({ time, value }));
}

// series: [{name, data: [{time, value}]}]
export function LineChart({ series, height = 260, label = "chart" }) {
  const box = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    const styles = getComputedStyle(document.documentElement);
    chart.current = createChart(box.current, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: styles.getPropertyValue("--muted").trim() || "#8b949e",
        attributionLogo: false },
      grid: { vertLines: { color: "rgba(128,128,128,0.12)" }, horzLines: { color: "rgba(128,128,128,0.12)" } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, timeVisible: true },
    });
    return () => {
      chart.current.remove();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    const target = chart.current;
    const added = series.filter((s) => s.data.length).map((s, index) => {
      const largest = Math.max(...s.data.map((p) => Math.abs(p.value)));
      const precision = digitsFor(largest || 0);
      const line = target.addSeries(LineSeries, { color: s.color || PALETTE[index % PALETTE.length], lineWidth: 2,
        title: s.name, priceLineVisible: false,
        priceFormat: { type: "price", precision, minMove: 10 ** -precision } });
      line.setData(s.data);
      return line;
    });
    target.timeScale().fitContent();
    return () => added.forEach((line) => chart.current && chart.current.removeSeries(line));
  }, [series]);
  const empty = !series.some((s) => s.data.length);
  return html`
    <div class="chart-box" style=${{ height: `${height}px` }} aria-label=${label}>
      <div class="chart" ref=${box}></div>
      ${empty ? html`<div class="chart-empty">No data in this window.</div>` : null}
      ${series.length > 1 ? html`<div class="legend">${series.map((s, index) => html`
        <span><i style=${{ background: s.color || PALETTE[index % PALETTE.length] }}></i>${s.name}</span>`)}</div>` : null}
    </div>`;
}
