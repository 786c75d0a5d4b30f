// Statistics: counters and gauges per component, exported in the Prometheus text format
// (`GET /metrics`) and as a JSON snapshot (the ad-hoc "Get statistics" command, the admin UI,
// the statistics written at graceful shutdown). One registry per server, so that two servers in
// one process (tests) count apart; the process's own figures (memory, CPU, event-loop lag, GC)
// come from prom-client's default collectors, registered once per process.
//
// With `workers`, each worker process has its own registry, and a reader wants the node's
// figures: `aggregateWith` gives the Metrics a way to fetch every worker's values (its
// `report()`, over the primary: cluster/worker-metrics.ts), which prom-client's
// AggregatorRegistry combines metric by metric with each one's `aggregator` (a sum unless
// the metric says otherwise).
import client from 'prom-client';

/** Every server metric's name starts with this; modules give the rest. */
export const METRIC_PREFIX = 'switchboard_';

export interface MetricOptions<L extends string> {
  /** Without the `switchboard_` prefix, which is added; counters end in `_total` by convention. */
  name: string;
  help: string;
  labelNames?: readonly L[];
  /**
   * How the values of several worker processes combine into the node's: `sum` (the default, right
   * for counts), `max`, `min`, `average`, `first` (the same value everywhere) or `omit`.
   */
  aggregator?: client.Aggregator;
}

export interface CounterOptions<L extends string> extends MetricOptions<L> {
  /** Called at every read: sets the counter from a count kept elsewhere (reset, then inc). */
  collect?: (counter: client.Counter<L>) => void;
}

export interface GaugeOptions<L extends string> extends MetricOptions<L> {
  /** Called at every read (scrape, snapshot): sets the gauge from live state, e.g. a map's size. */
  collect?: (gauge: client.Gauge<L>) => void | Promise<void>;
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  buckets?: number[];
}

/** One value of the snapshot: a counter or gauge per label set (histograms give `_sum` and `_count`). */
export interface MetricSample {
  name: string;
  type: string;
  help: string;
  labels: Record<string, string | number>;
  value: number;
}

/** One process's values, as `getMetricsAsJSON` gives them: the server's, and Node's own. */
export interface MetricsReport {
  server: client.MetricObjectWithValues<client.MetricValue<string>>[];
  process: client.MetricObjectWithValues<client.MetricValue<string>>[];
}

/** Every worker's report (those that answered), and how many workers there are. */
export interface NodeReports {
  reports: MetricsReport[];
  workers: number;
}

let processRegistry: client.Registry | undefined;

