// The session manager: which resources each local account has connected, and their presence.
import type { ClientSession } from './session.js';

export class SessionManager {
  private readonly byBare = new Map<string, Map<string, ClientSession>>();
  private count = 0;

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

  all(): IterableIterator<ClientSession> {
    const maps = this.byBare.values();
    return (function* () {
      for (const m of maps) yield* m.values();
    })();
  }
}
