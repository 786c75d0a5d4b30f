// The state of one PubSub service in memory: its nodes with configuration, affiliations,
// subscriptions and the collection hierarchy (XEP-0248), written through to storage. Every
// change goes to storage first and to memory only when storage took it, so the two agree even
// when a write fails. Items stay in storage; each node remembers only its last one.
import { randomUUID } from 'node:crypto';
import type { Element } from '../../xml/element.js';
import type { PubSubAffiliation, PubSubStore } from '../../storage/types.js';
import { type NodeConfig, type SubscriptionOptions, restoreNodeConfig, restoreSubscriptionOptions } from './config.js';

export type Affiliation = PubSubAffiliation | 'none';

export interface Subscription {
  node: string;
  /** The subscribed JID as given, bare or full. */
  jid: string;
  subid: string;
  state: 'subscribed' | 'pending' | 'unconfigured';
  options: SubscriptionOptions;
}

/** An item as notifications and retrieval need it. */
export interface Item {
  id: string;
  publisher: string;
  payload: Element[];
  publishedAt: Date;
}

export class PubSubNode {
  readonly affiliations = new Map<string, PubSubAffiliation>();
  /** By subid. */
  readonly subscriptions = new Map<string, Subscription>();
  /** Names of the nodes whose pubsub#collection names this one. */
  readonly children = new Set<string>();
  /** The newest item; undefined until known (then null when the node has none). */
  lastItem: Item | null | undefined;

  constructor(
    readonly name: string,
    public config: NodeConfig,
    readonly creator: string | undefined,
    readonly createdAt: Date,
  ) {}

  get isCollection(): boolean {
    return this.config.nodeType === 'collection';
  }

  affiliation(bare: string): Affiliation {
    return this.affiliations.get(bare) ?? 'none';
  }

  owners(): string[] {
    return [...this.affiliations].filter(([, a]) => a === 'owner').map(([jid]) => jid);
  }

  /** Subscriptions of exactly this JID (a bare JID's do not include its resources'). */
  subscriptionsOf(jid: string): Subscription[] {
    return [...this.subscriptions.values()].filter((s) => s.jid === jid);
  }
}

export class NodeTree {
  private readonly nodes = new Map<string, PubSubNode>();

  constructor(
    readonly service: string,
    private readonly store: PubSubStore,
    private readonly defaults: () => NodeConfig,
  ) {}

  /** Reads the service's nodes, affiliations and subscriptions from storage. */
  async load(): Promise<void> {
    const state = await this.store.loadService(this.service);
    for (const record of state.nodes) {
      this.nodes.set(record.node, new PubSubNode(record.node, restoreNodeConfig(record.config, this.defaults()), record.creator, record.createdAt));
    }
    for (const node of this.nodes.values()) this.linkToParents(node);
    for (const a of state.affiliations) this.nodes.get(a.node)?.affiliations.set(a.jid, a.affiliation);
    for (const s of state.subscriptions) {
      this.nodes.get(s.node)?.subscriptions.set(s.subid, { ...s, options: restoreSubscriptionOptions(s.options) });
    }
  }

  get(name: string): PubSubNode | undefined {
    return this.nodes.get(name);
  }

  all(): IterableIterator<PubSubNode> {
    return this.nodes.values();
  }

  /** Nodes that belong to no collection: the top of the hierarchy (XEP-0248 section 2). */
  roots(): PubSubNode[] {
    return [...this.nodes.values()].filter((n) => !n.config.collection.some((c) => this.nodes.has(c)));
  }

  /** Collections above a node, each once, nearest first, with its distance (1 = direct parent). */
  ancestors(node: PubSubNode): { node: PubSubNode; depth: number }[] {
    const out: { node: PubSubNode; depth: number }[] = [];
    const seen = new Set<string>([node.name]);
    let level = [node];
    for (let depth = 1; level.length > 0; depth++) {
      const next: PubSubNode[] = [];
      for (const n of level) {
        for (const parentName of n.config.collection) {
          const parent = this.nodes.get(parentName);
          if (!parent || seen.has(parentName)) continue;
          seen.add(parentName);
          out.push({ node: parent, depth });
          next.push(parent);
        }
      }
      level = next;
    }
    return out;
  }

  /** Every node below a collection, each once. */
  descendants(node: PubSubNode): PubSubNode[] {
    const out: PubSubNode[] = [];
    const seen = new Set<string>([node.name]);
    const pending = [node];
    while (pending.length > 0) {
      for (const childName of pending.pop()!.children) {
        const child = this.nodes.get(childName);
        if (!child || seen.has(childName)) continue;
        seen.add(childName);
        out.push(child);
        pending.push(child);
      }
    }
    return out;
  }

  /** Whether making `node` a child of `collection` would put it above itself. */
  wouldCycle(node: string, collection: string): boolean {
    if (node === collection) return true;
    const target = this.nodes.get(node);
    return target !== undefined && this.descendants(target).some((d) => d.name === collection);
  }

  countCreatedBy(bare: string): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.creator === bare) n++;
    return n;
  }

  async create(name: string, config: NodeConfig, creator: string | undefined): Promise<PubSubNode | undefined> {
    const createdAt = new Date();
    if (!(await this.store.createNode({ service: this.service, node: name, config: { ...config }, creator, createdAt }, creator))) return undefined;
    const node = new PubSubNode(name, config, creator, createdAt);
    node.lastItem = null;
    if (creator) node.affiliations.set(creator, 'owner');
    this.nodes.set(name, node);
    this.linkToParents(node);
    return node;
  }

  async configure(node: PubSubNode, config: NodeConfig): Promise<void> {
    await this.store.setNodeConfig(this.service, node.name, { ...config });
    this.unlinkFromParents(node);
    node.config = config;
    this.linkToParents(node);
  }

  /** Deletes a node; its children leave the collection (their pubsub#collection no longer names it). */
  async delete(node: PubSubNode): Promise<void> {
    for (const childName of [...node.children]) {
      const child = this.nodes.get(childName);
      if (child) await this.configure(child, { ...child.config, collection: child.config.collection.filter((c) => c !== node.name) });
    }
    await this.store.deleteNode(this.service, node.name);
    this.unlinkFromParents(node);
    this.nodes.delete(node.name);
  }

  async setAffiliation(node: PubSubNode, bare: string, affiliation: Affiliation): Promise<void> {
    await this.store.setAffiliation(this.service, node.name, bare, affiliation);
    if (affiliation === 'none') node.affiliations.delete(bare);
    else node.affiliations.set(bare, affiliation);
  }

  async subscribe(node: PubSubNode, jid: string, state: Subscription['state'], options: SubscriptionOptions): Promise<Subscription> {
    const subscription: Subscription = { node: node.name, jid, subid: randomUUID(), state, options };
    await this.saveSubscription(node, subscription);
    return subscription;
  }

  async saveSubscription(node: PubSubNode, subscription: Subscription): Promise<void> {
    await this.store.setSubscription(this.service, { ...subscription, options: { ...subscription.options } });
    node.subscriptions.set(subscription.subid, subscription);
  }

  async unsubscribe(node: PubSubNode, subscription: Subscription): Promise<void> {
    await this.store.deleteSubscription(this.service, node.name, subscription.subid);
    node.subscriptions.delete(subscription.subid);
  }

  private linkToParents(node: PubSubNode): void {
    for (const parent of node.config.collection) this.nodes.get(parent)?.children.add(node.name);
  }

  private unlinkFromParents(node: PubSubNode): void {
    for (const parent of node.config.collection) this.nodes.get(parent)?.children.delete(node.name);
  }
}
