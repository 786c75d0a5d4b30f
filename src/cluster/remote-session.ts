// A session held by another cluster node, as this node sees it: its address, presence and
// roster interest copied from that node's announcements, and `send`/`close` that cross the
// bus to it. The session manager holds these beside the local sessions.
import type { ClientSession } from '../core/session.js';
import type { Element } from '../xml/element.js';
import { JID, parseJid } from '../jid.js';
import type { StreamError } from '../core/errors.js';
import { fromWire, toWire, type WireNode } from './codec.js';

/** A session as nodes announce it to each other. */
export interface SessionRecord {
  id: string;
  jid: string;
  address: string;
  secure: boolean;
  anonymous: boolean;
  presence: WireNode | null;
  priority: number;
  roster: boolean;
  /** When it was bound (ms since the epoch). */
  since: number;
  /**
   * Full JIDs it sent directed presence to (RFC 6121 4.6): if its node dies, the node cleaning
   * up sends them its unavailable presence. Absent from older nodes' records.
   */
  directed?: string[];
}

export function sessionRecord(s: ClientSession, since: number): SessionRecord {
  return {
    id: s.id, jid: s.jid.full, address: s.remoteAddress, secure: s.secure, anonymous: s.anonymous,
    presence: s.presence ? toWire(s.presence) : null, priority: s.priority, roster: s.rosterRequested, since,
    directed: [...s.directedPresence],
  };
}

/** What a remote session does with what is sent to it: hand it to its node. */
export interface RemoteLink {
  deliver(session: RemoteSession, stanza: Element): void;
  close(session: RemoteSession, error?: StreamError): void;
}

export class RemoteSession implements ClientSession {
  readonly id: string;
  readonly jid: JID;
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly anonymous: boolean;
  presence: Element | undefined;
  priority = 0;
  rosterRequested = false;
  since = 0;
  /** As its node announced it; only read when that node dies. */
  readonly directedPresence = new Set<string>();

  constructor(readonly node: string, readonly incarnation: string, record: SessionRecord, private readonly link: RemoteLink) {
    this.id = record.id;
    this.jid = parseJid(record.jid);
    if (!this.jid.resource) throw new Error(`a session needs a full JID, got ${record.jid}`);
    this.remoteAddress = String(record.address);
    this.secure = record.secure === true;
    this.anonymous = record.anonymous === true;
    this.update(record);
  }

  update(record: SessionRecord): void {
    this.presence = record.presence ? fromWire(record.presence) : undefined;
    this.priority = Number.isInteger(record.priority) ? record.priority : 0;
    this.rosterRequested = record.roster === true;
    this.since = typeof record.since === 'number' ? record.since : 0;
    this.directedPresence.clear();
    if (Array.isArray(record.directed)) for (const jid of record.directed) if (typeof jid === 'string') this.directedPresence.add(jid);
  }

  send(stanza: Element): void {
    this.link.deliver(this, stanza);
  }

  close(error?: StreamError): void {
    // Its own node broadcasts its unavailable presence when it ends; not this one too.
    this.presence = undefined;
    this.link.close(this, error);
  }
}
