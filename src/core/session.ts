// What the rest of the server sees of a connected, authenticated client, whatever transport
// carries it (TCP today; BOSH and WebSocket use the same stream logic).
import type { Element } from '../xml/element.js';
import type { JID } from '../jid.js';
import type { StreamError } from './errors.js';

export interface ClientSession {
  readonly id: string;
  /** Full JID once a resource is bound. */
  readonly jid: JID;
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly anonymous: boolean;
  /** The cluster node holding this session; undefined for a session of this node (see cluster/directory.ts). */
  readonly node?: string;
  /** Last available presence this resource broadcast; undefined while unavailable. */
  presence: Element | undefined;
  priority: number;
  /** The client asked for its roster, so it gets roster pushes (RFC 6121 2.1.6). */
  rosterRequested: boolean;
  /** Bare/full JIDs that got directed presence from this resource and must get its unavailable. */
  readonly directedPresence: Set<string>;
  send(stanza: Element): void;
  close(error?: StreamError): void;
}
