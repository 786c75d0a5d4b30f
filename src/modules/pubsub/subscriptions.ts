// Subscriptions of one service (XEP-0060 sections 6.1-6.4, 8.6-8.9, XEP-0248 section 3): subscribe
// and unsubscribe with the JID rules, options, approval of pending subscriptions for the
// authorize model, owner management of subscriptions and affiliations, and subscriptions that
// end with the subscriber's presence (pubsub#expire=presence).
import { parseJid, type JID } from '../../jid.js';
import type { ClientSession } from '../../core/session.js';
import { xml } from '../../xml/element.js';
import { bareOf } from './access.js';
import {
  FORM_SUBSCRIBE_OPTIONS, applySubscriptionOptionsForm, defaultSubscriptionOptions, subscriptionOptionsFields,
} from './config.js';
import { forbidden, pubsubError } from './errors.js';
import { formElement, parseBoolean, type SubmittedForm } from './forms.js';
import type { Affiliation, Item, PubSubNode, Subscription } from './nodes.js';
import { NS_PUBSUB_EVENT } from './notify.js';
import type { PubSubService } from './service.js';

export const FORM_SUBSCRIBE_AUTHORIZATION = 'http://jabber.org/protocol/pubsub#subscribe_authorization';

const AFFILIATIONS: readonly Affiliation[] = ['owner', 'publisher', 'publish-only', 'member', 'outcast', 'none'];
type SubscriptionState = Subscription['state'] | 'none';
const SUBSCRIPTION_STATES: readonly SubscriptionState[] = ['subscribed', 'pending', 'unconfigured', 'none'];

/** A JID attribute of a request, normalised; a bad one is bad-request with invalid-jid. */
function requestJid(value: string | undefined): string {
  if (!value) throw pubsubError('bad-request', 'jid-required', 'a jid attribute is required');
  try {
    return parseJid(value).full;
  } catch {
    throw pubsubError('bad-request', 'invalid-jid', `${value} is not a valid JID`);
  }
}

export class Subscriptions {
  constructor(private readonly service: PubSubService) {}

  private get tree() {
    return this.service.tree;
  }

  private get access() {
    return this.service.access;
  }

  /**
   * Section 6.1. Only the requester's own JIDs may be subscribed (section 6.1.3.1), except by
   * administrators. An existing subscription of the same JID is returned (with new options if
   * given) rather than doubled: Asterisk subscribes again at every login.
   */
  async subscribe(requester: JID, name: string, jidValue: string | undefined, form: SubmittedForm | undefined): Promise<Subscription> {
    const jid = requestJid(jidValue);
    if (bareOf(jid) !== requester.bare && !this.service.ctx.isAdmin(requester.bare)) {
      throw pubsubError('bad-request', 'invalid-jid', 'you may only subscribe your own JID');
    }
    if (!this.tree.get(name)) await this.service.autocreate(this.service.asterisk.planForSubscribe(name, new Set(form?.fields.keys())));
    const node = this.service.node(name);
    if (!node.config.subscribe) throw pubsubError('not-allowed', undefined, `${name} does not take subscriptions`);
    await this.access.checkAccess(node, bareOf(jid), 'subscribe');
    const options = form ? applySubscriptionOptionsForm(form, defaultSubscriptionOptions()) : defaultSubscriptionOptions();
    const [existing] = node.subscriptionsOf(jid);
    if (existing?.state === 'pending') throw pubsubError('not-authorized', 'pending-subscription', 'your subscription awaits approval', 'auth');
    if (existing) {
      if (form) await this.tree.saveSubscription(node, { ...existing, options });
      return node.subscriptions.get(existing.subid)!;
    }
    const pending = node.config.accessModel === 'authorize' && this.access.affiliation(node, bareOf(jid)) === 'none';
    const subscription = await this.tree.subscribe(node, jid, pending ? 'pending' : 'subscribed', options);
    if (pending) await this.askOwners(node, subscription);
    else await this.tellOwners(node, subscription, 'subscribed');
    return subscription;
  }

