// The session directory: which node holds which full JID. Each node is the authority for its
// own sessions and announces every change (bound, presence/priority/roster interest changed,
// ended) with a sequence number; the others keep them as RemoteSessions in their session
// manager, so routing, presence and PubSub reach them through the same calls as local ones.
// A gap in the sequence (a message lost while NATS restarted, a node that joined late) is
// repaired by asking that node for a snapshot. When a node dies, its sessions are dropped
// everywhere and one node (the cleanup leader) ends them the way a closed stream would, so
// their contacts get unavailable presence once.
import type { Logger } from 'pino';
import type { ClusterBus } from './bus.js';
import type { Membership, Heartbeat, NodeInfo } from './membership.js';
import { RemoteSession, sessionRecord, type RemoteLink, type SessionRecord } from './remote-session.js';
import { fromWire, toWire, type WireNode } from './codec.js';
import type { SessionManager, LocalSessionChange } from '../core/sessions.js';
import type { ClientSession } from '../core/session.js';
import type { Hooks } from '../core/hooks.js';
import type { Routed, ServerEvents } from '../core/events.js';
import type { Router } from '../core/router.js';
import { StreamError, type StreamErrorCondition } from '../core/errors.js';
import type { Element } from '../xml/element.js';
import { tryParseJid } from '../jid.js';

export interface DirectoryOptions {
  bus: ClusterBus;
  prefix: string;
  nodeName: string;
  incarnation: string;
  membership: Membership;
  sessions: SessionManager;
  hooks: Hooks<ServerEvents>;
  router: Router;
  log: Logger;
  /** Registers background work (session/closed handlers) that a graceful stop waits for. */
  track(work: Promise<unknown>): void;
  /** Milliseconds to wait for a snapshot. */
  requestTimeout: number;
  /** Asked before a stanza leaves for another node; false drops it (traffic throttling). */
  admitOutgoing?(bytes: number): boolean;
}

interface DirectoryUpdate {
  node: string;
  inc: string;
  seq: number;
  kind: 'bound' | 'updated' | 'closed';
  s: SessionRecord;
}

interface Snapshot {
  seq: number;
  sessions: SessionRecord[];
}

/** What this node knows of one run (incarnation) of another node. */
interface PeerState {
  node: string;
  inc: string;
  /** Last applied sequence number; -1 before the first snapshot. */
  seq: number;
  sessions: Map<string, RemoteSession>;
  /** Updates received while a snapshot is on its way, applied after it. */
  buffered: DirectoryUpdate[] | undefined;
}

export class SessionDirectory implements RemoteLink {
  private seq = 0;
  private readonly boundAt = new Map<string, number>();
  private readonly peers = new Map<string, PeerState>();
  private readonly unsubscribers: (() => void)[] = [];
  /** True while a stanza forwarded by another node is being routed (see ClusterNode's service forwarder). */
  routingForwarded = false;
  private readonly syncing = new Set<Promise<void>>();

  constructor(private readonly o: DirectoryOptions) {}

  private subject(inc: string, what: string): string {
    return `${this.o.prefix}.node.${inc}.${what}`;
  }

  /** Sequence number of this node's last announcement and its number of own sessions (for heartbeats). */
  status(): { seq: number; sessions: number } {
    return { seq: this.seq, sessions: this.boundAt.size };
  }

  /** When a local session was bound (ms since the epoch). */
  boundSince(session: ClientSession): number | undefined {
    return session.node === undefined ? this.boundAt.get(session.id) : (session as RemoteSession).since;
  }

  start(): void {
    const { bus, prefix, incarnation, membership, sessions, hooks } = this.o;
    for (const s of sessions.local()) this.boundAt.set(s.id, Date.now());
    this.unsubscribers.push(
      sessions.watch((change, s) => this.localChange(change, s)),
      bus.subscribe(`${prefix}.directory`, (m) => this.received(m.data as DirectoryUpdate)),
      bus.subscribe(this.subject(incarnation, 'snapshot'), (m) => m.respond(this.snapshot())),
      bus.subscribe(this.subject(incarnation, 'deliver'), (m) => this.delivered(m.data as { jid: string; st: WireNode })),
      bus.subscribe(this.subject(incarnation, 'close'), (m) => this.closeRequested(m.data as { jid: string; id: string; condition?: string; text?: string })),
      bus.subscribe(this.subject(incarnation, 'route'), (m) => this.routeHere(m.data as { st: WireNode })),
    );
    membership.listen({
      joined: (n) => { void this.sync(n.name, n.incarnation); },
      gone: (n, reason) => this.dropNode(n, reason),
      heartbeat: (b) => this.heartbeat(b),
    });
    // Stanzas to the bare JID of an anonymous account held elsewhere are handled on its node:
    // its roster and other data live only in that node's memory.
    for (const kind of ['message', 'presence', 'iq'] as const) {
      this.unsubscribers.push(hooks.on(`${kind}/bare`, (r) => this.toAnonymousHome(r, kind), 1000));
    }
  }

  stop(): void {
    for (const u of this.unsubscribers.splice(0)) u();
  }

