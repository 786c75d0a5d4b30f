// This server as a cluster node: the bus (NATS in cluster mode, in-process otherwise), the
// membership, the session directory and cluster-wide requests, started and stopped together.
// Modules see it as `ctx.cluster` and never need to know whether other nodes exist.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { CoreConfig } from '../config/schema.js';
import type { SessionManager } from '../core/sessions.js';
import type { ClientSession } from '../core/session.js';
import type { Hooks } from '../core/hooks.js';
import type { ServerEvents } from '../core/events.js';
import type { Router } from '../core/router.js';
import { outgoingTrafficGate } from './throttling.js';
import type { ClusterBus } from './bus.js';
import { LocalBusNetwork } from './local-bus.js';
import { connectNatsBus, natsServers } from './nats-bus.js';
import { Membership, type NodeInfo } from './membership.js';
import { SessionDirectory } from './directory.js';
import { ClusterRequests, type ClusterReply, type ClusterRequestHandler } from './requests.js';
import { relayServiceEvents } from './service-events.js';
import type { VhostRegistry } from '../core/vhosts.js';

/** The cluster-wide request telling the nodes the stored virtual hosts changed. */
const VHOSTS_CHANGED = 'core/vhosts-changed';

export type { ClusterReply, ClusterRequestHandler, NodeInfo };

/** What modules get as `ctx.cluster`. */
export interface Cluster {
  /** Whether this server runs in cluster mode. */
  readonly enabled: boolean;
  readonly nodeName: string;
  /** Asks every node (this one included) and gathers the replies that come within the timeout (ms). */
  request<T = unknown>(name: string, payload?: unknown, options?: { timeout?: number }): Promise<ClusterReply<T>[]>;
  /** Answers a named request on this node; returns the remover. A handler returning undefined stays silent. */
  handle(name: string, handler: ClusterRequestHandler): () => void;
  /** Every node known, this one included, connected or not. */
  nodes(): NodeInfo[];
  /** When a session (of any node) was bound, in ms since the epoch. */
  boundSince(session: ClientSession): number | undefined;
  /**
   * Whether this node serves the domain services (PubSub) now: always alone; in a cluster the
   * oldest node does and the others forward their stanzas to it, so state those services keep
   * in memory is current there.
   */
  serving(): boolean;
}

export interface ClusterDeps {
  config: CoreConfig;
  sessions: SessionManager;
  hooks: Hooks<ServerEvents>;
  router: Router;
  log: Logger;
  track(work: Promise<unknown>): void;
  /** The virtual hosts: a change on one node is reloaded from storage by the others. */
  vhosts?: VhostRegistry;
  /** Set in a worker process of `workers` (workers.ts): its number, and the bus to the other workers (used unless cluster-mode). */
  worker?: { index: number; bus: ClusterBus };
}

export class ClusterNode implements Cluster {
  /** Bind times of this node's sessions when there is no directory to keep them (single node). */
  private readonly localSince = new Map<string, number>();
  private offServiceEvents: (() => void) | undefined;
  /** Set by close(): a node that left serves nothing, even while its modules are still stopping. */
  private left = false;

  private constructor(
    readonly enabled: boolean,
    readonly nodeName: string,
    private readonly bus: ClusterBus,
    private readonly membership: Membership,
    private readonly requests: ClusterRequests,
    private readonly directory: SessionDirectory | undefined,
    private readonly deps: ClusterDeps,
    private readonly log: Logger,
  ) {}

  static async open(deps: ClusterDeps): Promise<ClusterNode> {
    const { config, log: parentLog } = deps;
    const enabled = config['cluster-mode'] || deps.worker !== undefined;
    const options = config.cluster;
    const nodeName = (options['node-name'] ?? hostname()) + (deps.worker ? `/${deps.worker.index}` : '');
    const incarnation = randomBytes(8).toString('hex');
    const log = parentLog.child({ component: 'cluster' });
    const prefix = options['subject-prefix'];
    const bus = config['cluster-mode'] ? await connectNatsBus({ url: options['nats-url'], name: nodeName, log }) : deps.worker?.bus ?? new LocalBusNetwork().connect();
    let directory: SessionDirectory | undefined;
    const membership = new Membership({
      bus, prefix, nodeName, incarnation, log,
      heartbeatInterval: options['heartbeat-interval'] * 1000,
      maxInactivity: options['max-inactivity-time'] * 1000,
      status: () => directory?.status() ?? { seq: 0, sessions: deps.sessions.size },
    });
    const requests = new ClusterRequests({
      bus, prefix, nodeName, log, timeout: options['request-timeout'] * 1000,
      expectedReplies: () => membership.connected().length,
    });
    if (enabled) {
      directory = new SessionDirectory({
        bus, prefix, nodeName, incarnation, membership, log,
        sessions: deps.sessions, hooks: deps.hooks, router: deps.router, track: deps.track,
        requestTimeout: options['request-timeout'] * 1000,
        admitOutgoing: outgoingTrafficGate(options['cm-ht-traffic-throttling'], log),
      });
    }
    const node = new ClusterNode(enabled, nodeName, bus, membership, requests, directory, deps, log);
    if (!directory) {
      deps.sessions.watch((change, s) => {
        if (change === 'added') node.localSince.set(s.id, Date.now());
        else if (change === 'removed') node.localSince.delete(s.id);
      });
    }
    requests.start();
    node.offServiceEvents = relayServiceEvents({
      hooks: deps.hooks, sessions: deps.sessions, log, track: deps.track,
      cluster: enabled ? {
        bus, incarnation,
        subject: (inc) => `${prefix}.node.${inc}.service-event`,
        servingElsewhere: () => {
          const leader = membership.leader();
          return leader.name === nodeName ? undefined : leader.incarnation;
        },
      } : undefined,
    });
    return node;
  }

