// The session manager: which resources each account has connected, and their presence. In a
// cluster it also holds the sessions of the other nodes (cluster/directory.ts keeps them, as
// sessions whose `send` crosses to their node), so modules route and look up the same way
// whether they run alone or clustered.
import type { ClientSession } from './session.js';

/** A change to one of this node's own sessions (the cluster directory publishes them). */
export type LocalSessionChange = 'added' | 'updated' | 'removed';

export class SessionManager {
  private readonly byBare = new Map<string, Map<string, ClientSession>>();
  private count = 0;
  private readonly watchers = new Set<(change: LocalSessionChange, session: ClientSession) => void>();

  /** Follows this node's own sessions: bound, changed (presence, priority, roster interest), ended. */
  watch(watcher: (change: LocalSessionChange, session: ClientSession) => void): () => void {
    this.watchers.add(watcher);
    return () => { this.watchers.delete(watcher); };
  }

  /** A local session's presence, priority or roster interest changed. */
  updated(session: ClientSession): void {
    if (session.node === undefined && this.get(session.jid.bare, session.jid.resource) === session) this.notify('updated', session);
  }

  private notify(change: LocalSessionChange, session: ClientSession): void {
    for (const w of this.watchers) w(change, session);
  }

  get size(): number {
    return this.count;
  }

  /** Registers a bound session; returns the session it replaces (same full JID), if any. */
  add(session: ClientSession): ClientSession | undefined {
    const bare = session.jid.bare;
    let resources = this.byBare.get(bare);
    if (!resources) this.byBare.set(bare, (resources = new Map()));
    const previous = resources.get(session.jid.resource);
    resources.set(session.jid.resource, session);
    if (!previous) this.count++;
    if (session.node === undefined) this.notify('added', session);
    return previous;
  }

  /** Removes a session if it is still the one registered for its full JID. */
  remove(session: ClientSession): boolean {
    const bare = session.jid.bare;
    const resources = this.byBare.get(bare);
    if (!resources || resources.get(session.jid.resource) !== session) return false;
    resources.delete(session.jid.resource);
    if (resources.size === 0) this.byBare.delete(bare);
    this.count--;
    if (session.node === undefined) this.notify('removed', session);
    return true;
  }

  get(bare: string, resource: string): ClientSession | undefined {
    return this.byBare.get(bare)?.get(resource);
  }

  /** All bound sessions of an account. */
  resources(bare: string): ClientSession[] {
    const r = this.byBare.get(bare);
    return r ? [...r.values()] : [];
  }

  /** Sessions of an account that have sent available presence. */
  available(bare: string): ClientSession[] {
    const r = this.byBare.get(bare);
    if (!r) return [];
    const out: ClientSession[] = [];
    for (const s of r.values()) if (s.presence) out.push(s);
    return out;
  }

  /**
   * The resources a message to a bare JID goes to (RFC 6121 8.5.2.1.1): never those with a
   * negative priority; headlines to all the others, other types to those of the highest priority.
   */
  bareMessageRecipients(bare: string, type: string): ClientSession[] {
    const eligible = this.available(bare).filter((s) => s.priority >= 0);
    if (type === 'headline' || eligible.length <= 1) return eligible;
    const top = Math.max(...eligible.map((s) => s.priority));
    return eligible.filter((s) => s.priority === top);
  }

  isOnline(bare: string): boolean {
    return this.byBare.has(bare);
  }

  /** This node's own sessions (those a shutdown closes). */
  *local(): IterableIterator<ClientSession> {
    for (const s of this.all()) if (s.node === undefined) yield s;
  }

  /** How many sessions this node holds (`size` counts the other nodes' too, in a cluster). */
  localCount(): number {
    let n = 0;
    for (const _ of this.local()) n++;
    return n;
  }

  /** Every session, this node's and, in a cluster, the other nodes'. */
  all(): IterableIterator<ClientSession> {
    const maps = this.byBare.values();
    return (function* () {
      for (const m of maps) yield* m.values();
    })();
  }
}