  /** Sends the last published items a new subscription is owed (send_last_published_item). */
  async sendLastItems(subscription: Subscription, session?: ClientSession): Promise<void> {
    const node = this.tree.get(subscription.node);
    if (!node || subscription.state !== 'subscribed' || node.config.sendLastPublishedItem === 'never') return;
    const items: { node: PubSubNode; item: Item }[] = [];
    const leaves = !node.isCollection ? [node]
      : subscription.options.subscriptionType !== 'items' ? []
        : subscription.options.subscriptionDepth === 'all' ? this.tree.descendants(node)
          : [...node.children].map((c) => this.tree.get(c)!);
    for (const leaf of leaves) {
      if (leaf.isCollection || !(await this.access.mayReceiveFrom(leaf, bareOf(subscription.jid)))) continue;
      const item = await this.service.lastItem(leaf);
      if (item) items.push({ node: leaf, item });
    }
    await this.service.notifier.lastItems(subscription, items, session);
  }

  /** send_last_published_item=on_sub_and_presence: a subscriber's resource coming online gets the last items again. */
  async presenceAvailable(session: ClientSession): Promise<void> {
    for (const node of this.tree.all()) {
      if (node.config.sendLastPublishedItem !== 'on_sub_and_presence') continue;
      for (const s of [...node.subscriptions.values()]) {
        if (s.jid === session.jid.full || s.jid === session.jid.bare) await this.sendLastItems(s, session);
      }
    }
  }

  /** Section 6.2. */
  async unsubscribe(requester: JID, name: string, jidValue: string | undefined, subid: string | undefined): Promise<void> {
    const jid = requestJid(jidValue);
    const node = this.service.node(name);
    if (bareOf(jid) !== requester.bare && !this.access.isOwner(node, requester.bare)) throw forbidden('you may only unsubscribe your own JID');
    const subscription = this.find(node, jid, subid);
    await this.tree.unsubscribe(node, subscription);
    await this.tellOwners(node, subscription, 'none');
  }

  /** Section 6.3: the options form of a subscription. */
  optionsForm(requester: JID, name: string, jidValue: string | undefined, subid: string | undefined) {
    const { node, subscription } = this.ownSubscription(requester, name, jidValue, subid);
    return formElement('form', FORM_SUBSCRIBE_OPTIONS, subscriptionOptionsFields(subscription.options, node.isCollection));
  }

  async setOptions(requester: JID, name: string, jidValue: string | undefined, subid: string | undefined, form: SubmittedForm): Promise<void> {
    const { node, subscription } = this.ownSubscription(requester, name, jidValue, subid);
    await this.tree.saveSubscription(node, { ...subscription, options: applySubscriptionOptionsForm(form, subscription.options) });
  }

  /** Section 6.4: the default subscription options. */
  defaultOptionsForm() {
    return formElement('form', FORM_SUBSCRIBE_OPTIONS, subscriptionOptionsFields(defaultSubscriptionOptions(), true));
  }

  /** Section 5.6: the requester's subscriptions, of one node or all. */
  of(requester: JID, name: string | undefined): Subscription[] {
    const nodes = name !== undefined ? [this.service.node(name)] : [...this.tree.all()];
    return nodes.flatMap((n) => [...n.subscriptions.values()].filter((s) => bareOf(s.jid) === requester.bare));
  }

  /** Section 5.7: the requester's affiliations, of one node or all. */
  affiliationsOf(requester: JID, name: string | undefined): { node: string; affiliation: Affiliation }[] {
    const nodes = name !== undefined ? [this.service.node(name)] : [...this.tree.all()];
    return nodes.map((n) => ({ node: n.name, affiliation: n.affiliation(requester.bare) })).filter((a) => a.affiliation !== 'none');
  }

  /** Section 8.8.1: every subscription of a node, for its owners. */
  ofNode(requester: JID, name: string): Subscription[] {
    const node = this.service.node(name);
    this.access.requireOwner(node, requester.bare);
    return [...node.subscriptions.values()];
  }