  // --- this node's sessions -------------------------------------------------------------------

  private localChange(change: LocalSessionChange, s: ClientSession): void {
    if (change === 'added') this.boundAt.set(s.id, Date.now());
    const since = this.boundAt.get(s.id) ?? Date.now();
    if (change === 'removed') this.boundAt.delete(s.id);
    const kind = change === 'added' ? 'bound' : change === 'updated' ? 'updated' : 'closed';
    const update: DirectoryUpdate = { node: this.o.nodeName, inc: this.o.incarnation, seq: ++this.seq, kind, s: sessionRecord(s, since) };
    this.o.bus.publish(`${this.o.prefix}.directory`, update);
  }

  private snapshot(): Snapshot {
    const sessions: SessionRecord[] = [];
    for (const s of this.o.sessions.local()) sessions.push(sessionRecord(s, this.boundAt.get(s.id) ?? Date.now()));
    return { seq: this.seq, sessions };
  }

  /** A stanza from another node, or undefined (logged) when it does not decode. */
  private decoded(st: WireNode): Element | undefined {
    try {
      return fromWire(st);
    } catch (e) {
      this.o.log.warn({ err: e }, 'cluster: dropping a malformed stanza from another node');
      return undefined;
    }
  }

  /** A stanza another node routed to one of our sessions. */
  private delivered({ jid, st }: { jid: string; st: WireNode }): void {
    const to = tryParseJid(jid);
    const stanza = this.decoded(st);
    if (!stanza || !to) return;
    const session = this.o.sessions.get(to.bare, to.resource);
    if (session && session.node === undefined) {
      session.send(stanza);
      return;
    }
    // The session ended on the way. With no other node holding that full JID, a message gets
    // the local rules (another resource, offline storage); anything else is dropped, never
    // bounced between nodes.
    if (!session && stanza.name === 'message') {
      void this.o.router.route(stanza);
      return;
    }
    this.o.log.debug({ to: jid, stanza: stanza.name }, 'cluster: stanza for a session that is no longer here');
  }

  private closeRequested({ jid, id, condition, text }: { jid: string; id: string; condition?: string; text?: string }): void {
    const to = tryParseJid(jid);
    const session = to ? this.o.sessions.get(to.bare, to.resource) : undefined;
    if (!session || session.node !== undefined || session.id !== id) return;
    session.close(condition ? new StreamError(condition as StreamErrorCondition, text) : undefined);
  }

  private routeHere({ st }: { st: WireNode }): void {
    const stanza = this.decoded(st);
    if (!stanza) return;
    // Router.route reaches the service forwarder before its first await, so the flag covers it.
    this.routingForwarded = true;
    try {
      void this.o.router.route(stanza);
    } finally {
      this.routingForwarded = false;
    }
  }

  /** Hands a stanza to another node, which routes it as if it had arrived there. */
  forward(incarnation: string, stanza: Element): void {
    this.send(this.subject(incarnation, 'route'), { st: toWire(stanza) });
  }

  private toAnonymousHome(r: Routed, kind: 'message' | 'presence' | 'iq'): boolean {
    // A client's own presence to it is first handled here, on the sender's side (its roster);
    // the presence module then routes it again, without origin, and that leg goes home.
    if (kind === 'presence' && r.origin) return false;
    const resources = this.o.sessions.resources(r.to.bare);
    if (resources.length === 0 || resources.some((s) => s.node === undefined)) return false;
    const remote = resources.find((s) => s.anonymous) as RemoteSession | undefined;
    if (!remote) return false;
    this.forward(remote.incarnation, r.stanza);
    return true;
  }

  // --- RemoteLink: what RemoteSessions do --------------------------------------------------------

  deliver(session: RemoteSession, stanza: Element): void {
    this.send(this.subject(session.incarnation, 'deliver'), { jid: session.jid.full, st: toWire(stanza) });
  }

  close(session: RemoteSession, error?: StreamError): void {
    this.send(this.subject(session.incarnation, 'close'), { jid: session.jid.full, id: session.id, condition: error?.condition, text: error?.text });
  }

  private send(subject: string, data: unknown): void {
    if (this.o.admitOutgoing && !this.o.admitOutgoing(JSON.stringify(data).length)) {
      this.o.log.warn({ subject }, 'cluster: traffic limit reached, stanza to another node dropped');
      return;
    }
    this.o.bus.publish(subject, data);
  }

  // --- the other nodes' sessions -----------------------------------------------------------------

  private received(u: DirectoryUpdate): void {
    if (!u || typeof u.node !== 'string' || typeof u.inc !== 'string' || u.inc === this.o.incarnation) return;
    const peer = this.peers.get(u.inc);
    if (!peer) {
      // A node we have not synchronised with yet: its snapshot will include this change.
      void this.sync(u.node, u.inc);
      return;
    }
    if (peer.buffered) {
      peer.buffered.push(u);
      return;
    }
    if (u.seq !== peer.seq + 1) {
      if (u.seq > peer.seq) void this.sync(u.node, u.inc);
      return;
    }
    peer.seq = u.seq;
    this.apply(peer, u);
  }

