// The recent history behind the admin UI's live charts: every `interval` the server's metrics
// snapshot (core/metrics.ts) is reduced to a few series (sessions, connections, stanza rates,
// memory, event-loop lag, ...) and kept for the last POINTS samples, in memory. Counters become
// rates (per second, or per minute for rare events) between two samples.
import type { MetricSample } from '../../core/metrics.js';

export interface SeriesSpec {
  key: string;
  label: string;
  /** Metric name as exported (values of every label set are added up). */
  metric: string;
  /** gauge: the value; rate: increase per `per` seconds since the previous sample. */
  kind: 'gauge' | 'rate';
  per?: number;
  unit?: 'bytes' | 'seconds';
}

export const SERIES: SeriesSpec[] = [
  { key: 'sessions', label: 'Sessions', metric: 'switchboard_sessions', kind: 'gauge' },
  { key: 'connections', label: 'Connections', metric: 'switchboard_connections', kind: 'gauge' },
  { key: 'stanzas-in', label: 'Stanzas in per second', metric: 'switchboard_stanzas_in_total', kind: 'rate' },
  { key: 'stanzas-out', label: 'Stanzas out per second', metric: 'switchboard_stanzas_out_total', kind: 'rate' },
  { key: 'logins', label: 'Logins per minute', metric: 'switchboard_logins_total', kind: 'rate', per: 60 },
  { key: 'auth-failures', label: 'Failed logins per minute', metric: 'switchboard_auth_failures_total', kind: 'rate', per: 60 },
  { key: 'pubsub-notifications', label: 'PubSub notifications per second', metric: 'switchboard_pubsub_notifications_total', kind: 'rate' },
  { key: 'offline-stored', label: 'Offline messages stored per minute', metric: 'switchboard_offline_messages_stored_total', kind: 'rate', per: 60 },
  { key: 'output-queue', label: 'Output queued', metric: 'switchboard_output_queue', kind: 'gauge', unit: 'bytes' },
  { key: 'memory', label: 'Memory (resident)', metric: 'process_resident_memory_bytes', kind: 'gauge', unit: 'bytes' },
  { key: 'event-loop-lag', label: 'Event-loop lag (p99)', metric: 'nodejs_eventloop_lag_p99_seconds', kind: 'gauge', unit: 'seconds' },
];

/** Samples kept per series. */
export const POINTS = 120;

export interface SeriesView {
  key: string;
  label: string;
  /** Latest value, formatted; '–' before there is one. */
  latest: string;
  /** The SVG polyline's points in a WIDTH×HEIGHT box, oldest left. */
  points: string;
  /** Highest value in the window, formatted (the top of the chart). */
  max: string;
}

export const WIDTH = 240;
export const HEIGHT = 48;

function total(samples: MetricSample[], metric: string): number | undefined {
  let sum: number | undefined;
  for (const s of samples) if (s.name === metric && Number.isFinite(s.value)) sum = (sum ?? 0) + s.value;
  return sum;
}

export function formatValue(value: number | undefined, unit?: SeriesSpec['unit']): string {
  if (value === undefined) return '–';
  if (unit === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let v = value;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }
  if (unit === 'seconds') return value < 1 ? `${(value * 1000).toFixed(1)} ms` : `${value.toFixed(2)} s`;
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
}

export class ChartHistory {
  private readonly values = new Map<string, (number | undefined)[]>(SERIES.map((s) => [s.key, []]));
  private previous?: { at: number; totals: Map<string, number | undefined> };

  /** Adds one sample taken at `at` (ms). */
  add(samples: MetricSample[], at: number): void {
    const totals = new Map(SERIES.map((s) => [s.metric, total(samples, s.metric)]));
    for (const spec of SERIES) {
      const now = totals.get(spec.metric);
      let value: number | undefined = now;
      if (spec.kind === 'rate') {
        const before = this.previous?.totals.get(spec.metric);
        const seconds = this.previous ? (at - this.previous.at) / 1000 : 0;
        // A counter that went down was reset (a restart of what it counts): no rate for that step.
        value = now === undefined || before === undefined || seconds <= 0 || now < before ? undefined : ((now - before) / seconds) * (spec.per ?? 1);
      }
      const list = this.values.get(spec.key)!;
      list.push(value);
      if (list.length > POINTS) list.shift();
    }
    this.previous = { at, totals };
  }

  view(): SeriesView[] {
    return SERIES.map((spec) => {
      const list = this.values.get(spec.key)!;
      const known = list.filter((v): v is number => v !== undefined);
      const max = Math.max(0, ...known);
      const step = WIDTH / (POINTS - 1);
      const offset = POINTS - list.length;
      const points = list.flatMap((v, i) => (v === undefined ? [] : [
        `${((offset + i) * step).toFixed(1)},${(HEIGHT - 2 - (max > 0 ? (v / max) * (HEIGHT - 4) : 0)).toFixed(1)}`,
      ])).join(' ');
      return { key: spec.key, label: spec.label, latest: formatValue(list[list.length - 1], spec.unit), points, max: formatValue(known.length ? max : undefined, spec.unit) };
    });
  }
}
