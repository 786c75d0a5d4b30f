// Direct links between the worker processes of `workers`, for the bus's messages: each worker
// listens on a Unix socket of its own, and sends to another by connecting to that worker's
// socket. Relaying everything through the primary cost the primary a JSON parse and a JSON
// write per message (about a quarter of the server's CPU under the messaging bench); these
// links leave the primary the subscriptions only. Newline-delimited JSON, one line per batch
// (the messages of one event-loop turn to one worker).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Delivery } from './ipc-bus.js';

export class PeerLinks {
  private readonly out = new Map<string, { socket: Socket; queue: Delivery[] }>();
  private readonly inbound = new Set<Socket>();
  private flushing: NodeJS.Immediate | undefined;
  private readonly server: Server;
  /** Resolves once this worker's socket listens (before it tells anyone it exists). */
  readonly listening: Promise<void>;

  /** `pathOf(worker)` is the socket of a worker; this one listens on `pathOf(self)`. */
  constructor(private readonly self: string, private readonly pathOf: (worker: string) => string, onDeliveries: (deliveries: Delivery[]) => void, private readonly log: Logger) {
    const path = pathOf(self);
    rmSync(path, { force: true }); // left by this worker's previous run, if it crashed
    this.server = createServer((socket) => {
      this.inbound.add(socket);
      socket.setEncoding('utf8');
      // A batch may span many chunks: keep them apart until its end arrives, so that each byte is scanned once.
      let pending: string[] = [];
      socket.on('data', (chunk: string) => {
        let start = 0;
        let end: number;
        while ((end = chunk.indexOf('\n', start)) >= 0) {
          pending.push(chunk.slice(start, end));
          const line = pending.length === 1 ? pending[0]! : pending.join('');
          pending = [];
          start = end + 1;
          let deliveries: unknown;
          try {
            deliveries = JSON.parse(line);
          } catch {
            this.log.warn('cluster: dropping a malformed batch from another worker');
            continue;
          }
          if (Array.isArray(deliveries)) onDeliveries(deliveries as Delivery[]);
        }
        if (start < chunk.length) pending.push(chunk.slice(start));
      });
      socket.on('error', () => {});
      socket.on('close', () => this.inbound.delete(socket));
    });
    this.listening = new Promise((resolve) => {
      this.server.on('error', (e) => { log.error({ err: e, path }, 'cluster: cannot listen for the other workers'); resolve(); });
      // exclusive: this worker's own socket, not one node:cluster would share through the primary.
      this.server.listen({ path, exclusive: true }, () => resolve());
    });
  }

  /** Queues a message for a worker; the queue goes out at the end of this turn of the event loop. */
  send(worker: string, delivery: Delivery): void {
    let link = this.out.get(worker);
    if (!link) {
      const socket = createConnection(this.pathOf(worker));
      link = { socket, queue: [] };
      this.out.set(worker, link);
      const current = link;
      // The worker is gone (or restarting): what was queued for it is lost, as its sessions are.
      socket.on('error', (e) => this.log.debug({ err: e, worker }, 'cluster: link to a worker failed'));
      socket.on('close', () => { if (this.out.get(worker) === current) this.out.delete(worker); });
    }
    link.queue.push(delivery);
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = undefined;
    for (const link of this.out.values()) {
      if (link.queue.length === 0) continue;
      const line = JSON.stringify(link.queue) + '\n';
      link.queue = [];
      if (!link.socket.destroyed) link.socket.write(line);
    }
  }

  /** Forgets the link to a worker that is gone, so that its next run gets a new one. */
  drop(worker: string): void {
    this.out.get(worker)?.socket.destroy();
    this.out.delete(worker);
  }

  close(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flush();
    for (const link of this.out.values()) link.socket.end();
    this.out.clear();
    for (const s of this.inbound) s.destroy();
    this.server.close();
  }
}