  /** Section 8.8.2: owners set subscription states; the subscriber is told (section 8.8.4). */
  async manage(requester: JID, name: string, changes: { jid: string | undefined; state: string | undefined; subid: string | undefined }[]): Promise<void> {
    const node = this.service.node(name);
    this.access.requireOwner(node, requester.bare);
    const valid = changes.map((c) => {
      if (!SUBSCRIPTION_STATES.includes(c.state as SubscriptionState)) throw pubsubError('bad-request', undefined, `unknown subscription state ${c.state}`);
      return { jid: requestJid(c.jid), state: c.state as SubscriptionState, subid: c.subid };
    });
    for (const change of valid) {
      const current = change.subid ? node.subscriptions.get(change.subid) : node.subscriptionsOf(change.jid)[0];
      if (change.state === 'none') {
        if (current) await this.tree.unsubscribe(node, current);
      } else if (current) {
        await this.tree.saveSubscription(node, { ...current, state: change.state });
      } else {
        await this.tree.subscribe(node, change.jid, change.state, defaultSubscriptionOptions());
      }
      const subscription = current ?? node.subscriptionsOf(change.jid)[0];
      if (subscription) await this.service.notifier.subscriptionChanged(node, subscription, change.state);
    }
  }

  /** Section 8.9.1: the affiliations of a node, for its owners. */
  affiliations(requester: JID, name: string): [string, Affiliation][] {
    const node = this.service.node(name);
    this.access.requireOwner(node, requester.bare);
    return [...node.affiliations];
  }

  /**
   * Section 8.9.2. Affiliations belong to bare JIDs, so a full JID applies to its bare JID
   * (Asterisk names its buddies by full JID). An outcast loses its subscriptions. A node that
   * has owners keeps at least one.
   */
  async setAffiliations(requester: JID, name: string, changes: { jid: string | undefined; affiliation: string | undefined }[]): Promise<void> {
    const node = this.service.node(name);
    this.access.requireOwner(node, requester.bare);
    const valid = changes.map((c) => {
      if (!AFFILIATIONS.includes(c.affiliation as Affiliation)) throw pubsubError('bad-request', undefined, `unknown affiliation ${c.affiliation}`);
      return { bare: bareOf(requestJid(c.jid)), affiliation: c.affiliation as Affiliation };
    });
    const after = new Map(node.affiliations);
    for (const c of valid) {
      if (c.affiliation === 'none') after.delete(c.bare);
      else after.set(c.bare, c.affiliation);
    }
    if (node.owners().length > 0 && ![...after.values()].includes('owner')) {
      throw pubsubError('not-acceptable', undefined, 'a node must keep an owner');
    }
    for (const c of valid) {
      await this.tree.setAffiliation(node, c.bare, c.affiliation);
      if (c.affiliation !== 'outcast') continue;
      for (const s of [...node.subscriptions.values()]) if (bareOf(s.jid) === c.bare) await this.tree.unsubscribe(node, s);
    }
  }

  /** Section 8.6: an owner's answer to a subscription approval form, sent in a message. */
  async answerAuthorization(owner: JID, form: SubmittedForm): Promise<void> {
    const field = (name: string) => form.fields.get(name)?.[0];
    const node = this.service.node(field('pubsub#node'));
    this.access.requireOwner(node, owner.bare);
    const subid = field('pubsub#subid');
    const subscriber = field('pubsub#subscriber_jid');
    const subscription = subid ? node.subscriptions.get(subid) : node.subscriptionsOf(requestJid(subscriber)).find((s) => s.state === 'pending');
    if (!subscription || subscription.state !== 'pending') return;
    if (parseBoolean(field('pubsub#allow')) === true) {
      await this.tree.saveSubscription(node, { ...subscription, state: 'subscribed' });
      await this.service.notifier.subscriptionChanged(node, subscription, 'subscribed');
      await this.sendLastItems(node.subscriptions.get(subscription.subid)!);
    } else {
      await this.tree.unsubscribe(node, subscription);
      await this.service.notifier.subscriptionChanged(node, subscription, 'none');
    }
  }

