// One PubSub service (XEP-0060, XEP-0248 collections): node lifecycle and items. Subscriptions
// are in subscriptions.ts, permissions in access.ts, notifications in notify.ts, the wire format
// in protocol.ts. Operations of one service run one at a time (`exclusive`): they read and
// change shared state across awaits on storage, and clients on different streams use the same
// nodes. Each operation throws a StanzaError for the error the spec names.
import { randomUUID } from 'node:crypto';
import type { JID } from '../../jid.js';
import type { ModuleContext } from '../../core/modules.js';
import { createStreamParser } from '../../xml/parser.js';
import { xml, type Element } from '../../xml/element.js';
import { AccessControl } from './access.js';
import type { AsteriskRules, AutocreatePlan } from './asterisk.js';
import {
  FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, applyNodeConfigForm, defaultNodeConfig, nodeConfigFields, nodeConfigValues, type NodeConfig,
} from './config.js';
import { forbidden, nodeNotFound, pubsubError, unsupported } from './errors.js';
import { expectFormType, formElement, parseBoolean, type SubmittedForm } from './forms.js';
import { NodeTree, type Item, type PubSubNode } from './nodes.js';
import { Notifier, itemElement } from './notify.js';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';

export const NODE_CREATION_POLICIES = ['everyone', 'registered', 'admins'] as const;
export type NodeCreationPolicy = (typeof NODE_CREATION_POLICIES)[number];

export interface ServiceLimits {
  /** Largest payload in bytes, whatever a node's pubsub#max_payload_size says. */
  maxItemSize: number;
  /** Most items a node keeps; also the default of pubsub#max_items. */
  maxItems: number;
  /** Most nodes one account may create (XEP-0060 max-nodes-exceeded beyond). */
  maxNodesPerUser: number;
  /** Publishing to a missing node creates it (XEP-0060 section 7.1.4, feature auto-create). */
  autoCreate: boolean;
  /** Who may create nodes (section 8.1): anyone, not anonymous users (their nodes would outlive them), or administrators only. */
  nodeCreation: NodeCreationPolicy;
}

/**
 * What makes a service a PEP service (XEP-0163): it is an account's bare JID, only the account
 * creates and publishes, nodes are created on first publish with the PEP defaults, and
 * notifications also go to the contacts and own resources that asked for them by entity caps.
 */
export interface PepProfile {
  /** Full JIDs that get a node's notifications without a subscription (XEP-0163 section 4.3). */
  implicitRecipients(node: PubSubNode): Promise<string[]>;
}

/** Told of item changes after they are stored and notified (the device-state view listens). */
export interface ItemObserver {
  published(service: PubSubService, node: PubSubNode, item: Item): void;
  retracted(service: PubSubService, node: PubSubNode, id: string): void;
  /** All items of the node are gone (purge or deletion). */
  cleared(service: PubSubService, node: PubSubNode): void;
}

