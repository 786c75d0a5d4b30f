// The cluster bus between the worker processes of one machine (`workers`): each worker is a
// cluster node. A worker tells the primary, over node:cluster's IPC channel, which subjects it
// listens to; the primary keeps the table and passes every change on to the other workers. A
// message goes only to the other workers listening to its subject (the sender's own handlers
// get it directly): straight to them over the direct links (peer-links.ts) once the worker has
// the table, through the primary before that (and always without links, as in unit tests).
// Replies to a request go to the asking worker, named in its inbox subject. Same semantics as
// the NATS bus (nats-bus.ts), so everything above it is unchanged.
import { gatherReplies, type BusMessage, type BusStatus, type ClusterBus, type RequestOptions } from './bus.js';
import type { PeerLinks } from './peer-links.js';

/** One bus operation of a worker. */
export type WorkerOperation =
  | { sb: 'sub'; s: string }
  | { sb: 'unsub'; s: string }
  /** A message the primary relays to the workers listening. */
  | { sb: 'pub'; s: string; d: unknown; r?: string }
  /** A message for the primary itself (it listens to heartbeats), sent when the others got it directly. */
  | { sb: 'tell'; s: string; d: unknown }
  /** Asks for the subscription table (the worker has direct links). */
  | { sb: 'hello' };

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

/** The primary's own name in the subscription table. */
export const PRIMARY = '0';

/** A change of the subscription table: worker, subject, listening or not. */
export type SubscriptionChange = [worker: string, subject: string, on: boolean];

/** What the primary sends a worker: relayed deliveries, and changes of the subscription table. */
export interface PrimaryToWorker {
  sb: 'msgs';
  m: Delivery[];
  /** Subscriptions of the others (the whole table when `table` is true, the answer to hello). */
  subs?: SubscriptionChange[];
  table?: boolean;
  /** Workers gone: forget their subscriptions and links. */
  gone?: string[];
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

/** Adds `worker` to the workers listening on `subject`, or removes it (and a subject left empty). */
function setMember(listening: Map<string, Set<string>>, subject: string, worker: string, on: boolean): void {
  let set = listening.get(subject);
  if (on) {
    if (!set) listening.set(subject, (set = new Set()));
    set.add(worker);
  } else if (set) {
    set.delete(worker);
    if (set.size === 0) listening.delete(subject);
  }
}

/** Removes a worker that is gone from every subject (and the subjects left empty). */
function forgetWorker(listening: Map<string, Set<string>>, worker: string): void {
  for (const subject of [...listening.keys()]) setMember(listening, subject, worker, false);
}

/** An inbox subject of a worker's requests, naming the worker. */
const INBOX = /^_INBOX\.ipc\.([^.]+)\./;

export class IpcBus implements ClusterBus {
  readonly connected = true;
  private readonly handlers = new Map<string, Set<Handler>>();
  private inboxCounter = 0;
  private readonly offMessage: () => void;
  private queue: WorkerOperation[] = [];
  private flushing: NodeJS.Immediate | undefined;
  /** Which other workers listen to which subject (from the primary), once `tableKnown`. */
  private readonly table = new Map<string, Set<string>>();
  private tableKnown = false;
  /** Nothing leaves before the links listen: a worker that hears of us may connect at once. */
  private ready: boolean;

  /** `id` makes this worker's inbox subjects unique among the workers; `links` sends to them directly. */
  constructor(private readonly channel: WorkerChannel, private readonly id: string, private readonly links?: PeerLinks) {
    this.offMessage = channel.onMessage((m) => {
      const message = m as PrimaryToWorker;
      if (message?.sb !== 'msgs' || !Array.isArray(message.m)) return;
      this.tableChanged(message);
      this.delivered(message.m);
    });
    this.ready = links === undefined;
    if (links) {
      this.enqueue({ sb: 'hello' });
      void links.listening.then(() => { this.ready = true; this.flush(); });
    }
  }

  /** Whether messages go straight to the other workers now (links listening, table known). */
  get direct(): boolean {
    return this.links !== undefined && this.ready && this.tableKnown;
  }

  /** Messages from the primary or from another worker's link. */
  delivered(deliveries: Delivery[]): void {
    for (const d of deliveries) if (d && typeof d.s === 'string') this.deliverHere(d.s, d.d, d.r);
  }

  private tableChanged({ subs, table, gone }: PrimaryToWorker): void {
    if (table) this.tableKnown = true;
    if (Array.isArray(subs)) {
      for (const [worker, subject, on] of subs) {
        setMember(this.table, subject, worker, on);
      }
    }
    if (Array.isArray(gone)) {
      for (const worker of gone) {
        forgetWorker(this.table, worker);
        this.links?.drop(worker);
      }
    }
  }

