// The events the core fires and modules hook (see core/hooks.ts).
import type { Element } from '../xml/element.js';
import type { JID } from '../jid.js';
import type { ClientSession } from './session.js';
import type { RosterItem } from '../storage/types.js';
import type { DeviceState } from '../telephony/device-state.js';

/** A stanza on its way to a local target, with addresses already parsed and stamped. */
export interface Routed {
  stanza: Element;
  from: JID;
  to: JID;
  /** The local client session it came from, if any. */
  origin?: ClientSession;
}

export interface ServerEvents {
  // Routing steps, by stanza kind and what `to` names on a local virtual host.
  'message/full': Routed;
  'message/bare': Routed;
  'message/host': Routed;
  'presence/full': Routed;
  'presence/bare': Routed;
  'presence/host': Routed;
  'iq/full': Routed;
  'iq/bare': Routed;
  'iq/host': Routed;
  /**
   * Every stanza a bound client sends, before it is routed anywhere (local, service or remote):
   * a handler returning true has dealt with it (e.g. refused it: a traffic limit) and it goes no further.
   */
  'client/stanza': { stanza: Element; origin: ClientSession };
  /** Presence a client sent without `to`: a broadcast (initial, update or unavailable). */
  'presence/broadcast': { stanza: Element; origin: ClientSession };
  /** A message to an account with no resource that could take it (offline storage hooks here). */
  'message/undeliverable': Routed;
  /** A client sent its first available presence; fired after the broadcast. */
  'presence/initial': ClientSession;
  'session/bound': ClientSession;
  /** A bound session ended, for any reason. */
  'session/closed': ClientSession;
  /** A roster item changed (or was removed); the roster module pushes it to interested resources. */
  'roster/changed': { owner: string; item: RosterItem; removed: boolean };
  'account/deleted': { domain: string; username: string };
  /**
   * A client proved who it is (SASL or jabber:iq:auth) and is about to be logged in. A handler
   * that returns true refuses the login (e.g. a disabled account), with `refusal` as the text
   * the client gets.
   */
  'account/authenticating': { domain: string; username: string; anonymous: boolean; refusal?: string };
  /** An authentication attempt failed on wrong credentials (SASL not-authorized or jabber:iq:auth). */
  'auth/failed': { address: string; domain: string };
  /**
   * disco#items of a virtual host (no node) is being answered for `from`: handlers append
   * items, which may depend on who asks (admin components are shown to administrators only).
   */
  'disco/host-items': { from: JID; to: JID; items: Element[] };
  /**
   * This node starts serving the domain services (PubSub) after another cluster node did: state
   * they keep in memory must be read again from storage, where the other node left it.
   */
  'services/reload': Record<string, never>;
  /**
   * A resource sent its initial presence, as the domain services (PubSub) see it: fired on the
   * node serving them for sessions of every node, after the session's own 'presence/initial'.
   */
  'service/session-available': ClientSession;
  /**
   * A resource went unavailable or its session ended, as the domain services see it (fired like
   * 'service/session-available'); `accountStillAvailable`: another resource of the account is available.
   */
  'service/session-unavailable': { jid: JID; accountStillAvailable: boolean };
  /** An account was deleted, as the domain services see it (fired like 'service/session-available'). */
  'service/account-deleted': { domain: string; username: string };
  /**
   * disco#info of a virtual host (no node) is being answered: handlers append XEP-0128 extension
   * forms (one per FORM_TYPE: a handler adds its fields to a form of the same type already there).
   */
  'disco/host-info': { from: JID; to: JID; forms: Element[] };
  /** disco#info of an account's bare JID (no node) is being answered: handlers append identities and features (PEP). */
  'disco/account-info': { from: JID; to: JID; identities: Element[]; features: string[] };
  /** disco#items of an account's bare JID (no node) is being answered: handlers append items (PEP nodes). */
  'disco/account-items': { from: JID; to: JID; items: Element[] };
  /**
   * An Asterisk device state was published over XMPP to a host's PubSub service (its device-state
   * node or a leaf below it), under the entity id `eid` of the reporting server; fired by the
   * pubsub module after delivery. The AMI relay writes it to AMI-connected servers.
   */
  'device-state/published': { host: string; device: string; state: DeviceState; eid: string; publisher: string };
  /**
   * A server outside XMPP reported a device state (the AMI relay; `source` names the link): the
   * pubsub module publishes it on the host's service as Asterisk res_xmpp would, under `eid`.
   */
  'device-state/reported': { host: string; device: string; state: DeviceState; eid: string; source: string };
  /**
   * A relay that starts (the AMI relay) asks for the device states stored on a host's PubSub
   * service: the pubsub module fires 'device-state/published' for each, oldest first.
   */
  'device-state/replay': { host: string };
}
