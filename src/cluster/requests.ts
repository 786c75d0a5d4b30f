// Cluster-wide requests (seed 004, the OpenSIPS clusterer's broadcast with replies): any
// module, admin script or HTTP API asks every node by name and gathers the replies until all
// connected nodes answered or the timeout passed. A handler that returns nothing stays silent.
// On a single node the same call reaches just this node, so callers never care.
import type { Logger } from 'pino';
import type { ClusterBus } from './bus.js';

export interface ClusterReply<T = unknown> {
  node: string;
  /** What the handler returned (absent when it threw). */
  value?: T;
  /** The handler's error message, when it threw. */
  error?: string;
}

export type ClusterRequestHandler = (payload: unknown, from: { node: string }) => unknown | Promise<unknown>;

interface RequestMessage {
  name: string;
  payload: unknown;
  from: string;
}

interface ReplyMessage {
  node: string;
  /** false: no handler, or the handler chose not to answer. */
  answered: boolean;
  value?: unknown;
  error?: string;
}

export interface RequestsOptions {
  bus: ClusterBus;
  prefix: string;
  nodeName: string;
  log: Logger;
  /** Default milliseconds to wait for replies. */
  timeout: number;
  /** How many nodes (this one included) are expected to reply. */
  expectedReplies(): number;
}

export class ClusterRequests {
  private readonly handlers = new Map<string, ClusterRequestHandler>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly o: RequestsOptions) {}

  start(): void {
    this.unsubscribe = this.o.bus.subscribe(`${this.o.prefix}.request`, (m) => { void this.answer(m.data as RequestMessage, m.respond); });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** Handles a named request on this node; returns the remover. */
  handle(name: string, handler: ClusterRequestHandler): () => void {
    if (this.handlers.has(name)) throw new Error(`cluster request "${name}" already has a handler on this node`);
    this.handlers.set(name, handler);
    return () => { if (this.handlers.get(name) === handler) this.handlers.delete(name); };
  }

  /** Asks every connected node, this one included; resolves with the replies that came in time. */
  async request<T = unknown>(name: string, payload: unknown = null, options: { timeout?: number } = {}): Promise<ClusterReply<T>[]> {
    const message: RequestMessage = { name, payload, from: this.o.nodeName };
    const replies = await this.o.bus.request(`${this.o.prefix}.request`, message, {
      timeout: options.timeout ?? this.o.timeout,
      expected: this.o.expectedReplies(),
    });
    const out: ClusterReply<T>[] = [];
    for (const r of replies as ReplyMessage[]) {
      if (!r || typeof r.node !== 'string' || !r.answered) continue;
      out.push(r.error !== undefined ? { node: r.node, error: String(r.error) } : { node: r.node, value: r.value as T });
    }
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }

  private async answer(m: RequestMessage, respond: (data: unknown) => void): Promise<void> {
    const node = this.o.nodeName;
    const handler = m && typeof m.name === 'string' ? this.handlers.get(m.name) : undefined;
    if (!handler) {
      respond({ node, answered: false } satisfies ReplyMessage);
      return;
    }
    try {
      const value = await handler(m.payload, { node: typeof m.from === 'string' ? m.from : '' });
      respond(value === undefined ? { node, answered: false } : { node, answered: true, value } satisfies ReplyMessage);
    } catch (e) {
      this.o.log.warn({ err: e, request: m.name }, 'cluster request handler failed');
      respond({ node, answered: true, error: e instanceof Error ? e.message : String(e) } satisfies ReplyMessage);
    }
  }
}