  /**
   * A resource went unavailable (or its session ended): subscriptions with expire=presence of
   * that full JID end, and those of its bare JID when no resource of the account is left available.
   */
  async presenceEnded(full: JID, accountStillAvailable: boolean): Promise<void> {
    for (const node of [...this.tree.all()]) {
      for (const s of [...node.subscriptions.values()]) {
        if (s.options.expire !== 'presence') continue;
        if (s.jid === full.full || (s.jid === full.bare && !accountStillAvailable)) await this.tree.unsubscribe(node, s);
      }
    }
  }

  /**
   * At start the expire=presence subscriptions of subscribers not available have ended: their
   * sessions ended with the previous run (alone, none is available yet; in a cluster, those on
   * the other nodes still are).
   */
  async dropPresenceSubscriptions(available: (jid: string) => boolean): Promise<void> {
    for (const node of [...this.tree.all()]) {
      for (const s of [...node.subscriptions.values()]) if (s.options.expire === 'presence' && !available(s.jid)) await this.tree.unsubscribe(node, s);
    }
  }

  /** An account was deleted: its affiliations and subscriptions go with it. */
  async accountDeleted(bare: string): Promise<void> {
    for (const node of [...this.tree.all()]) {
      if (node.affiliations.has(bare)) await this.tree.setAffiliation(node, bare, 'none');
      for (const s of [...node.subscriptions.values()]) if (bareOf(s.jid) === bare) await this.tree.unsubscribe(node, s);
    }
  }

  /** The subscription a request names (sections 6.2.3 and 6.3.4): by subid, or the JID's only one. */
  private find(node: PubSubNode, jid: string, subid: string | undefined): Subscription {
    const own = node.subscriptionsOf(jid);
    if (own.length === 0) throw pubsubError('unexpected-request', 'not-subscribed', `${jid} is not subscribed to ${node.name}`, 'cancel');
    if (subid !== undefined) {
      const match = own.find((s) => s.subid === subid);
      if (!match) throw pubsubError('not-acceptable', 'invalid-subid', `no subscription ${subid}`);
      return match;
    }
    if (own.length > 1) throw pubsubError('bad-request', 'subid-required', `${jid} has several subscriptions to ${node.name}`);
    return own[0]!;
  }

  private ownSubscription(requester: JID, name: string, jidValue: string | undefined, subid: string | undefined) {
    const node = this.service.node(name);
    const jid = requestJid(jidValue);
    if (bareOf(jid) !== requester.bare && !this.access.isOwner(node, requester.bare)) throw forbidden("you may not see another entity's subscription options");
    return { node, subscription: this.find(node, jid, subid) };
  }

  /** Section 8.6: each owner gets an approval form for a pending subscription. */
  private async askOwners(node: PubSubNode, subscription: Subscription): Promise<void> {
    const form = formElement('form', FORM_SUBSCRIBE_AUTHORIZATION, [
      { var: 'pubsub#subid', type: 'hidden', values: [subscription.subid] },
      { var: 'pubsub#node', type: 'text-single', label: 'Node ID', values: [node.name] },
      { var: 'pubsub#subscriber_jid', type: 'jid-single', label: 'Subscriber Address', values: [subscription.jid] },
      { var: 'pubsub#allow', type: 'boolean', label: 'Allow this JID to subscribe to this pubsub node?', values: ['0'] },
    ]);
    for (const owner of node.owners()) await this.service.notifier.message(owner, form);
  }

  /** pubsub#notify_sub: owners hear of new subscriptions and unsubscriptions. */
  private async tellOwners(node: PubSubNode, subscription: Subscription, state: string): Promise<void> {
    if (!node.config.notifySub) return;
    const event = xml('event', { xmlns: NS_PUBSUB_EVENT },
      xml('subscription', { node: node.name, jid: subscription.jid, subscription: state, subid: subscription.subid }));
    for (const owner of node.owners()) await this.service.notifier.message(owner, event);
  }
}