  /**
   * Joins the cluster and waits until the other nodes were heard from and their sessions are
   * known (two heartbeat intervals, then the snapshots asked for meanwhile).
   */
  async start(): Promise<void> {
    if (!this.enabled) return;
    this.directory!.start();
    this.membership.start();
    let serving = this.membership.isCleanupLeader();
    const leaderChanged = () => {
      const now = this.membership.isCleanupLeader();
      if (now && !serving) {
        this.log.info('cluster: this node now serves the domain services; reloading their state');
        this.deps.track(this.deps.hooks.fire('services/reload', {}));
      }
      serving = now;
    };
    this.membership.listen({ joined: leaderChanged, gone: leaderChanged });
    // Cut off from NATS for about max-inactivity-time, this node was probably taken for dead (its
    // last heartbeat went out up to an interval before the cut) and its users' contacts told they
    // went offline: back, its users announce their presence again; a repeat does no harm.
    let lostAt: number | undefined;
    this.bus.onStatus((status) => {
      if (status === 'disconnected') {
        lostAt ??= Date.now();
        return;
      }
      const away = lostAt === undefined ? 0 : Date.now() - lostAt;
      lostAt = undefined;
      const { 'max-inactivity-time': maxInactivity, 'heartbeat-interval': interval } = this.deps.config.cluster;
      if (away >= Math.max(0, maxInactivity - 2 * interval) * 1000) this.announcePresenceAgain();
    });
    const vhosts = this.deps.vhosts;
    if (vhosts) {
      // A host added, changed or removed on one node (VHost Manager) takes effect on every node.
      let reloading = false;
      this.handle(VHOSTS_CHANGED, async () => {
        reloading = true;
        try {
          await vhosts.reload();
        } finally {
          reloading = false;
        }
        return undefined;
      });
      vhosts.onChange(() => {
        if (!reloading) void this.request(VHOSTS_CHANGED).catch((e: unknown) => this.log.error({ err: e }, 'cluster: telling the nodes of a virtual host change failed'));
      });
    }
    this.deps.router.forwardServices((routed) => {
      const leader = this.membership.leader();
      // A stanza another node forwarded is served here even if our views of the leader differ: no ping-pong.
      if (leader.name === this.nodeName || this.directory!.routingForwarded) return false;
      this.directory!.forward(leader.incarnation, routed.stanza);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 2 * this.deps.config.cluster['heartbeat-interval'] * 1000));
    await this.directory!.idle();
    this.log.info({ node: this.nodeName, nats: this.deps.config['cluster-mode'] ? natsServers(this.deps.config.cluster['nats-url']).servers : undefined, nodes: this.membership.connected().length }, 'joined the cluster');
  }

  private announcePresenceAgain(): void {
    let count = 0;
    for (const session of [...this.deps.sessions.local()]) {
      if (!session.presence) continue;
      count++;
      this.deps.track(this.deps.hooks.fire('presence/broadcast', { stanza: session.presence.clone({ from: session.jid.full }), origin: session }));
    }
    this.log.info({ sessions: count }, 'cluster: back after a long disconnection; presence announced again');
  }

  request<T = unknown>(name: string, payload?: unknown, options?: { timeout?: number }): Promise<ClusterReply<T>[]> {
    return this.requests.request<T>(name, payload, options);
  }

  handle(name: string, handler: ClusterRequestHandler): () => void {
    return this.requests.handle(name, handler);
  }

  nodes(): NodeInfo[] {
    return this.membership.list();
  }

  serving(): boolean {
    return !this.enabled || (!this.left && this.membership.isCleanupLeader());
  }

  boundSince(session: ClientSession): number | undefined {
    return this.directory ? this.directory.boundSince(session) : this.localSince.get(session.id);
  }

  /** Leaves the cluster: call after this node's sessions are closed, so their ends went out. */
  async close(): Promise<void> {
    this.left = true;
    this.deps.router.forwardServices(undefined);
    this.offServiceEvents?.();
    this.directory?.stop();
    this.requests.stop();
    if (this.enabled) this.membership.stop();
    // NATS down at shutdown: do not wait for a flush that cannot happen.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.bus.close(), new Promise<void>((resolve) => { timer = setTimeout(resolve, 2000); })]);
    clearTimeout(timer);
  }
}
