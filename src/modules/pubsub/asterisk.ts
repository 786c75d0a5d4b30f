// COMPAT: Asterisk res_xmpp as the wire shows it (test/fixtures/asterisk/README.md). Everything
// the PubSub service does differently for Asterisk is decided here, so the engine stays plain
// XEP-0060 and an admin can switch these rules off per service:
// - zero setup: the nodes Asterisk subscribes and publishes to are created when first named;
// - payload validation: items that would crash a subscribed Asterisk (SIGSEGV in
//   xmpp_pubsub_handle_event, res_xmpp.c) are refused before they reach anyone;
// - request shapes Asterisk really sends (a retried publish with a trailing <error>, a
//   publish-options form that is meant per item).
import type { Element } from '../../xml/element.js';
import type { AccessModel, NodeConfig, PublishModel } from './config.js';
import { pubsubError } from './errors.js';
import { DEVICE_STATES } from '../../telephony/device-state.js';

export const NS_ASTERISK = 'http://asterisk.org';

export { DEVICE_STATES, type DeviceState } from '../../telephony/device-state.js';

/** An Asterisk entity id as ast_eid_to_str writes it: six hex bytes separated by colons. */
const EID = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const COUNT = /^\d{1,10}$/;

export interface AsteriskOptions {
  /** All Asterisk rules at once; off gives a plain XEP-0060 service. */
  enabled: boolean;
  'device-state-node': string;
  'mwi-node': string;
  /** Create the nodes and collections Asterisk names but never creates (or creates too late). */
  autocreate: boolean;
  /** Refuse items that crash Asterisk. */
  'validate-payloads': boolean;
  'access-model': AccessModel;
  'publish-model': PublishModel;
}

/** What the service should create for a request that names a missing node. */
export type AutocreatePlan = { node: string; type: 'leaf' | 'collection'; collection?: string }[];

export class AsteriskRules {
  constructor(private readonly options: AsteriskOptions) {}

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** The node names Asterisk uses: one node each in flat mode, one collection each with XEP-0248. */
  get eventNodes(): { deviceState: string; mwi: string } {
    return { deviceState: this.options['device-state-node'], mwi: this.options['mwi-node'] };
  }

  private isEventNode(node: string): boolean {
    return node === this.options['device-state-node'] || node === this.options['mwi-node'];
  }

  /** Whether items of a node reach Asterisk subscribers: the event nodes and every leaf below them. */
  carriesAsteriskEvents(node: string, ancestors: readonly string[]): boolean {
    return this.options.enabled && (this.isEventNode(node) || ancestors.some((a) => this.isEventNode(a)));
  }

  /** The configuration of a node the service creates for Asterisk (nobody owns it; admins manage it). */
  autocreatedConfig(base: NodeConfig, type: 'leaf' | 'collection', collection?: string): NodeConfig {
    return {
      ...base,
      nodeType: type,
      accessModel: this.options['access-model'],
      publishModel: this.options['publish-model'],
      deliverPayloads: true,
      // A subscriber (re)connecting learns the current state at once.
      sendLastPublishedItem: 'on_sub',
      collection: collection ? [collection] : [],
    };
  }

  private get autocreating(): boolean {
    return this.options.enabled && this.options.autocreate;
  }

  /**
   * A subscribe to a missing node. Asterisk subscribes to the two event nodes at login and never
   * retries a failed subscribe; its own recovery creates a node, too late. With XEP-0248 it asks
   * for subscription_type/subscription_depth, options only a collection has.
   */
  planForSubscribe(node: string, optionFields: ReadonlySet<string>): AutocreatePlan {
    if (!this.autocreating || !this.isEventNode(node)) return [];
    const collection = optionFields.has('pubsub#subscription_type') || optionFields.has('pubsub#subscription_depth');
    return [{ node, type: collection ? 'collection' : 'leaf' }];
  }

