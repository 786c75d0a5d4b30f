// The watchdog (seed 001 section 11.8): finds connections that went silent, pings them, and
// cuts those that stay silent, without waiting for the operating system to notice.
//
// Every `delay`, each connection is checked (seed 11.8.3):
//   1. the time since its last transfer is measured: with whitespace pings, the last data in
//      either direction (the watchdog's own pings excepted); with XMPP pings, the last stanza
//      received from the peer;
//   2. at or past `maxInactivity` the connection is cut (for a client: the session ends the
//      normal way, with unavailable presence to its contacts);
//   3. otherwise, at or past `timeout`, a ping of `pingType` is sent;
//   4. otherwise nothing happens, until the next check.
// The decision is `watchdogVerdict`; `Watchdog` runs it over its connections on a clock, so
// the seed's timeline can be replayed on a fake one (watchdog.test.ts).
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/schema.js';
import type { Metrics } from './metrics.js';

export type PingType = 'whitespace' | 'xmpp';

/** Durations in milliseconds. */
export interface WatchdogSettings {
  delay: number;
  timeout: number;
  maxInactivity: number;
  pingType: PingType;
}

export type WatchdogVerdict = 'keep' | 'ping' | 'disconnect';

/** Steps 2 and 3 of the seed's logic. */
export function watchdogVerdict(sinceLastTransfer: number, settings: Pick<WatchdogSettings, 'timeout' | 'maxInactivity'>): WatchdogVerdict {
  if (sinceLastTransfer >= settings.maxInactivity) return 'disconnect';
  if (sinceLastTransfer >= settings.timeout) return 'ping';
  return 'keep';
}

/** What the watchdog needs of a connection. */
export interface WatchedConnection {
  /** Who is on the other end, for logs (a JID, or an address before authentication). */
  readonly peer: string;
  /** When the last transfer that counts for this ping type happened (ms, the clock's time base). */
  lastTransfer(type: PingType): number;
  ping(type: PingType): void;
  /** Cuts the connection; `idle` is how long it has been silent (ms). */
  disconnect(idle: number): void;
  /** Registers a callback for when the connection closes, for whatever reason. */
  onClose(fn: () => void): void;
}

export interface WatchdogClock {
  now(): number;
  /** Calls `fn` every `ms`; returns a canceller. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: WatchdogClock = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** What one check decided for one connection. */
export interface WatchdogCheck {
  peer: string;
  sinceLastTransfer: number;
  verdict: WatchdogVerdict;
}

export class Watchdog {
  private readonly connections = new Set<WatchedConnection>();
  private cancel: (() => void) | undefined;
  private pingCount = 0;
  private disconnectCount = 0;

  constructor(
    /** The listener it watches (c2s, websocket, ...), for logs. */
    readonly name: string,
    readonly settings: WatchdogSettings,
    private readonly log?: Logger,
    private readonly clock: WatchdogClock = systemClock,
  ) {}

  get size(): number {
    return this.connections.size;
  }

  /** Pings sent since start. */
  get pings(): number {
    return this.pingCount;
  }

  /** Connections cut for inactivity since start. */
  get disconnects(): number {
    return this.disconnectCount;
  }

  watch(connection: WatchedConnection): void {
    this.connections.add(connection);
    connection.onClose(() => this.connections.delete(connection));
  }

  start(): void {
    this.cancel ??= this.clock.every(this.settings.delay, () => this.check());
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** One round over every connection (step 1); returns what it decided, for tests. */
  check(): WatchdogCheck[] {
    const { timeout, maxInactivity, delay, pingType } = this.settings;
    const now = this.clock.now();
    const out: WatchdogCheck[] = [];
    for (const connection of [...this.connections]) {
      const sinceLastTransfer = now - connection.lastTransfer(pingType);
      const verdict = watchdogVerdict(sinceLastTransfer, this.settings);
      out.push({ peer: connection.peer, sinceLastTransfer, verdict });
      this.log?.debug({ listener: this.name, peer: connection.peer, sinceLastTransfer, maxInactivity, timeout, delay, pingType, verdict }, 'watchdog check');
      if (verdict === 'disconnect') {
        this.log?.info({ listener: this.name, peer: connection.peer, idleSeconds: Math.round(sinceLastTransfer / 1000), maxInactivitySeconds: maxInactivity / 1000 },
          'watchdog: max inactivity time exceeded, closing the connection');
        this.connections.delete(connection);
        this.disconnectCount++;
        connection.disconnect(sinceLastTransfer);
      } else if (verdict === 'ping') {
        this.pingCount++;
        connection.ping(pingType);
      }
    }
    return out;
  }
}

/** A listener's settings: its own watchdog options where set, else the global ones (seconds in the config). */
export function watchdogSettings(config: CoreConfig, listener: 'c2s' | 'websocket'): WatchdogSettings {
  const own = config[listener];
  return {
    delay: (own['watchdog-delay'] ?? config['watchdog-delay']) * 1000,
    timeout: (own['watchdog-timeout'] ?? config['watchdog-timeout']) * 1000,
    maxInactivity: own['max-inactivity-time'] * 1000,
    pingType: own['watchdog-ping-type'] ?? config['watchdog-ping-type'],
  };
}

/** The watchdogs' pings and cuts as counters per listener (`GET /metrics`, statistics). */
export function registerWatchdogMetrics(metrics: Metrics, watchdogs: readonly Watchdog[]): void {
  metrics.counter({
    name: 'watchdog_pings_total', help: 'Pings sent by the watchdog to idle connections, by listener', labelNames: ['listener'],
    collect(c) { c.reset(); for (const w of watchdogs) c.inc({ listener: w.name }, w.pings); },
  });
  metrics.counter({
    name: 'watchdog_disconnects_total', help: 'Connections cut by the watchdog past max-inactivity-time, by listener', labelNames: ['listener'],
    collect(c) { c.reset(); for (const w of watchdogs) c.inc({ listener: w.name }, w.disconnects); },
  });
}
