// The cluster bus over NATS (nats.js): one connection per node, reconnecting forever. NATS
// itself keeps no state for us; after a NATS restart the client re-subscribes and the
// membership and directory layers resynchronise (see membership.ts).
import { connect, createInbox, JSONCodec, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { gatherReplies, type BusMessage, type BusStatus, type ClusterBus, type RequestOptions } from './bus.js';

const codec = JSONCodec<unknown>();

export interface NatsBusOptions {
  url: string;
  /** Connection name shown by the NATS server's monitoring (the node name). */
  name: string;
  log: Logger;
}

/**
 * The servers of a `nats://[user:password@]host:port[,...]` setting, and the credentials: nats.js
 * takes them as options, not from the URL (a token when there is no password).
 */
export function natsServers(url: string): { servers: string[]; user?: string; pass?: string; token?: string } {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = url.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const u = new URL(s);
    if (u.username && user === undefined) {
      user = decodeURIComponent(u.username);
      pass = u.password ? decodeURIComponent(u.password) : undefined;
    }
    return `${u.protocol}//${u.host}`;
  });
  if (user !== undefined && pass === undefined) return { servers, token: user };
  return { servers, user, pass };
}

export async function connectNatsBus({ url, name, log }: NatsBusOptions): Promise<ClusterBus> {
  let nc: NatsConnection;
  const servers = natsServers(url);
  try {
    nc = await connect({
      ...servers,
      name,
      maxReconnectAttempts: -1,
      // Short waits: a node back quickly after a NATS restart is not taken for dead by the others.
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 10_000,
    });
  } catch (e) {
    // The servers without their credentials: the message goes to logs.
    throw new Error(`cannot reach NATS at ${servers.servers.join(',')}: ${(e as Error).message}`);
  }
  return new NatsBus(nc, log);
}

class NatsBus implements ClusterBus {
  connected = true;
  private readonly listeners = new Set<(status: BusStatus) => void>();
  private readonly subscriptions = new Set<Subscription>();

  constructor(private readonly nc: NatsConnection, private readonly log: Logger) {
    void this.watchStatus();
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect' && this.connected) {
        this.connected = false;
        this.log.warn({ server: s.data }, 'cluster bus: lost the NATS connection, reconnecting');
        this.emit('disconnected');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.log.info({ server: s.data }, 'cluster bus: reconnected to NATS');
        this.emit('connected');
      } else if (s.type === 'error') {
        this.log.error({ err: s.data }, 'cluster bus: NATS error');
      }
    }
  }

  private emit(status: BusStatus): void {
    for (const l of [...this.listeners]) {
      try { l(status); } catch (e) { this.log.error({ err: e }, 'cluster bus status listener failed'); }
    }
  }

  publish(subject: string, data: unknown): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(subject, codec.encode(data));
  }

  subscribe(subject: string, handler: (message: BusMessage) => void): () => void {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err, subject }, 'cluster bus subscription failed');
          return;
        }
        let data: unknown;
        try {
          data = msg.data.length ? codec.decode(msg.data) : undefined;
        } catch (e) {
          this.log.warn({ err: e, subject }, 'cluster bus: dropping a message that is not JSON');
          return;
        }
        try {
          handler({ subject, data, respond: (reply) => { if (msg.reply && !this.nc.isClosed()) msg.respond(codec.encode(reply)); } });
        } catch (e) {
          this.log.error({ err: e, subject }, 'cluster bus handler failed');
        }
      },
    });
    this.subscriptions.add(sub);
    return () => {
      this.subscriptions.delete(sub);
      if (!this.nc.isClosed()) sub.unsubscribe();
    };
  }

  // nats.js `request` takes the first reply only; gathering from every node needs our own inbox.
  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown[]> {
    if (this.nc.isClosed()) return Promise.resolve([]);
    const inbox = createInbox();
    return gatherReplies(this, inbox, options, () => this.nc.publish(subject, codec.encode(data), { reply: inbox }));
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }
}
