// Session lifecycle for the domain services. PubSub keeps its subscriptions in the memory of the
// node serving it (the oldest node in a cluster), so what ends expire=presence subscriptions or
// sends last items on initial presence must run there, whichever node holds the session. This
// relay turns the session's own events into 'service/session-available' and
// 'service/session-unavailable' and fires them on the serving node: here when this node serves
// (always, alone), else on the serving node over the bus.
import type { Logger } from 'pino';
import type { Hooks } from '../core/hooks.js';
import type { ServerEvents } from '../core/events.js';
import type { SessionManager } from '../core/sessions.js';
import type { ClientSession } from '../core/session.js';
import { parseJid, tryParseJid } from '../jid.js';
import type { ClusterBus } from './bus.js';

interface RelayedEvent {
  kind: 'available' | 'unavailable' | 'account-deleted';
  /** A full JID, or the bare JID of the deleted account. */
  jid: string;
  accountStillAvailable?: boolean;
}

export interface ServiceEventsOptions {
  hooks: Hooks<ServerEvents>;
  sessions: SessionManager;
  log: Logger;
  track(work: Promise<unknown>): void;
  /** Cluster mode: where the serving node is; absent on a single server. */
  cluster?: {
    bus: ClusterBus;
    subject(incarnation: string): string;
    /** This node's incarnation, to subscribe to its own subject. */
    incarnation: string;
    /** The serving node's incarnation, or undefined when this node serves. */
    servingElsewhere(): string | undefined;
  };
}

export function relayServiceEvents(o: ServiceEventsOptions): () => void {
  const othersAvailable = (session: ClientSession) => o.sessions.available(session.jid.bare).some((s) => s !== session);
  const fire = (event: RelayedEvent) => {
    const elsewhere = o.cluster?.servingElsewhere();
    if (elsewhere !== undefined) {
      o.cluster!.bus.publish(o.cluster!.subject(elsewhere), event);
      return Promise.resolve();
    }
    return fireHere(event);
  };
  const fireHere = async (event: RelayedEvent): Promise<void> => {
    if (event.kind === 'account-deleted') {
      const jid = parseJid(event.jid);
      await o.hooks.fire('service/account-deleted', { domain: jid.domain, username: jid.local });
      return;
    }
    if (event.kind === 'unavailable') {
      await o.hooks.fire('service/session-unavailable', { jid: parseJid(event.jid), accountStillAvailable: event.accountStillAvailable === true });
      return;
    }
    const jid = tryParseJid(event.jid);
    const session = jid ? o.sessions.get(jid.bare, jid.resource) : undefined;
    if (session) await o.hooks.fire('service/session-available', session);
  };
  const offs = [
    // Above the presence module, which claims the broadcast.
    o.hooks.on('presence/broadcast', ({ stanza, origin }) => {
      if (stanza.attrs.type === 'unavailable') return fire({ kind: 'unavailable', jid: origin.jid.full, accountStillAvailable: othersAvailable(origin) }).then(() => false);
      return false;
    }, 100),
    o.hooks.on('session/closed', (session) => fire({ kind: 'unavailable', jid: session.jid.full, accountStillAvailable: othersAvailable(session) }).then(() => false)),
    o.hooks.on('presence/initial', (session) => fire({ kind: 'available', jid: session.jid.full }).then(() => false)),
    o.hooks.on('account/deleted', ({ domain, username }) => fire({ kind: 'account-deleted', jid: `${username}@${domain}` }).then(() => false)),
  ];
  if (o.cluster) {
    offs.push(o.cluster.bus.subscribe(o.cluster.subject(o.cluster.incarnation), (m) => {
      const event = m.data as RelayedEvent;
      if (!event || !['available', 'unavailable', 'account-deleted'].includes(event.kind) || !tryParseJid(event.jid)) {
        o.log.warn('cluster: dropping a malformed service event');
        return;
      }
      o.track(fireHere(event));
    }));
  }
  return () => { for (const off of offs) off(); };
}
