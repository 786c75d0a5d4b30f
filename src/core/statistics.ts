// The core's own statistics: connections by transport, sessions, stanzas in and out by kind,
// authentications, queue lengths and work in flight. Registered on the server's metrics
// (core/metrics.ts) next to what modules register. Per-stanza counting is a `++` on a plain
// field (see Metrics.fastCounters); live figures (open connections, queues) are computed from
// the open streams when the statistics are read, so they cost nothing in between.
import type { Metrics } from './metrics.js';

/** What the statistics need to know of an open client stream. */
export interface CountedStream {
  /** 'tcp', 'websocket', 'bosh' (StreamTransport.kind). */
  readonly transportKind: string;
  /** Stanzas received and not yet handled. */
  readonly pendingInput: number;
  /** Output accepted but not yet written to the network (bytes, or elements for BOSH). */
  readonly pendingOutput: number;
}

export const TRANSPORTS = ['tcp', 'websocket', 'bosh'] as const;
const STANZA_KINDS = ['message', 'presence', 'iq'] as const;
type StanzaKind = (typeof STANZA_KINDS)[number];

export class CoreStatistics {
  /** Stanzas received from bound clients, by kind: `stanzasIn.message++`. */
  readonly stanzasIn: Record<StanzaKind, number>;
  /** Stanzas delivered to local sessions, by kind. */
  readonly stanzasOut: Record<StanzaKind, number>;
  private readonly streams = new Set<CountedStream>();
  private readonly accepted: Record<string, number>;
  private readonly authFailures;
  private readonly logins;

  constructor(metrics: Metrics, live: { sessions: () => number; inFlight: () => number }) {
    this.stanzasIn = metrics.fastCounters({ name: 'stanzas_in_total', help: 'Stanzas received from bound client sessions, by kind', label: 'type', values: STANZA_KINDS });
    this.stanzasOut = metrics.fastCounters({ name: 'stanzas_out_total', help: 'Stanzas sent to local client sessions, by kind', label: 'type', values: STANZA_KINDS });
    this.accepted = metrics.fastCounters({ name: 'connections_total', help: 'Client connections accepted since start, by transport', label: 'transport', values: [...TRANSPORTS, 'other'] });
    this.authFailures = metrics.counter({ name: 'auth_failures_total', help: 'Failed authentications (wrong credentials or refused account), by mechanism', labelNames: ['mechanism'] });
    this.logins = metrics.counter({ name: 'logins_total', help: 'Successful authentications' });
    const streams = this.streams;
    metrics.gauge({
      name: 'connections', help: 'Open client connections, by transport', labelNames: ['transport'],
      collect(g) {
        const open: Record<string, number> = { tcp: 0, websocket: 0, bosh: 0 };
        for (const s of streams) open[s.transportKind] = (open[s.transportKind] ?? 0) + 1;
        g.reset();
        for (const [transport, n] of Object.entries(open)) g.set({ transport }, n);
      },
    });
    metrics.gauge({ name: 'sessions', help: 'Client sessions (resources) bound on this node', collect: (g) => { g.set(live.sessions()); } });
    metrics.gauge({
      name: 'input_queue_stanzas', help: 'Stanzas received and waiting to be handled, all connections together',
      collect(g) { let n = 0; for (const s of streams) n += s.pendingInput; g.set(n); },
    });
    metrics.gauge({
      name: 'output_queue', help: 'Output not yet written to the network, all connections together (bytes; queued elements for BOSH)',
      collect(g) { let n = 0; for (const s of streams) n += s.pendingOutput; g.set(n); },
    });
    metrics.gauge({
      name: 'output_queue_max', help: 'The longest output queue of one connection (bytes; queued elements for BOSH)', aggregator: 'max',
      collect(g) { let n = 0; for (const s of streams) n = Math.max(n, s.pendingOutput); g.set(n); },
    });
    metrics.gauge({ name: 'work_in_flight', help: 'Stanza handling and background work under way', collect: (g) => { g.set(live.inFlight()); } });
  }

  streamOpened(stream: CountedStream): void {
    this.streams.add(stream);
    const kind = stream.transportKind;
    if (kind in this.accepted) this.accepted[kind]!++;
    else this.accepted.other!++;
  }

  streamClosed(stream: CountedStream): void {
    this.streams.delete(stream);
  }

  /** Open client connections now. */
  get openStreams(): number {
    return this.streams.size;
  }

  authFailed(mechanism: string): void {
    this.authFailures.inc({ mechanism });
  }

  loggedIn(): void {
    this.logins.inc();
  }

  /** Counts a stanza by its element name; anything else than the three kinds is not counted. */
  static count(counts: Record<StanzaKind, number>, name: string): void {
    switch (name) {
      case 'message': counts.message++; break;
      case 'presence': counts.presence++; break;
      case 'iq': counts.iq++; break;
    }
  }
}
