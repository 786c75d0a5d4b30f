// The node's statistics with `workers`: every worker is a whole server with its own metrics,
// and node:cluster hands each connection (an HTTP scrape of /metrics too) to any worker. So a
// worker asked for statistics asks the primary, which asks every worker for its report over
// the process channel and returns those that answered; the asking worker combines them
// (core/metrics.ts, prom-client's AggregatorRegistry). prom-client's own cluster support does
// the asking from the primary only, which holds no HTTP listener here, hence this relay.
import type { Metrics, MetricsReport, NodeReports } from '../core/metrics.js';

/** How long the primary waits for the workers' reports; a worker waits a little longer for the primary. */
const REPORT_TIMEOUT_MS = 3000;
const ANSWER_TIMEOUT_MS = REPORT_TIMEOUT_MS + 2000;

/** A worker asks the primary for the node's reports. */
interface NodeMetricsRequest { sb: 'metrics?'; id: number }
/** The primary's answer to it. */
interface NodeMetricsAnswer extends NodeReports { sb: 'metrics'; id: number }
/** The primary asks a worker for its report, which it sends back. */
interface ReportRequest { sb: 'metrics-report?'; id: number }
interface Report { sb: 'metrics-report'; id: number; report: MetricsReport }

// --- the worker's side --------------------------------------------------------------------

/**
 * Makes this worker's statistics the node's, and answers the primary's report requests.
 * Returns the undoing (the statistics written at the worker's stop are its own).
 */
export function nodeWideMetrics(metrics: Metrics, onFailure: (error: Error) => void): () => void {
  const waiting = new Map<number, (answer: NodeMetricsAnswer) => void>();
  let next = 0;
  const send = (message: NodeMetricsRequest | Report) => { if (process.send && process.connected) process.send(message); };
  const onMessage = (m: unknown) => {
    const message = m as ReportRequest | NodeMetricsAnswer | null;
    if (message?.sb === 'metrics-report?' && typeof message.id === 'number') {
      const id = message.id;
      metrics.report().then((report) => send({ sb: 'metrics-report', id, report }), (e: unknown) => onFailure(e as Error));
    } else if (message?.sb === 'metrics' && typeof message.id === 'number') {
      waiting.get(message.id)?.(message);
    }
  };
  process.on('message', onMessage);
  metrics.aggregateWith(() => new Promise<NodeReports>((resolve, reject) => {
    if (!process.send || !process.connected) { reject(new Error('no channel to the primary')); return; }
    const id = next++;
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`the primary did not answer within ${ANSWER_TIMEOUT_MS} ms`)); }, ANSWER_TIMEOUT_MS);
    waiting.set(id, ({ reports, workers }) => { clearTimeout(timer); waiting.delete(id); resolve({ reports, workers }); });
    send({ sb: 'metrics?', id });
  }), onFailure);
  return () => {
    process.off('message', onMessage);
    metrics.aggregateWith(undefined);
  };
}

// --- the primary's side -------------------------------------------------------------------

interface Gathering {
  reports: MetricsReport[];
  awaited: Set<number>;
  finish(): void;
}

export class NodeMetricsRelay {
  private next = 0;
  private readonly gatherings = new Map<number, Gathering>();

  /** `count`: the node's workers; `workers` gives each serving one's number and a way to send to it. */
  constructor(
    private readonly count: number,
    private readonly workers: () => Map<number, (message: unknown) => void>,
    private readonly timeoutMs = REPORT_TIMEOUT_MS,
  ) {}

  /** Handles a worker's message about metrics (true), or leaves it (false). */
  received(worker: number, m: unknown, reply: (message: unknown) => void): boolean {
    const message = m as NodeMetricsRequest | Report | null;
    if (message?.sb === 'metrics?' && typeof message.id === 'number') {
      const id = message.id;
      void this.gather().then((node) => reply({ sb: 'metrics', id, ...node } satisfies NodeMetricsAnswer));
      return true;
    }
    if (message?.sb === 'metrics-report' && typeof message.id === 'number') {
      const gathering = this.gatherings.get(message.id);
      if (gathering?.awaited.delete(worker)) {
        gathering.reports.push(message.report);
        if (gathering.awaited.size === 0) gathering.finish();
      }
      return true;
    }
    return false;
  }

  /** A worker exited: no report will come from it. */
  gone(worker: number): void {
    for (const gathering of this.gatherings.values()) {
      if (gathering.awaited.delete(worker) && gathering.awaited.size === 0) gathering.finish();
    }
  }

  /** Every worker's report, or those that came within the timeout. */
  private gather(): Promise<NodeReports> {
    const workers = this.workers();
    const id = this.next++;
    return new Promise((resolve) => {
      const gathering: Gathering = {
        reports: [],
        awaited: new Set(workers.keys()),
        finish: () => {
          clearTimeout(timer);
          this.gatherings.delete(id);
          resolve({ reports: gathering.reports, workers: this.count });
        },
      };
      const timer = setTimeout(gathering.finish, this.timeoutMs);
      this.gatherings.set(id, gathering);
      if (workers.size === 0) { gathering.finish(); return; }
      for (const send of workers.values()) send({ sb: 'metrics-report?', id } satisfies ReportRequest);
    });
  }
}
