// Event notifications (XEP-0060 section 7.1.2 and the other #event cases): who gets one, and
// the message, always from the service's own JID (COMPAT: Asterisk only accepts events whose
// `from` is exactly the pubsub service it was configured with). Each JID gets one message per
// event even when several of its subscriptions match (SHIM SubID headers then name them,
// section 12.2); subscribers of a collection get the items of its leaves (XEP-0248).
import { randomBytes } from 'node:crypto';
import type { ModuleContext } from '../../core/modules.js';
import type { ClientSession } from '../../core/session.js';
import { xml, type Element } from '../../xml/element.js';
import { bareOf, type AccessControl } from './access.js';
import type { Item, NodeTree, PubSubNode, Subscription } from './nodes.js';

export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
const NS_SHIM = 'http://jabber.org/protocol/shim';

/** An <item> as notifications and retrieval carry it; the payload only when wanted. */
export function itemElement(item: Item, withPayload: boolean): Element {
  return xml('item', { id: item.id, publisher: bareOf(item.publisher) }, withPayload ? item.payload : undefined);
}

export class Notifier {
  private readonly idPrefix = randomBytes(4).toString('hex');
  private sent = 0;
  private readonly notifications;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly service: string,
    private readonly tree: NodeTree,
    private readonly access: AccessControl,
    /** PEP: full JIDs that get item notifications without subscribing (contacts and own resources with +notify). */
    private readonly implicit?: (node: PubSubNode) => Promise<string[]>,
  ) {
    this.notifications = ctx.metrics.counter({ name: 'pubsub_notifications_total', help: 'Event notifications sent by PubSub services and PEP' });
  }

  /** New items or retractions of a leaf (`content` are <item> or <retract> elements). */
  async items(node: PubSubNode, content: Element[]): Promise<void> {
    if (!node.config.deliverNotifications) return;
    const event = xml('event', { xmlns: NS_PUBSUB_EVENT }, xml('items', { node: node.name }, content));
    const recipients = await this.itemRecipients(node);
    if (this.implicit) {
      // A bare JID subscribed explicitly already gets one message, which reaches its resources.
      for (const full of await this.implicit(node)) if (!recipients.has(full) && !recipients.has(bareOf(full))) recipients.set(full, []);
    }
    await Promise.all([...recipients].map(([jid, subids]) => this.send(jid, subids, event, node)));
  }

  /** Configuration, purge or deletion of a node: to its own subscribers (`to` overrides them, for a deleted node). */
  async nodeEvent(node: PubSubNode, content: Element, to?: Map<string, string[]>): Promise<void> {
    const event = xml('event', { xmlns: NS_PUBSUB_EVENT }, content);
    const recipients = to ?? this.directRecipients(node);
    await Promise.all([...recipients].map(([jid, subids]) => this.send(jid, subids, event, node)));
  }

  /** A node joined a collection: to subscribers of the collection (and above, for depth all) that asked for nodes. */
  async associated(collection: PubSubNode, child: string): Promise<void> {
    const event = xml('event', { xmlns: NS_PUBSUB_EVENT }, xml('collection', { node: collection.name }, xml('associate', { node: child })));
    const recipients = new Map<string, string[]>();
    const levels = [{ node: collection, depth: 1 }, ...this.tree.ancestors(collection).map((a) => ({ node: a.node, depth: a.depth + 1 }))];
    for (const { node, depth } of levels) {
      for (const s of node.subscriptions.values()) {
        if (s.options.subscriptionType === 'nodes' && (depth === 1 || s.options.subscriptionDepth === 'all') && this.wants(s)) add(recipients, s);
      }
    }
    await Promise.all([...recipients].map(([jid, subids]) => this.send(jid, subids, event, collection)));
  }

  /** A subscription's state changed (approval, or an owner's change): to the subscriber (section 8.8.4). */
  async subscriptionChanged(node: PubSubNode, subscription: Subscription, state: string): Promise<void> {
    const content = xml('subscription', { node: node.name, jid: subscription.jid, subscription: state, subid: subscription.subid });
    await this.send(subscription.jid, [], xml('event', { xmlns: NS_PUBSUB_EVENT }, content), node);
  }

  /** A message from the service that is not an event (authorization requests, section 8.6). */
  async message(to: string, content: Element): Promise<void> {
    await this.ctx.router.route(xml('message', { from: this.service, to, id: this.nextId() }, content));
  }

  /**
   * The last items of nodes to a new subscriber (send_last_published_item). Written to `session`
   * when given: the subscriber's own resource that subscribed, which may not have sent its
   * initial presence yet (Asterisk subscribes first), so a message to its bare JID would find
   * no available resource and be dropped.
   */
  async lastItems(subscription: Subscription, items: { node: PubSubNode; item: Item }[], session?: ClientSession): Promise<void> {
    for (const { node, item } of items) {
      const event = xml('event', { xmlns: NS_PUBSUB_EVENT }, xml('items', { node: node.name }, itemElement(item, node.config.deliverPayloads)));
      const message = this.eventMessage(subscription.jid, [], event, node);
      if (session) session.send(message.clone({ to: session.jid.full }));
      else await this.ctx.router.route(message);
    }
  }

  /** The last item of a node to one resource that just became available or announced interest (PEP). */
  lastItemTo(full: string, node: PubSubNode, item: Item): Promise<void> {
    const event = xml('event', { xmlns: NS_PUBSUB_EVENT }, xml('items', { node: node.name }, itemElement(item, node.config.deliverPayloads)));
    return this.send(full, [], event, node);
  }

  /** Direct subscribers of a node that want notifications, by JID. */
  directRecipients(node: PubSubNode): Map<string, string[]> {
    const recipients = new Map<string, string[]>();
    for (const s of node.subscriptions.values()) if (this.wants(s)) add(recipients, s);
    return recipients;
  }

  private async itemRecipients(node: PubSubNode): Promise<Map<string, string[]>> {
    const recipients = this.directRecipients(node);
    for (const { node: collection, depth } of this.tree.ancestors(node)) {
      for (const s of collection.subscriptions.values()) {
        if (s.options.subscriptionType !== 'items' || (depth > 1 && s.options.subscriptionDepth !== 'all') || !this.wants(s)) continue;
        if (await this.access.mayReceiveFrom(node, bareOf(s.jid))) add(recipients, s);
      }
    }
    return recipients;
  }

  /** Approved, delivery on, not expired, and (with show-values) a resource in one of those presences. */
  private wants(s: Subscription): boolean {
    if (s.state !== 'subscribed' || !s.options.deliver) return false;
    const expire = s.options.expire;
    if (expire !== undefined && expire !== 'presence' && Date.parse(expire) <= Date.now()) return false;
    if (s.options.showValues.length === 0) return true;
    const resources = s.jid.includes('/')
      ? [this.ctx.sessions.get(bareOf(s.jid), s.jid.slice(s.jid.indexOf('/') + 1))].filter((r) => r !== undefined)
      : this.ctx.sessions.available(s.jid);
    return resources.some((r) => r.presence && s.options.showValues.includes(r.presence.getChildText('show') ?? 'online'));
  }

  private send(jid: string, subids: string[], event: Element, node: PubSubNode): Promise<void> {
    return this.ctx.router.route(this.eventMessage(jid, subids, event, node));
  }

  private eventMessage(jid: string, subids: string[], event: Element, node: PubSubNode): Element {
    this.notifications.inc();
    const headers = subids.length > 1 ? xml('headers', { xmlns: NS_SHIM }, subids.map((id) => xml('header', { name: 'SubID' }, id))) : undefined;
    const type = node.config.notificationType === 'headline' ? 'headline' : undefined;
    return xml('message', { from: this.service, to: jid, type, id: this.nextId() }, event, headers);
  }

  private nextId(): string {
    return `${this.idPrefix}-${++this.sent}`;
  }
}

function add(recipients: Map<string, string[]>, s: Subscription): void {
  const subids = recipients.get(s.jid);
  if (subids) subids.push(s.subid);
  else recipients.set(s.jid, [s.subid]);
}
