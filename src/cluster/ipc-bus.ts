// The cluster bus between the worker processes of one machine (`workers`): each worker is a
// cluster node, and the bus runs over node:cluster's IPC channel. The primary process relays:
// a worker tells it which subjects it listens to, and a message goes only to the other workers
// listening to its subject (the sender's own handlers get it directly). Replies to requests
// travel the same way, to an inbox subject only the asking worker listens to. Same semantics as
// the NATS bus (nats-bus.ts), so everything above it is unchanged.
import type { BusMessage, BusStatus, ClusterBus, RequestOptions } from './bus.js';

/** One bus operation of a worker. */
export type WorkerOperation =
  | { sb: 'sub'; s: string }
  | { sb: 'unsub'; s: string }
  | { sb: 'pub'; s: string; d: unknown; r?: string };

/**
 * What a worker sends its primary: its operations of one turn of the event loop in one batch,
 * since each message over the channel costs a system call and an event on both sides.
 */
export type WorkerToPrimary = { sb: 'batch'; m: WorkerOperation[] };

/** A message for a worker. */
export interface Delivery {
  s: string;
  d: unknown;
  r?: string;
}

/** What the primary sends a worker: the deliveries of one batch it relayed. */
export interface PrimaryToWorker {
  sb: 'msgs';
  m: Delivery[];
}

/** The IPC channel as a worker sees it (`process` in a worker; a fake in unit tests). */
export interface WorkerChannel {
  send(message: WorkerToPrimary): void;
  onMessage(listener: (message: unknown) => void): () => void;
}

/** The channel of this process to its primary (node:cluster worker). */
export function processChannel(): WorkerChannel {
  if (!process.send) throw new Error('not a worker process: no IPC channel');
  return {
    send: (message) => { if (process.connected) process.send!(message); },
    onMessage(listener) {
      process.on('message', listener);
      return () => { process.off('message', listener); };
    },
  };
}

type Handler = (message: BusMessage) => void;

export class IpcBus implements ClusterBus {
  readonly connected = true;
  private readonly handlers = new Map<string, Set<Handler>>();
  private inboxCounter = 0;
  private readonly offMessage: () => void;
  private queue: WorkerOperation[] = [];
  private flushing: NodeJS.Immediate | undefined;

  /** `id` makes this worker's inbox subjects unique among the workers. */
  constructor(private readonly channel: WorkerChannel, private readonly id: string) {
    this.offMessage = channel.onMessage((m) => {
      const message = m as PrimaryToWorker;
      if (message?.sb !== 'msgs' || !Array.isArray(message.m)) return;
      for (const d of message.m) if (d && typeof d.s === 'string') this.deliverHere(d.s, d.d, d.r);
    });
  }

  private enqueue(operation: WorkerOperation): void {
    this.queue.push(operation);
    this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.queue.length === 0) return;
    const m = this.queue;
    this.queue = [];
    this.channel.send({ sb: 'batch', m });
  }

  publish(subject: string, data: unknown): void {
    this.send(subject, data, undefined);
  }

  private send(subject: string, data: unknown, replyTo: string | undefined): void {
    // Our own listeners first, from a copy as the others get (JSON over the channel).
    if (this.handlers.has(subject)) this.deliverHere(subject, data === undefined ? undefined : JSON.parse(JSON.stringify(data)), replyTo);
    this.enqueue(replyTo === undefined ? { sb: 'pub', s: subject, d: data } : { sb: 'pub', s: subject, d: data, r: replyTo });
  }

  private deliverHere(subject: string, data: unknown, replyTo: string | undefined): void {
    const handlers = this.handlers.get(subject);
    if (!handlers) return;
    const respond = (reply: unknown) => { if (replyTo) this.send(replyTo, reply, undefined); };
    for (const handler of [...handlers]) {
      // Asynchronous, as over NATS: a handler never runs inside the publisher's call.
      queueMicrotask(() => handler({ subject, data, respond }));
    }
  }

  subscribe(subject: string, handler: Handler): () => void {
    let set = this.handlers.get(subject);
    if (!set) {
      this.handlers.set(subject, (set = new Set()));
      this.enqueue({ sb: 'sub', s: subject });
    }
    set.add(handler);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(subject) === set) {
        this.handlers.delete(subject);
        this.enqueue({ sb: 'unsub', s: subject });
      }
    };
  }

  request(subject: string, data: unknown, { timeout, expected }: RequestOptions): Promise<unknown[]> {
    if (expected === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const replies: unknown[] = [];
      const inbox = `_INBOX.ipc.${this.id}.${++this.inboxCounter}`;
      const finish = () => { clearTimeout(timer); unsubscribe(); resolve(replies); };
      const unsubscribe = this.subscribe(inbox, (m) => {
        replies.push(m.data);
        if (expected !== undefined && replies.length >= expected) finish();
      });
      const timer = setTimeout(finish, timeout);
      this.send(subject, data, inbox);
    });
  }

  onStatus(_listener: (status: BusStatus) => void): () => void {
    // The channel lives as long as this process: a worker whose primary is gone exits (workers.ts).
    return () => {};
  }

  async close(): Promise<void> {
    for (const subject of this.handlers.keys()) this.enqueue({ sb: 'unsub', s: subject });
    this.handlers.clear();
    this.flush();
    this.offMessage();
  }
}