  /**
   * A publish to a missing node. Flat mode publishes to the event nodes themselves (MWI with no
   * create at all); XEP-0248 mode publishes to a leaf named after the device or mailbox (MWI's
   * `1234@default` is never created), whose payload says which collection it belongs to.
   */
  planForPublish(node: string, payload: Element | undefined, existing: (name: string) => 'leaf' | 'collection' | undefined): AutocreatePlan {
    if (!this.autocreating) return [];
    if (this.isEventNode(node)) return [{ node, type: 'leaf' }];
    const kind = payload?.name;
    const collection = kind === 'state' ? this.options['device-state-node'] : kind === 'mailbox' ? this.options['mwi-node'] : undefined;
    if (!collection || payload?.attrs.xmlns !== NS_ASTERISK) return [];
    switch (existing(collection)) {
      case 'collection': return [{ node, type: 'leaf', collection }];
      case undefined: return [{ node: collection, type: 'collection' }, { node, type: 'leaf', collection }];
      // A flat-mode node of that name: servers of one cluster in different modes; leave it as it is.
      case 'leaf': return [];
    }
  }

  /** A leaf created by Asterisk names its collection before anyone subscribed to (and so created) it. */
  planForCollection(collection: string): AutocreatePlan {
    return this.autocreating && this.isEventNode(collection) ? [{ node: collection, type: 'collection' }] : [];
  }

  /**
   * Refuses an item that would crash an Asterisk receiving it. Asterisk reads the first child of
   * <item> without checking it exists or is an element; for <state> (name compared ignoring case,
   * then looked up exactly) it parses the eid attribute and the text, for <mailbox> the eid,
   * OLDMSGS and NEWMSGS, and splits the item id at '@' into mailbox and context, passing each on
   * unchecked. Other payloads it ignores, so they pass.
   */
  validateItem(itemId: string, payload: Element[]): void {
    if (!this.options.enabled || !this.options['validate-payloads']) return;
    const refuse = (why: string) => pubsubError('bad-request', 'invalid-payload', `refused for Asterisk subscribers: ${why}`);
    if (payload.length !== 1) throw pubsubError('bad-request', 'payload-required', 'refused for Asterisk subscribers: an item here carries exactly one payload element');
    const content = payload[0]!;
    const kind = content.name.toLowerCase();
    if (kind !== 'state' && kind !== 'mailbox') return;
    if (content.name !== kind) throw refuse(`<${content.name}> is read as <${kind}> but its fields are then not found`);
    if (!EID.test(content.attrs.eid ?? '')) throw refuse(`<${kind}> needs an eid of the form 00:11:22:33:44:55`);
    if (kind === 'state') {
      const state = content.text().trim();
      if (!(DEVICE_STATES as readonly string[]).includes(state)) throw refuse(`<state> must be one of ${DEVICE_STATES.join(', ')}`);
      return;
    }
    for (const count of ['NEWMSGS', 'OLDMSGS']) {
      if (!COUNT.test(content.getChildText(count)?.trim() ?? '')) throw refuse(`<mailbox> needs <${count}> with a count`);
    }
    if (!/^[^@]+@[^@]+$/.test(itemId)) throw refuse('a mailbox item id is mailbox@context');
  }

  /**
   * A set IQ with children after the <pubsub>. After a 404 on publish Asterisk creates the node and
   * re-sends the failed IQ's children, which include the server's <error>. RFC 6120 allows one
   * child; this accepts the first and ignores trailing <error> elements.
   */
  acceptsTrailing(extra: Element[]): boolean {
    return this.options.enabled && extra.length > 0 && extra.every((e) => e.name === 'error');
  }

  /**
   * Asterisk sends pubsub#persist_items=0 in publish-options for non-cachable states. As a
   * precondition (XEP-0060 7.1.5) it fails on a persistent node, and Asterisk only logs that: the
   * state would never be distributed. Taken as an option of this item instead: not stored.
   */
  persistItemsIsPerItem(): boolean {
    return this.options.enabled;
  }
}