export class PubSubService {
  readonly tree: NodeTree;
  readonly access: AccessControl;
  readonly notifier: Notifier;
  /** Looked up once, not per publish (a hot path under Asterisk device-state load). */
  private readonly publishes: { inc(): void };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly jid: string,
    readonly ctx: ModuleContext,
    readonly limits: ServiceLimits,
    readonly asterisk: AsteriskRules,
    private readonly observer?: ItemObserver,
    readonly pep?: PepProfile,
  ) {
    this.tree = new NodeTree(jid, ctx.storage.pubsub, () => this.defaults());
    this.access = new AccessControl(ctx);
    this.notifier = new Notifier(ctx, jid, this.tree, this.access, pep && ((node) => pep.implicitRecipients(node)));
    this.publishes = ctx.metrics.counter({ name: 'pubsub_publishes_total', help: 'Items published (PubSub services and PEP)', labelNames: ['service'] })
      .labels({ service: pep ? 'pep' : 'pubsub' });
  }

  private get store() {
    return this.ctx.storage.pubsub;
  }

  /** Runs `work` after every operation queued before it, so operations never interleave. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  defaults(): NodeConfig {
    const base = defaultNodeConfig({ maxItems: this.limits.maxItems, maxPayloadSize: this.limits.maxItemSize });
    // XEP-0163 section 4.3 and 7: presence access, last item on subscription and on presence; one item (a singleton node) unless asked.
    return this.pep ? { ...base, accessModel: 'presence', sendLastPublishedItem: 'on_sub_and_presence', maxItems: 1 } : base;
  }

  node(name: string | undefined): PubSubNode {
    if (name === undefined || name === '') throw pubsubError('bad-request', 'nodeid-required', 'a node attribute is required');
    const node = this.tree.get(name);
    if (!node) throw nodeNotFound(name);
    return node;
  }

  /** XEP-0060 section 8.1: named or instant (name undefined) node, with an optional configuration form. */
  async create(requester: JID, name: string | undefined, form: SubmittedForm | undefined): Promise<string> {
    const bare = requester.bare;
    if (name === '') throw pubsubError('bad-request', 'nodeid-required', 'a node name cannot be empty');
    // XEP-0060 section 8.1.3.1: not allowed to create nodes is forbidden.
    if (this.pep && bare !== this.jid) throw forbidden('only the account itself creates its PEP nodes');
    if (!this.pep) this.checkCreationPolicy(bare);
    if (!this.ctx.isAdmin(bare) && this.tree.countCreatedBy(bare) >= this.limits.maxNodesPerUser) {
      throw pubsubError('not-allowed', 'max-nodes-exceeded', `an account may create at most ${this.limits.maxNodesPerUser} nodes`);
    }
    const nodeName = name ?? randomUUID();
    if (this.tree.get(nodeName)) throw pubsubError('conflict', undefined, `node ${nodeName} already exists`);
    const config = form ? applyNodeConfigForm(form, this.defaults(), this.limitsForForms()) : this.defaults();
    await this.prepareCollections(nodeName, config.collection);
    const node = await this.tree.create(nodeName, config, bare);
    // Another server sharing the database may have created it meanwhile.
    if (!node) throw pubsubError('conflict', undefined, `node ${nodeName} already exists`);
    await this.announce(node, config.collection);
    return nodeName;
  }

  /** Creates nodes the Asterisk rules call for; nodes that exist by now are left alone. */
  async autocreate(plan: AutocreatePlan): Promise<void> {
    for (const step of plan) {
      if (this.tree.get(step.node)) continue;
      const node = await this.tree.create(step.node, this.asterisk.autocreatedConfig(this.defaults(), step.type, step.collection), undefined);
      if (node) {
        this.ctx.log.info({ service: this.jid, node: step.node, type: step.type }, 'created a node for Asterisk');
        await this.announce(node, node.config.collection);
      }
    }
  }

  /** Owner configuration form (section 8.2). */
  configurationForm(requester: JID, name: string): Element {
    const node = this.node(name);
    this.access.requireOwner(node, requester.bare);
    return formElement('form', FORM_NODE_CONFIG, nodeConfigFields(node.config));
  }

  async configure(requester: JID, name: string, form: SubmittedForm): Promise<void> {
    const node = this.node(name);
    this.access.requireOwner(node, requester.bare);
    const config = applyNodeConfigForm(form, node.config, this.limitsForForms());
    if (config.nodeType !== node.config.nodeType) throw pubsubError('not-acceptable', 'invalid-options', 'a node cannot change between leaf and collection');
    const joined = config.collection.filter((c) => !node.config.collection.includes(c));
    await this.prepareCollections(node.name, joined);
    const previousMax = node.config.maxItems;
    await this.tree.configure(node, config);
    // A lower max_items applies at once, not at the next publish.
    if (config.persistItems && config.maxItems < previousMax) await this.trim(node, config.maxItems);
    await this.announce(node, joined);
    if (config.notifyConfig) {
      const form = config.deliverPayloads ? formElement('result', FORM_NODE_CONFIG, nodeConfigFields(config)) : undefined;
      await this.notifier.nodeEvent(node, xml('configuration', { node: node.name }, form));
    }
  }

  /** Default node configuration (section 8.3), for a leaf or a collection. */
  defaultConfigurationForm(type: 'leaf' | 'collection' = 'leaf'): Element {
    return formElement('form', FORM_NODE_CONFIG, nodeConfigFields({ ...this.defaults(), nodeType: type }));
  }

  /** Section 8.4, with the optional redirect to a replacement node. */
  async delete(requester: JID, name: string, redirect?: string): Promise<void> {
    const node = this.node(name);
    this.access.requireOwner(node, requester.bare);
    const subscribers = this.notifier.directRecipients(node);
    await this.tree.delete(node);
    this.observer?.cleared(this, node);
    if (node.config.notifyDelete) {
      await this.notifier.nodeEvent(node, xml('delete', { node: name }, redirect ? xml('redirect', { uri: redirect }) : undefined), subscribers);
    }
  }

  /** Section 8.5. */
  async purge(requester: JID, name: string): Promise<void> {
    const node = this.node(name);
    this.access.requireOwner(node, requester.bare);
    if (node.isCollection) throw unsupported('purge-nodes', 'a collection has no items of its own');
    if (!node.config.persistItems) throw unsupported('persistent-items', 'this node keeps no items');
    await this.store.purgeItems(this.jid, node.name);
    node.lastItem = null;
    this.observer?.cleared(this, node);
    if (node.config.notifyRetract) await this.notifier.nodeEvent(node, xml('purge', { node: node.name }));
  }

  /**
   * Section 7.1: publishes one item (a notification-only publish has none) and notifies. Returns
   * the item id, generated when the publisher gave none.
   */
  async publish(requester: JID, name: string, itemElementIn: Element | undefined, options: SubmittedForm | undefined): Promise<string | undefined> {
    const payload = itemElementIn ? payloadOf(itemElementIn) : [];
    const id = itemElementIn?.attrs.id || randomUUID();
    let node = this.tree.get(name);
    if (!node) {
      const plan = this.asterisk.planForPublish(name, payload[0], (c) => this.tree.get(c)?.config.nodeType);
      if (plan.length > 0) {
        // A refused item creates nothing.
        this.asterisk.validateItem(id, payload);
        await this.autocreate(plan);
      } else if (this.limits.autoCreate || this.pep) {
        await this.create(requester, name, options && { formTypes: [FORM_NODE_CONFIG], fields: options.fields });
      }
      node = this.node(name);
    }
    if (node.isCollection) throw unsupported('publish', 'items are published to the leaves of a collection');
    if (!this.access.canPublish(node, requester.bare)) throw forbidden(`you may not publish to ${name}`);
    const persist = this.checkPublishOptions(node, options);
    if (!itemElementIn) {
      if (node.config.persistItems || node.config.deliverPayloads) throw pubsubError('bad-request', 'item-required', 'this node needs an item');
    } else {
      this.checkPayload(node, payload);
    }
    if (this.asterisk.carriesAsteriskEvents(node.name, this.tree.ancestors(node).map((a) => a.node.name))) this.asterisk.validateItem(id, payload);

    await this.deliver(node, { id, publisher: requester.bare, payload, publishedAt: new Date() }, persist);
    return itemElementIn ? id : undefined;
  }

  /** An item the server itself publishes (XEP-0485 server information): no requester, so no access checks. */
  async publishAsServer(node: PubSubNode, id: string, payload: Element): Promise<void> {
    await this.deliver(node, { id, publisher: this.jid, payload: [payload], publishedAt: new Date() }, node.config.persistItems);
  }

  /** Stores (unless `persist` is off) and notifies a published item. */
  private async deliver(node: PubSubNode, item: Item, persist: boolean): Promise<void> {
    const { id } = item;
    if (persist && node.config.maxItems > 0) {
      const record = { id, publisher: item.publisher, payload: item.payload.map(String).join(''), publishedAt: item.publishedAt };
      await this.store.publishItem(this.jid, node.name, record, node.config.maxItems);
    } else if (node.config.persistItems && (await this.store.retractItem(this.jid, node.name, id))) {
      // A stored item with this id is older than the one just published without being stored.
      this.ctx.log.debug({ service: this.jid, node: node.name, item: id }, 'dropped the stored item replaced by an unstored one');
    }
    node.lastItem = item;
    this.publishes.inc();
    await this.notifier.items(node, [itemElement(item, node.config.deliverPayloads)]);
    this.observer?.published(this, node, item);
  }

  /** Section 7.2: one or more items, all or none (each must exist and be the requester's to retract), in one notification. */
  async retract(requester: JID, name: string, ids: (string | undefined)[], notify: boolean): Promise<void> {
    const node = this.node(name);
    if (ids.length === 0 || ids.some((id) => !id)) throw pubsubError('bad-request', 'item-required', 'which item?');
    if (node.isCollection || !node.config.persistItems) throw unsupported('persistent-items', 'this node keeps no items');
    const wanted = [...new Set(ids as string[])];
    const stored = await this.store.getItems(this.jid, node.name, { ids: wanted });
    const missing = wanted.find((id) => !stored.some((s) => s.id === id));
    if (missing !== undefined) throw pubsubError('item-not-found', undefined, `no item ${missing}`);
    for (const item of stored) {
      if (!this.access.canRetract(node, requester.bare, item.publisher)) throw forbidden(`you may not retract items of ${name}`);
    }
    for (const id of wanted) await this.store.retractItem(this.jid, node.name, id);
    if (node.lastItem && wanted.includes(node.lastItem.id)) node.lastItem = undefined;
    if (notify || node.config.notifyRetract) await this.notifier.items(node, wanted.map((id) => xml('retract', { id })));
    for (const id of wanted) this.observer?.retracted(this, node, id);
  }

  /** Section 6.5: all items, the newest `max`, or those with the given ids; newest first. */
  async items(requester: JID, name: string, query: { ids?: string[]; max?: number }): Promise<Item[]> {
    const node = this.node(name);
    if (node.isCollection) throw unsupported('retrieve-items', 'a collection has no items of its own');
    await this.access.checkAccess(node, requester.bare, 'retrieve');
    if (!node.config.persistItems) throw unsupported('persistent-items', 'this node keeps no items');
    return this.storedItems(node, query);
  }

  /** Stored items of a node, newest first, whoever asks (for the server's own use); expired ones are deleted on the way. */
  async storedItems(node: PubSubNode, query: { ids?: string[]; max?: number } = {}): Promise<Item[]> {
    const records = await this.store.getItems(this.jid, node.name, query);
    const expired = records.filter((r) => this.expired(node, r.publishedAt));
    for (const r of expired) await this.forget(node, r.id);
    return records.filter((r) => !expired.includes(r))
      .map((r) => ({ id: r.id, publisher: r.publisher, payload: parsePayload(r.payload), publishedAt: r.publishedAt }));
  }

  /** The newest item of a leaf, from memory or storage. */
  async lastItem(node: PubSubNode): Promise<Item | null> {
    if (node.lastItem && this.expired(node, node.lastItem.publishedAt)) node.lastItem = undefined;
    if (node.lastItem === undefined) {
      const [item] = node.config.persistItems ? await this.storedItems(node, { max: 1 }) : [];
      node.lastItem = item ?? null;
    }
    return node.lastItem;
  }

  /**
   * pubsub#item_expire: items older than that are gone. Checked when items are read (retrieval,
   * last item, the view's rebuild), which is when it matters; nothing runs in between.
   */
  private expired(node: PubSubNode, publishedAt: Date): boolean {
    return node.config.itemExpire > 0 && Date.now() - publishedAt.getTime() >= node.config.itemExpire * 1000;
  }

  /** Keeps the newest `max` stored items of a node, deleting the others (no notification: nobody retracted them). */
  private async trim(node: PubSubNode, max: number): Promise<void> {
    const surplus = (await this.store.getItems(this.jid, node.name, {})).slice(max);
    for (const r of surplus) await this.forget(node, r.id);
  }

  /** Deletes one stored item the service itself drops (trimmed or expired). */
  private async forget(node: PubSubNode, id: string): Promise<void> {
    await this.store.retractItem(this.jid, node.name, id);
    if (node.lastItem?.id === id) node.lastItem = undefined;
    this.observer?.retracted(this, node, id);
  }

  private checkCreationPolicy(bare: string): void {
    const policy = this.limits.nodeCreation;
    if (policy === 'admins' && !this.ctx.isAdmin(bare)) throw forbidden('only administrators create nodes here');
    if (policy === 'registered' && this.isAnonymous(bare)) throw forbidden('anonymous users may not create nodes here');
  }

  /** Whether a bare JID is an anonymous login's (the JID of one is used once, so any of its sessions tells). */
  private isAnonymous(bare: string): boolean {
    return this.ctx.sessions.resources(bare).some((s) => s.anonymous);
  }

  /** Values a node_config form may carry up to: the service's limits. */
  private limitsForForms() {
    return { maxItems: this.limits.maxItems, maxPayloadSize: this.limits.maxItemSize };
  }

  /**
   * The collections a node is about to join (XEP-0248 section 6.3): each must exist (COMPAT: the
   * Asterisk event collections are created here, as a leaf names them before any subscribe made
   * them), be a collection, and not end up below the node itself.
   */
  private async prepareCollections(node: string, collections: string[]): Promise<void> {
    for (const name of collections) {
      if (!this.tree.get(name)) await this.autocreate(this.asterisk.planForCollection(name));
      const collection = this.tree.get(name);
      if (!collection) throw pubsubError('item-not-found', undefined, `no collection ${name}`);
      if (!collection.isCollection) throw pubsubError('not-allowed', undefined, `${name} is a leaf node, not a collection`);
      if (this.tree.wouldCycle(node, name)) throw pubsubError('not-acceptable', 'invalid-options', `${node} cannot be inside itself`);
    }
  }

  private async announce(node: PubSubNode, collections: string[]): Promise<void> {
    for (const name of collections) {
      const collection = this.tree.get(name);
      if (collection) await this.notifier.associated(collection, node.name);
    }
  }

  /**
   * Publish-options (section 7.1.5) are preconditions on the node configuration. Returns whether
   * this item is stored: COMPAT, Asterisk's pubsub#persist_items=0 means "do not keep this item".
   */
  private checkPublishOptions(node: PubSubNode, options: SubmittedForm | undefined): boolean {
    let persist = node.config.persistItems;
    if (!options) return persist;
    expectFormType(options, FORM_PUBLISH_OPTIONS);
    for (const [field, values] of options.fields) {
      if (field === 'pubsub#persist_items' && this.asterisk.persistItemsIsPerItem()) {
        persist &&= parseBoolean(values[0]) !== false;
        continue;
      }
      const current = nodeConfigValues(node.config, field);
      if (!current || current.join('\n') !== this.normalisedOption(field, values).join('\n')) {
        throw pubsubError('conflict', 'precondition-not-met', `the node's ${field} is not ${values.join(', ')}`);
      }
    }
    return persist;
  }

  /**
   * A precondition's value as the node's own form would show it ('true' as '1', max_items 'max' as
   * the limit), so equal settings compare equal; a value no node could have stays as given.
   */
  private normalisedOption(field: string, values: string[]): string[] {
    try {
      const parsed = applyNodeConfigForm({ formTypes: [], fields: new Map([[field, values]]) }, this.defaults(), this.limitsForForms());
      return nodeConfigValues(parsed, field) ?? values;
    } catch {
      return values;
    }
  }

  /** Section 7.1.3: one payload, in the node's namespace if it has one, not too big. */
  private checkPayload(node: PubSubNode, payload: Element[]): void {
    if (payload.length > 1) throw pubsubError('bad-request', 'invalid-payload', 'an item carries one payload element');
    if (payload.length === 0 && node.config.deliverPayloads && node.config.persistItems) {
      throw pubsubError('bad-request', 'payload-required', 'items of this node carry a payload');
    }
    const first = payload[0];
    if (first && node.config.payloadType && first.attrs.xmlns !== node.config.payloadType) {
      throw pubsubError('bad-request', 'invalid-payload', `payloads of this node are in ${node.config.payloadType}`);
    }
    const limit = Math.min(node.config.maxPayloadSize, this.limits.maxItemSize);
    if (first && Buffer.byteLength(first.toString()) > limit) throw pubsubError('not-acceptable', 'payload-too-big', `payloads are limited to ${limit} bytes`);
  }
}

/** The payload elements of a published <item>, each keeping the namespace it had in place. */
function payloadOf(item: Element): Element[] {
  return item.elements().map((e) => (e.attrs.xmlns === undefined ? e.clone({ xmlns: NS_PUBSUB }) : e));
}

/** Stored payload text back to elements. */
function parsePayload(text: string): Element[] {
  if (text === '') return [];
  let item: Element | undefined;
  const parser = createStreamParser({
    streamStart: () => undefined,
    stanza: (el) => { item = el; },
    streamEnd: () => undefined,
    error: () => { item = undefined; },
  }, { maxStanzaSize: Number.MAX_SAFE_INTEGER, maxDepth: Number.MAX_SAFE_INTEGER });
  parser.write(`<stream:stream xmlns='${NS_PUBSUB}' xmlns:stream='http://etherx.jabber.org/streams'><item>${text}</item>`);
  return item?.elements() ?? [];
}