/** The primary's side: which worker listens to which subject, and the relaying. */
export class IpcRelay {
  private readonly listeners = new Map<string, Set<string>>();
  private readonly workers = new Map<string, (message: PrimaryToWorker) => void>();

  /** A worker joined; `send` reaches it. */
  attach(worker: string, send: (message: PrimaryToWorker) => void): void {
    this.workers.set(worker, send);
  }

  /** A worker is gone: forget its subscriptions. */
  detach(worker: string): void {
    this.workers.delete(worker);
    for (const [subject, set] of this.listeners) {
      set.delete(worker);
      if (set.size === 0) this.listeners.delete(subject);
    }
  }

  /**
   * Handles a message from a worker: false when it is not a bus message. `seen` is called with
   * each message published (the supervisor learns the workers' incarnations from heartbeats).
   */
  received(worker: string, m: unknown, seen?: (subject: string, data: unknown) => void): boolean {
    const message = m as WorkerToPrimary;
    if (message?.sb !== 'batch' || !Array.isArray(message.m)) return false;
    const out = new Map<string, Delivery[]>();
    for (const operation of message.m) {
      if (!operation || typeof operation.s !== 'string') continue;
      if (operation.sb === 'sub') {
        let set = this.listeners.get(operation.s);
        if (!set) this.listeners.set(operation.s, (set = new Set()));
        set.add(worker);
      } else if (operation.sb === 'unsub') {
        const set = this.listeners.get(operation.s);
        set?.delete(worker);
        if (set?.size === 0) this.listeners.delete(operation.s);
      } else if (operation.sb === 'pub') {
        seen?.(operation.s, operation.d);
        this.route(operation.s, operation.d, operation.r, worker, out);
      }
    }
    this.send(out);
    return true;
  }

  /** Sends to every worker listening to the subject but `except` (the sender, which delivered it itself). */
  publish(subject: string, data: unknown, replyTo?: string, except?: string): void {
    const out = new Map<string, Delivery[]>();
    this.route(subject, data, replyTo, except, out);
    this.send(out);
  }

  private route(subject: string, data: unknown, replyTo: string | undefined, except: string | undefined, out: Map<string, Delivery[]>): void {
    const set = this.listeners.get(subject);
    if (!set) return;
    const delivery: Delivery = replyTo === undefined ? { s: subject, d: data } : { s: subject, d: data, r: replyTo };
    for (const worker of set) {
      if (worker === except) continue;
      const list = out.get(worker);
      if (list) list.push(delivery);
      else out.set(worker, [delivery]);
    }
  }

  private send(out: Map<string, Delivery[]>): void {
    for (const [worker, m] of out) this.workers.get(worker)?.({ sb: 'msgs', m });
  }
}
