// The cluster bus: how nodes talk to each other. Publish/subscribe on subjects, and requests
// whose replies are gathered from every node that answers before a timeout. Payloads are JSON
// values. nats-bus.ts carries it over NATS between processes; local-bus.ts is the in-process
// bus of a single node (and of unit tests), so the code above never knows which one it has.

/** A received message; `respond` answers it when it was sent with `request`. */
export interface BusMessage {
  subject: string;
  data: unknown;
  respond(data: unknown): void;
}

export type BusStatus = 'connected' | 'disconnected';

export interface RequestOptions {
  /** Milliseconds to wait for replies. */
  timeout: number;
  /** Stop waiting once this many replies arrived (default: wait for the whole timeout). */
  expected?: number;
}

export interface ClusterBus {
  /** Whether the link to the other nodes is up now. */
  readonly connected: boolean;
  publish(subject: string, data: unknown): void;
  /** Subscribes to one subject; returns the unsubscriber. */
  subscribe(subject: string, handler: (message: BusMessage) => void): () => void;
  /** Publishes a request and resolves with the replies gathered (possibly none). */
  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown[]>;
  /** Called when the link goes down or comes back (after a reconnection, subscriptions are back). */
  onStatus(listener: (status: BusStatus) => void): () => void;
  close(): Promise<void>;
}

/**
 * A request's replies, gathered the same way on every bus: listens on `inbox`, sends the request
 * (with `send`, naming that inbox), and resolves once `expected` replies came or at the timeout.
 */
export function gatherReplies(bus: ClusterBus, inbox: string, { timeout, expected }: RequestOptions, send: () => void): Promise<unknown[]> {
  if (expected === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const replies: unknown[] = [];
    const finish = () => { clearTimeout(timer); unsubscribe(); resolve(replies); };
    const unsubscribe = bus.subscribe(inbox, (m) => {
      replies.push(m.data);
      if (expected !== undefined && replies.length >= expected) finish();
    });
    const timer = setTimeout(finish, timeout);
    send();
  });
}
