// The in-process cluster bus: a single node's bus (cluster-wide requests then reach just this
// node) and the network several in-process nodes share in unit tests. Delivery is asynchronous
// (a microtask later) and in publish order, like the NATS bus.
import { gatherReplies, type BusMessage, type BusStatus, type ClusterBus, type RequestOptions } from './bus.js';

type Handler = (message: BusMessage) => void;

export class LocalBusNetwork {
  private readonly subscriptions = new Map<string, Set<Handler>>();
  private inboxCounter = 0;

  /** A new connection to this network. */
  connect(): ClusterBus {
    return new LocalBus(this);
  }

  /** @internal */
  add(subject: string, handler: Handler): () => void {
    let set = this.subscriptions.get(subject);
    if (!set) this.subscriptions.set(subject, (set = new Set()));
    set.add(handler);
    return () => {
      set.delete(handler);
      if (set.size === 0) this.subscriptions.delete(subject);
    };
  }

  /** @internal */
  deliver(subject: string, data: unknown, replyTo?: string): void {
    const handlers = this.subscriptions.get(subject);
    if (!handlers) return;
    // A copy through JSON, as over the wire: no receiver shares objects with the sender.
    const json = JSON.stringify(data);
    for (const handler of [...handlers]) {
      queueMicrotask(() => handler({
        subject,
        data: json === undefined ? undefined : JSON.parse(json),
        respond: (reply) => { if (replyTo) this.deliver(replyTo, reply); },
      }));
    }
  }

  /** @internal */
  inbox(): string {
    return `_INBOX.local.${++this.inboxCounter}`;
  }
}

class LocalBus implements ClusterBus {
  readonly connected = true;
  private readonly unsubscribers = new Set<() => void>();

  constructor(private readonly network: LocalBusNetwork) {}

  publish(subject: string, data: unknown): void {
    this.network.deliver(subject, data);
  }

  subscribe(subject: string, handler: (message: BusMessage) => void): () => void {
    const remove = this.network.add(subject, handler);
    const unsubscribe = () => { remove(); this.unsubscribers.delete(unsubscribe); };
    this.unsubscribers.add(unsubscribe);
    return unsubscribe;
  }

  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown[]> {
    const inbox = this.network.inbox();
    return gatherReplies(this, inbox, options, () => this.network.deliver(subject, data, inbox));
  }

  onStatus(_listener: (status: BusStatus) => void): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    for (const u of [...this.unsubscribers]) u();
  }
}
