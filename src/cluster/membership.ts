// Cluster membership: every node publishes a heartbeat; a node heard from joins, a node that
// says goodbye leaves, and a node silent for longer than `max-inactivity-time` is dead (a
// crash, a kill, a lost network). While this node's own link to NATS is down nobody is
// judged: we cannot hear them, which says nothing about them. After the link comes back every
// node gets a fresh allowance, so a NATS restart declares nobody dead.
import type { Logger } from 'pino';
import type { ClusterBus } from './bus.js';

export type NodeState = 'connected' | 'disconnected';

export interface NodeInfo {
  name: string;
  /** Random id of one run of the node: a restarted node is a new incarnation. */
  incarnation: string;
  state: NodeState;
  /** When the node entered its current state (ms since the epoch). */
  since: number;
  /** Last heartbeat heard (ms since the epoch). */
  lastSeen: number;
  /** Sessions the node holds, as its last heartbeat said. */
  sessions: number;
  /** When the node started (its own clock): the oldest node serves the domain services. */
  started: number;
  /** Why it is disconnected: it left, or it went silent. */
  reason?: 'left' | 'dead';
}

export interface Heartbeat {
  node: string;
  inc: string;
  /** The sender's directory sequence number (directory.ts uses it to detect missed updates). */
  seq: number;
  sessions: number;
  started: number;
}

export interface MembershipOptions {
  bus: ClusterBus;
  prefix: string;
  nodeName: string;
  incarnation: string;
  /** Milliseconds between heartbeats. */
  heartbeatInterval: number;
  /** Milliseconds of silence after which a node is dead. */
  maxInactivity: number;
  log: Logger;
  /** What this node's heartbeat says about its directory. */
  status(): { seq: number; sessions: number };
  now?: () => number;
}

type Listener = {
  joined?(node: NodeInfo): void;
  gone?(node: NodeInfo, reason: 'left' | 'dead'): void;
  heartbeat?(beat: Heartbeat): void;
};

export class Membership {
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly listeners: Listener[] = [];
  private readonly unsubscribers: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly started: number;

  constructor(private readonly o: MembershipOptions) {
    this.now = o.now ?? Date.now;
    const t = this.now();
    this.started = t;
    this.nodes.set(o.nodeName, { name: o.nodeName, incarnation: o.incarnation, state: 'connected', since: t, lastSeen: t, sessions: 0, started: t });
  }

  get self(): string {
    return this.o.nodeName;
  }

  listen(listener: Listener): void {
    this.listeners.push(listener);
  }

  start(): void {
    const { bus, prefix } = this.o;
    this.unsubscribers.push(
      bus.subscribe(`${prefix}.heartbeat`, (m) => this.heard(m.data as Heartbeat)),
      bus.subscribe(`${prefix}.leave`, (m) => this.left(m.data as { node: string; inc: string })),
      // A death witnessed rather than inferred from silence (the primary of `workers` sees a worker exit).
      bus.subscribe(`${prefix}.dead`, (m) => this.left(m.data as { node: string; inc: string }, 'dead')),
      bus.onStatus((status) => {
        if (status !== 'connected') return;
        // Back on the bus: everyone gets a fresh allowance, and we announce ourselves at once.
        const t = this.now();
        for (const n of this.nodes.values()) if (n.state === 'connected') n.lastSeen = t;
        this.beat();
      }),
    );
    this.beat();
    this.timer = setInterval(() => { this.beat(); this.check(); }, this.o.heartbeatInterval);
    this.timer.unref();
  }

  /** Says goodbye (a graceful stop) and stops heartbeating. */
  stop(): void {
    clearInterval(this.timer);
    for (const u of this.unsubscribers.splice(0)) u();
    this.o.bus.publish(`${this.o.prefix}.leave`, { node: this.o.nodeName, inc: this.o.incarnation });
  }

  /** Every node known, this one included, sorted by name. */
  list(): NodeInfo[] {
    const self = this.nodes.get(this.o.nodeName)!;
    self.sessions = this.o.status().sessions;
    self.lastSeen = this.now();
    return [...this.nodes.values()].map((n) => ({ ...n })).sort((a, b) => a.name.localeCompare(b.name));
  }

