// Prints bench/run.ts --json results side by side, with each figure's ratio to the first
// server's: node --import tsx bench/table.ts Switchboard=a.json Prosody=b.json ejabberd=c.json
// A server whose file is missing (its run failed) shows "-".
import { existsSync, readFileSync } from 'node:fs';
import type { Results } from './scenarios.js';

interface PubsubFigures {
  notificationsPerSecond: number;
  latency: { p50Ms: number; p99Ms: number };
}

/** bench/run.ts results, plus bench/pubsub.ts results under `pubsub` (bench/workers.sh merges them). */
type Figures = Partial<Results> & {
  pubsub?: { flat?: PubsubFigures; collection?: PubsubFigures };
  /** The server's CPU time per 1000 messages or notifications (bench/workers.sh). */
  serverCpu?: { messagingMsPer1000: number; pubsubMsPer1000: number };
};

interface Metric {
  label: string;
  /** ↑: more is better (a ratio above 1 favours the first server); ↓: less is better. */
  better: '↑' | '↓';
  pick: (results: Figures) => number | undefined;
}

const METRICS: Metric[] = [
  { label: 'logins/s', better: '↑', pick: (r) => r.login?.loginsPerSecond },
  { label: 'login p50 ms', better: '↓', pick: (r) => r.login?.latency.p50Ms },
  { label: 'login p99 ms', better: '↓', pick: (r) => r.login?.latency.p99Ms },
  { label: 'msgs/s', better: '↑', pick: (r) => r.messaging?.messagesPerSecond },
  { label: 'message p50 ms', better: '↓', pick: (r) => r.messaging?.latency.p50Ms },
  { label: 'message p99 ms', better: '↓', pick: (r) => r.messaging?.latency.p99Ms },
  { label: 'KiB/session', better: '↓', pick: (r) => r.memory?.kibPerSession },
  { label: 'pubsub flat notif/s', better: '↑', pick: (r) => r.pubsub?.flat?.notificationsPerSecond },
  { label: 'pubsub flat p99 ms', better: '↓', pick: (r) => r.pubsub?.flat?.latency.p99Ms },
  { label: 'pubsub collection notif/s', better: '↑', pick: (r) => r.pubsub?.collection?.notificationsPerSecond },
  { label: 'pubsub collection p99 ms', better: '↓', pick: (r) => r.pubsub?.collection?.latency.p99Ms },
  { label: 'server CPU ms/1000 msgs', better: '↓', pick: (r) => r.serverCpu?.messagingMsPer1000 },
  { label: 'server CPU ms/1000 notif', better: '↓', pick: (r) => r.serverCpu?.pubsubMsPer1000 },
];

const servers = process.argv.slice(2).map((arg) => {
  const [name, file] = arg.split('=') as [string, string];
  const results: Figures = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  return { name, results };
});
const [reference, ...others] = servers;
if (!reference) throw new Error('usage: table.ts Name=results.json ...');

const header = ['', ...servers.map((s) => s.name), ...others.map((o) => `${reference.name}/${o.name}`)];
// A figure no run measured (e.g. memory without --pid) has no row.
const rows = METRICS.filter((metric) => servers.some((s) => metric.pick(s.results) !== undefined)).map((metric) => {
  const values = servers.map((s) => metric.pick(s.results));
  const ratios = others.map((_, i) => {
    const [mine, theirs] = [values[0], values[i + 1]];
    return mine === undefined || theirs === undefined || theirs === 0 ? '-' : `${(mine / theirs).toFixed(2)}x`;
  });
  return [`${metric.label} ${metric.better}`, ...values.map((v) => (v === undefined ? '-' : String(v))), ...ratios];
});

const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column]!.length)));
for (const row of [header, ...rows]) {
  console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));
}