  private enqueue(operation: WorkerOperation): void {
    this.queue.push(operation);
    if (this.ready) this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.queue.length === 0 || !this.ready) return;
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
    if (!this.links || !this.tableKnown) {
      this.enqueue(replyTo === undefined ? { sb: 'pub', s: subject, d: data } : { sb: 'pub', s: subject, d: data, r: replyTo });
      return;
    }
    // A reply goes to the worker its inbox names, which may have subscribed too recently for our table.
    const inbox = INBOX.exec(subject)?.[1];
    const targets = inbox !== undefined ? [inbox] : this.table.get(subject);
    if (!targets) {
      // No listener known here: perhaps one whose subscription is still on its way to us (a new
      // worker's messages come straight, its subscriptions through the primary). The primary's
      // table is the first to know, so the message goes through it.
      this.enqueue(replyTo === undefined ? { sb: 'pub', s: subject, d: data } : { sb: 'pub', s: subject, d: data, r: replyTo });
      return;
    }
    const delivery: Delivery = replyTo === undefined ? { s: subject, d: data } : { s: subject, d: data, r: replyTo };
    for (const worker of targets) {
      if (worker === this.id) continue;
      if (worker === PRIMARY) this.enqueue({ sb: 'tell', s: subject, d: data });
      else this.links.send(worker, delivery);
    }
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

  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown[]> {
    const inbox = `_INBOX.ipc.${this.id}.${++this.inboxCounter}`; // see INBOX
    return gatherReplies(this, inbox, options, () => this.send(subject, data, inbox));
  }

  onStatus(_listener: (status: BusStatus) => void): () => void {
    // The channel lives as long as this process: a worker whose primary is gone exits (workers.ts).
    return () => {};
  }

  async close(): Promise<void> {
    for (const subject of this.handlers.keys()) this.enqueue({ sb: 'unsub', s: subject });
    this.handlers.clear();
    this.flush();
    this.links?.close();
    this.offMessage();
  }
}

/** The primary's side: which worker listens to which subject; relaying, and the table to the workers. */
export class IpcRelay {
  private readonly listeners = new Map<string, Set<string>>();
  private readonly workers = new Map<string, (message: PrimaryToWorker) => void>();

  /** A worker joined; `send` reaches it. */
  attach(worker: string, send: (message: PrimaryToWorker) => void): void {
    this.workers.set(worker, send);
  }

  /** The primary itself listens to a subject: the workers send it these messages (see `received`'s `seen`). */
  watch(subject: string): void {
    this.listen(PRIMARY, subject, true, new Map());
  }

  /** A worker is gone: forget its subscriptions, and tell the others. */
  detach(worker: string): void {
    this.workers.delete(worker);
    forgetWorker(this.listeners, worker);
    for (const send of this.workers.values()) send({ sb: 'msgs', m: [], gone: [worker] });
  }

  /**
   * Handles a message from a worker: false when it is not a bus message. `seen` is called with
   * each message published (the supervisor learns the workers' incarnations from heartbeats).
   */
  received(worker: string, m: unknown, seen?: (subject: string, data: unknown) => void): boolean {
    const message = m as WorkerToPrimary;
    if (message?.sb !== 'batch' || !Array.isArray(message.m)) return false;
    const out = new Map<string, PrimaryToWorker>();
    for (const operation of message.m) {
      if (!operation || typeof operation !== 'object') continue;
      if (operation.sb === 'hello') {
        const subs: SubscriptionChange[] = [];
        for (const [subject, set] of this.listeners) for (const w of set) if (w !== worker) subs.push([w, subject, true]);
        const entry = this.entry(out, worker);
        (entry.subs ??= []).push(...subs);
        entry.table = true;
        continue;
      }
      if (typeof operation.s !== 'string') continue;
      if (operation.sb === 'sub' || operation.sb === 'unsub') this.listen(worker, operation.s, operation.sb === 'sub', out);
      else if (operation.sb === 'tell') seen?.(operation.s, operation.d);
      else if (operation.sb === 'pub') {
        seen?.(operation.s, operation.d);
        this.route(operation.s, operation.d, operation.r, worker, out);
      }
    }
    for (const [w, msg] of out) this.workers.get(w)?.(msg);
    return true;
  }

  /** Sends to every worker listening to the subject but `except` (the sender, which delivered it itself). */
  publish(subject: string, data: unknown, replyTo?: string, except?: string): void {
    const out = new Map<string, PrimaryToWorker>();
    this.route(subject, data, replyTo, except, out);
    for (const [w, msg] of out) this.workers.get(w)?.(msg);
  }

  private entry(out: Map<string, PrimaryToWorker>, worker: string): PrimaryToWorker {
    let entry = out.get(worker);
    if (!entry) out.set(worker, (entry = { sb: 'msgs', m: [] }));
    return entry;
  }

  private listen(worker: string, subject: string, on: boolean, out: Map<string, PrimaryToWorker>): void {
    setMember(this.listeners, subject, worker, on);
    for (const other of this.workers.keys()) if (other !== worker) (this.entry(out, other).subs ??= []).push([worker, subject, on]);
  }

  private route(subject: string, data: unknown, replyTo: string | undefined, except: string | undefined, out: Map<string, PrimaryToWorker>): void {
    // A reply goes to the worker its inbox names: its subscription to the inbox may still be on
    // the way here while the request went straight to the replying worker.
    const inbox = INBOX.exec(subject)?.[1];
    const set = inbox !== undefined ? new Set([inbox]) : this.listeners.get(subject);
    if (!set) return;
    const delivery: Delivery = replyTo === undefined ? { s: subject, d: data } : { s: subject, d: data, r: replyTo };
    for (const worker of set) {
      if (worker === except || worker === PRIMARY) continue;
      this.entry(out, worker).m.push(delivery);
    }
  }
}