/** Node's process metrics, collected once per process whatever the number of servers. */
function processMetrics(): client.Registry {
  if (!processRegistry) {
    processRegistry = new client.Registry();
    client.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class Metrics {
  private readonly registry = new client.Registry();
  private gatherNode: (() => Promise<NodeReports>) | undefined;
  private onGatherFailure: ((error: Error) => void) | undefined;

  /** Creates a counter, or returns the one of that name (a module set up twice, two modules sharing it). */
  counter<L extends string = never>(options: CounterOptions<L>): client.Counter<L> {
    const collect = options.collect;
    return this.existing(options.name, 'counter') ?? new client.Counter<L>({
      ...this.base(options),
      ...(collect ? { collect(this: client.Counter<L>) { collect(this); } } : {}),
    });
  }

  gauge<L extends string = never>(options: GaugeOptions<L>): client.Gauge<L> {
    const collect = options.collect;
    return this.existing(options.name, 'gauge') ?? new client.Gauge<L>({
      ...this.base(options),
      ...(collect ? { collect(this: client.Gauge<L>) { return collect(this); } } : {}),
    });
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): client.Histogram<L> {
    return this.existing(options.name, 'histogram') ?? new client.Histogram<L>({ ...this.base(options), ...(options.buckets ? { buckets: options.buckets } : {}) });
  }

  /**
   * Counters for a hot path (every stanza): a plain object of numbers, one field per label value,
   * incremented with `++` and copied into the exported counter only when it is read. prom-client's
   * own `inc(labels)` hashes the labels on every call, which this avoids.
   */
  fastCounters<K extends string>(options: { name: string; help: string; label: string; values: readonly K[] }): Record<K, number> {
    const counts = Object.fromEntries(options.values.map((v) => [v, 0])) as Record<K, number>;
    const existing = this.registry.getSingleMetric(METRIC_PREFIX + options.name);
    if (existing) throw new Error(`metric ${options.name} is already registered`);
    new client.Counter<string>({
      ...this.base({ name: options.name, help: options.help, labelNames: [options.label] }),
      collect(this: client.Counter<string>) {
        this.reset();
        for (const v of options.values) this.inc({ [options.label]: v }, counts[v]);
      },
    });
    return counts;
  }

  /**
   * From now on, reads (`text`, `snapshot`) show the whole node: `gather` fetches every worker's
   * report. When it fails (the primary gone, a timeout), the read shows this process alone and
   * `onFailure` hears why. `undefined` goes back to this process alone.
   */
  aggregateWith(gather: (() => Promise<NodeReports>) | undefined, onFailure?: (error: Error) => void): void {
    this.gatherNode = gather;
    this.onGatherFailure = onFailure;
  }

  /** This process's values, for the node's aggregate. */
  async report(): Promise<MetricsReport> {
    return { server: await this.registry.getMetricsAsJSON(), process: await processMetrics().getMetricsAsJSON() };
  }

  /** The Prometheus text exposition of this server's metrics and the process's (the node's, with workers). */
  async text(): Promise<string> {
    const { server, process } = await this.readable();
    return client.Registry.merge([server, process]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Every value as a flat list, server metrics first. Histogram buckets are left out (their
   * `_sum` and `_count` stay): a person reading statistics wants totals, not bucket bounds.
   */
  async snapshot(options: { process?: boolean; local?: boolean } = {}): Promise<MetricSample[]> {
    const { server, process } = await this.readable(options.local);
    const registries = options.process === false ? [server] : [server, process];
    const out: MetricSample[] = [];
    for (const r of registries) {
      for (const m of await r.getMetricsAsJSON()) {
        for (const v of m.values as { labels: Record<string, string | number>; value: number; metricName?: string }[]) {
          const name = v.metricName ?? m.name;
          if (name.endsWith('_bucket')) continue;
          out.push({ name, type: String(m.type), help: m.help, labels: { ...v.labels }, value: v.value });
        }
      }
    }
    return out;
  }

  /**
   * The registries a read shows: this process's, or (`aggregateWith`) the node's, built from the
   * workers' reports with a gauge of how many answered, so that a partial sum shows as such.
   */
  private async readable(local = false): Promise<{ server: client.Registry; process: client.Registry }> {
    const own = { server: this.registry, process: processMetrics() };
    if (!this.gatherNode || local) return own;
    let node: NodeReports;
    try {
      node = await this.gatherNode();
    } catch (e) {
      this.onGatherFailure?.(e as Error);
      return own;
    }
    const server = client.AggregatorRegistry.aggregate(node.reports.map((r) => r.server)) as client.Registry;
    const process = client.AggregatorRegistry.aggregate(node.reports.map((r) => r.process)) as client.Registry;
    const reporting = new client.Gauge({ name: `${METRIC_PREFIX}workers_reporting`, help: 'Worker processes whose figures are in these totals', registers: [server] });
    reporting.set(node.reports.length);
    new client.Gauge({ name: `${METRIC_PREFIX}workers`, help: 'Worker processes of this node', registers: [server] }).set(node.workers);
    return { server, process };
  }

  private existing<M>(name: string, type: string): M | undefined {
    const m = this.registry.getSingleMetric(METRIC_PREFIX + name);
    if (!m) return undefined;
    const found = (m as unknown as { type: string }).type;
    if (found !== type) throw new Error(`metric ${name} is already registered as a ${found}`);
    return m as unknown as M;
  }

  private base<L extends string>(options: MetricOptions<L>): { name: string; help: string; labelNames: L[]; registers: client.Registry[]; aggregator: client.Aggregator } {
    return { name: METRIC_PREFIX + options.name, help: options.help, labelNames: [...(options.labelNames ?? [])], registers: [this.registry], aggregator: options.aggregator ?? 'sum' };
  }
}

/** One sample as a line: `name{label="value"} value`, as in the Prometheus text format. */
export function formatSample(s: MetricSample): string {
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return `${s.name}${labels ? `{${labels}}` : ''} ${s.value}`;
}