  connected(): NodeInfo[] {
    return this.list().filter((n) => n.state === 'connected');
  }

  get(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  /** The incarnation a live node runs now, if it is connected. */
  incarnationOf(name: string): string | undefined {
    const n = this.nodes.get(name);
    return n?.state === 'connected' ? n.incarnation : undefined;
  }

  /**
   * The node that serves the domain services and acts for the cluster when a node dies (sends
   * the unavailable presence of its users, once): the oldest connected node, by start time then
   * name. Every node computes the same answer from the same heartbeats, and a node joining
   * never takes the role from a running one.
   */
  leader(): NodeInfo {
    // A scan, not list(): asked for every stanza to a domain service and every presence broadcast.
    let oldest = this.nodes.get(this.o.nodeName)!; // this node: always connected
    for (const n of this.nodes.values()) {
      if (n.state === 'connected' && (n.started - oldest.started || n.name.localeCompare(oldest.name)) < 0) oldest = n;
    }
    return { ...oldest };
  }

  isCleanupLeader(): boolean {
    return this.leader().name === this.o.nodeName;
  }

  private beat(): void {
    const { seq, sessions } = this.o.status();
    const beat: Heartbeat = { node: this.o.nodeName, inc: this.o.incarnation, seq, sessions, started: this.started };
    this.o.bus.publish(`${this.o.prefix}.heartbeat`, beat);
  }

  private heard(beat: Heartbeat): void {
    if (!beat || typeof beat.node !== 'string' || typeof beat.inc !== 'string') return;
    if (beat.node === this.o.nodeName) {
      if (beat.inc !== this.o.incarnation) this.o.log.error({ node: beat.node }, 'another cluster node uses this node\'s name; give each node its own cluster.node-name');
      return;
    }
    const t = this.now();
    let node = this.nodes.get(beat.node);
    if (node && node.state === 'connected' && node.incarnation !== beat.inc) {
      // Restarted faster than its death could be noticed: the old run is gone.
      this.markGone(node, 'dead');
    }
    if (!node || node.state === 'disconnected' || node.incarnation !== beat.inc) {
      node = { name: beat.node, incarnation: beat.inc, state: 'connected', since: t, lastSeen: t, sessions: beat.sessions, started: Number(beat.started) || 0 };
      this.nodes.set(beat.node, node);
      this.o.log.info({ node: beat.node }, 'cluster node joined');
      this.emit((l) => l.joined?.(node!));
      // Let the newcomer hear from us at once rather than at our next beat.
      this.beat();
    }
    node.lastSeen = t;
    node.sessions = typeof beat.sessions === 'number' ? beat.sessions : 0;
    this.emit((l) => l.heartbeat?.(beat));
  }

  private left({ node: name, inc }: { node: string; inc: string }, reason: 'left' | 'dead' = 'left'): void {
    const node = typeof name === 'string' ? this.nodes.get(name) : undefined;
    if (!node || node.state !== 'connected' || node.incarnation !== inc || name === this.o.nodeName) return;
    this.markGone(node, reason);
  }

  /** Declares dead the nodes silent for too long; exposed for tests with a fake clock. */
  check(): void {
    if (!this.o.bus.connected) return;
    const t = this.now();
    for (const node of [...this.nodes.values()]) {
      if (node.name === this.o.nodeName || node.state !== 'connected') continue;
      if (t - node.lastSeen > this.o.maxInactivity) this.markGone(node, 'dead');
    }
  }

  private markGone(node: NodeInfo, reason: 'left' | 'dead'): void {
    const gone = { ...node };
    node.state = 'disconnected';
    node.since = this.now();
    node.reason = reason;
    node.sessions = 0;
    if (reason === 'dead') this.o.log.warn({ node: node.name, silentMs: node.since - gone.lastSeen }, 'cluster node is dead (no heartbeat)');
    else this.o.log.info({ node: node.name }, 'cluster node left');
    this.emit((l) => l.gone?.(gone, reason));
  }

  private emit(fn: (l: Listener) => void): void {
    for (const l of this.listeners) {
      try { fn(l); } catch (e) { this.o.log.error({ err: e }, 'cluster membership listener failed'); }
    }
  }
}