  private heartbeat(b: Heartbeat): void {
    const peer = this.peers.get(b.inc);
    if (!peer || (!peer.buffered && peer.seq !== b.seq)) void this.sync(b.node, b.inc);
  }

  private apply(peer: PeerState, { kind, s }: DirectoryUpdate): void {
    try {
      const existing = peer.sessions.get(s.jid);
      if (kind === 'bound') this.addRemote(peer, s);
      else if (kind === 'updated') { if (existing?.id === s.id) existing.update(s); }
      else if (existing?.id === s.id) {
        peer.sessions.delete(s.jid);
        this.o.sessions.remove(existing);
      }
    } catch (e) {
      this.o.log.warn({ err: e, node: peer.node }, 'cluster: ignoring a malformed session announcement');
    }
  }

  private addRemote(peer: PeerState, record: SessionRecord): void {
    const session = new RemoteSession(peer.node, peer.inc, record, this);
    const old = peer.sessions.get(session.jid.full);
    if (old) this.o.sessions.remove(old);
    peer.sessions.set(session.jid.full, session);
    const previous = this.o.sessions.add(session);
    if (!previous || previous === old) return;
    if (previous.node === undefined) {
      // RFC 6120 7.7.2.2 across nodes: the newer session for a full JID wins; ours ends with conflict.
      previous.close(new StreamError('conflict', 'replaced by a new connection for the same resource'));
      this.o.track(this.o.hooks.fire('session/closed', previous));
    } else {
      for (const p of this.peers.values()) if (p.sessions.get(previous.jid.full) === previous) p.sessions.delete(previous.jid.full);
    }
  }

  /** Resolves once no snapshot is on its way. */
  async idle(): Promise<void> {
    while (this.syncing.size) await Promise.all([...this.syncing]);
  }

  private sync(node: string, inc: string): Promise<void> {
    const work = this.fetchSnapshot(node, inc);
    this.syncing.add(work);
    void work.finally(() => this.syncing.delete(work));
    return work;
  }

  /** Fetches a node's sessions and replaces what we had of them. */
  private async fetchSnapshot(node: string, inc: string): Promise<void> {
    // Never for a run that has been replaced or declared dead (a late message from it).
    const known = this.o.membership.get(node);
    if (known && (known.incarnation === inc ? known.state === 'disconnected' : known.state === 'connected' && !this.peers.has(inc))) return;
    let peer = this.peers.get(inc);
    if (peer?.buffered) return;
    if (!peer) {
      peer = { node, inc, seq: -1, sessions: new Map(), buffered: undefined };
      this.peers.set(inc, peer);
    }
    peer.buffered = [];
    let snapshot: Snapshot | undefined;
    try {
      const replies = await this.o.bus.request(this.subject(inc, 'snapshot'), {}, { timeout: this.o.requestTimeout, expected: 1 });
      snapshot = replies[0] as Snapshot | undefined;
    } catch (e) {
      this.o.log.warn({ err: e, node }, 'cluster: snapshot request failed');
    }
    const buffered = peer.buffered;
    peer.buffered = undefined;
    if (this.peers.get(inc) !== peer) return; // the node went away meanwhile
    if (!snapshot || !Array.isArray(snapshot.sessions) || typeof snapshot.seq !== 'number') {
      this.o.log.warn({ node }, 'cluster: no snapshot from a node; retrying at its next heartbeat');
      return;
    }
    const present = new Set<string>();
    for (const record of snapshot.sessions) {
      try {
        const existing = peer.sessions.get(record.jid);
        if (existing?.id === record.id) existing.update(record);
        else this.addRemote(peer, record);
        present.add(record.jid);
      } catch (e) {
        this.o.log.warn({ err: e, node }, 'cluster: ignoring a malformed session in a snapshot');
      }
    }
    for (const [jid, s] of peer.sessions) {
      if (!present.has(jid)) {
        peer.sessions.delete(jid);
        this.o.sessions.remove(s);
      }
    }
    peer.seq = snapshot.seq;
    this.o.log.debug({ node, sessions: peer.sessions.size, seq: peer.seq }, 'cluster: synchronised with a node');
    for (const u of buffered) if (u.seq > peer.seq) this.received(u);
  }

  private dropNode(node: NodeInfo, reason: 'left' | 'dead'): void {
    const peer = this.peers.get(node.incarnation);
    if (!peer) return;
    this.peers.delete(node.incarnation);
    const lead = reason === 'dead' && this.o.membership.isCleanupLeader();
    let ended = 0;
    for (const s of peer.sessions.values()) {
      if (!this.o.sessions.remove(s)) continue;
      ended++;
      // As if its stream had closed here: contacts get unavailable presence, presence-bound
      // PubSub subscriptions end, last activity is recorded. Once, by the cleanup leader.
      if (lead) this.o.track(this.o.hooks.fire('session/closed', s));
    }
    if (ended) this.o.log.info({ node: node.name, sessions: ended, reason, cleanup: lead }, 'cluster: dropped the sessions of a node');
  }
}
