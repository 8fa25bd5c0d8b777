// Time-series charts (uPlot, bundled): anomaly rate and drift per model.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Series } from './api';

const COLORS = ['#d9480f', '#1c7ed6', '#2b8a3e', '#862e9c', '#e67700', '#0b7285'];

// Axes in UTC, as every time on the dashboard.
const utc = (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');

// The points uPlot would leave out as too dense, except lone values: a bucket with no value on
// either side has no line to draw, so without its point it would not show at all (a site seen
// for one hour, on a chart of seven days).
export function lonePoints(u: uPlot, seriesIdx: number, show: boolean): number[] | null {
  if (show) return null;
  const ys = u.data[seriesIdx];
  const lone: number[] = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] == null) continue;
    if ((i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) lone.push(i);
  }
  return lone.length > 0 ? lone : null;
}

function width(container: HTMLElement): number {
  return Math.max(320, Math.min(1100, container.clientWidth || 800));
}

// Anomaly rate (anomalies / rows, from the aggregates) per bucket, one line per model.
export function anomalyChart(container: HTMLElement, series: Series): uPlot | null {
  if (series.models.length === 0) return null;
  const xs = series.models[0].buckets.map((b) => b.start_ms / 1000);
  const data: uPlot.AlignedData = [
    xs,
    ...series.models.map((m) => m.buckets.map((b) => (b.anomaly_rate === null ? null : b.anomaly_rate * 100))),
  ];
  const opts: uPlot.Options = {
    title: 'Anomaly rate (% of rows scored)',
    width: width(container),
    height: 260,
    tzDate: utc,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    series: [
      {},
      ...series.models.map((m, i) => ({
        label: m.model,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        fill: `${COLORS[i % COLORS.length]}22`,
        spanGaps: false,
        points: { size: 7, fill: COLORS[i % COLORS.length], filter: lonePoints },
        value: (_u: uPlot, v: number | null) => (v === null ? '—' : `${v.toFixed(2)} %`),
      })),
    ],
    axes: [{}, { label: '%', size: 60 }],
  };
  return new uPlot(opts, data, container);
}

// Drift: the largest PSI of each bucket per model, with the level line of the rules.
export function driftChart(container: HTMLElement, series: Series): uPlot | null {
  if (series.models.length === 0) return null;
  const xs = series.models[0].buckets.map((b) => b.start_ms / 1000);
  const levels = series.models.flatMap((m) => m.drift.map((d) => d.level ?? 0));
  const level = levels.length > 0 ? Math.min(...levels) : null;
  const data: uPlot.AlignedData = [xs, ...series.models.map((m) => m.buckets.map((b) => b.max_psi))];
  const lineSeries: uPlot.Series[] = series.models.map((m, i) => ({
    label: `${m.model} PSI`,
    stroke: COLORS[i % COLORS.length],
    width: 2,
    points: { show: true, size: 7, fill: COLORS[i % COLORS.length] },
    spanGaps: true,
  }));
  if (level !== null && level > 0) {
    data.push(xs.map(() => level));
    lineSeries.push({ label: 'level', stroke: '#868e96', dash: [6, 4], width: 1, points: { show: false } });
  }
  const opts: uPlot.Options = {
    title: 'Drift (largest PSI per bucket)',
    width: width(container),
    height: 260,
    tzDate: utc,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(0.5, (max ?? 0) * 1.1)] } },
    series: [{}, ...lineSeries],
    axes: [{}, { label: 'PSI', size: 60 }],
  };
  return new uPlot(opts, data, container);
}
