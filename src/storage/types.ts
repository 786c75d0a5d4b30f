// The storage contract. Each feature has a small store interface; each backend (sqlite.ts,
// postgres.ts) implements all of them, and storage.contract.test.ts runs against both.

/** Salted SCRAM keys for one hash (RFC 5802); the password itself is never stored. */
export interface ScramKeys {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

export interface Credentials {
  'SCRAM-SHA-1': ScramKeys;
  'SCRAM-SHA-256': ScramKeys;
}

export interface UserStore {
  /** Creates the account; returns false when it already exists. */
  create(domain: string, username: string, credentials: Credentials): Promise<boolean>;
  get(domain: string, username: string): Promise<Credentials | undefined>;
  exists(domain: string, username: string): Promise<boolean>;
  /** Replaces the credentials; returns false when the account does not exist. */
  setCredentials(domain: string, username: string, credentials: Credentials): Promise<boolean>;
  /** Deletes the account and everything stored for it (roster, pending subscriptions, key-value data, offline messages). */
  delete(domain: string, username: string): Promise<boolean>;
  /** Usernames of a domain, sorted. */
  list(domain: string): Promise<string[]>;
}

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  jid: string; // bare JID of the contact
  name?: string;
  groups: string[];
  subscription: Subscription;
  /** We asked the contact for a subscription and have no answer yet (pending out). */
  ask: boolean;
  /** The contact asked us and we have not answered yet (pending in). */
  pendingIn: boolean;
  /** Subscription pre-approved by us (RFC 6121 3.4). */
  approved: boolean;
  /** True when the user put the item in the roster; false for an item kept only to remember pending state. */
  visible: boolean;
}

export interface RosterStore {
  /** All items of an account (visible or not), and the roster version. */
  get(owner: string): Promise<{ version: number; items: RosterItem[] }>;
  getItem(owner: string, contact: string): Promise<RosterItem | undefined>;
  /** Inserts or replaces an item and bumps the roster version; returns the new version. */
  setItem(owner: string, item: RosterItem): Promise<number>;
  /** Removes an item and bumps the roster version; returns the new version (unchanged if nothing was removed). */
  removeItem(owner: string, contact: string): Promise<number>;
}

/** Generic per-account JSON storage for modules (last activity, private XML, settings, ...). */
export interface KeyValueStore {
  get<T = unknown>(owner: string, key: string): Promise<T | undefined>;
  set(owner: string, key: string, value: unknown): Promise<void>;
  delete(owner: string, key: string): Promise<void>;
}

/** A message kept for an account that had no resource to take it (XEP-0160), as stored. */
export interface OfflineMessage {
  /** Increases with every message stored, and is never reused: the delivery order. */
  id: number;
  /** Bare JID of the sender; the per-pair limit counts by it. */
  sender: string;
  /** When the message was stored: the XEP-0203 delay stamp it is delivered with. */
  stamp: Date;
  /** The message stanza, serialised. */
  stanza: string;
}

export interface OfflineStore {
  /**
   * Appends a message for `recipient` (a bare JID) unless `limit` messages from the same sender
   * already wait for it; returns the new message's id, or undefined when the limit was reached.
   * Checking and inserting are one atomic step, so concurrent senders cannot overshoot the limit.
   */
  append(recipient: string, message: Omit<OfflineMessage, 'id'>, limit?: number): Promise<number | undefined>;
  /** The messages waiting for `recipient`, oldest first. */
  list(recipient: string): Promise<OfflineMessage[]>;
  /** Deletes one message once it has been written to the recipient's stream; false when it was already gone. */
  delete(recipient: string, id: number): Promise<boolean>;
  /** How many messages from `sender` wait for `recipient` (XEP-0160 limits count per sender-recipient pair). */
  count(recipient: string, sender: string): Promise<number>;
}

export interface Storage {
  readonly type: 'sqlite' | 'postgres';
  readonly users: UserStore;
  readonly roster: RosterStore;
  /** Messages kept for accounts that were offline (XEP-0160). */
  readonly offline: OfflineStore;
  /** PubSub nodes, affiliations, subscriptions and items (XEP-0060, XEP-0248). */
  readonly pubsub: PubSubStore;
  /** A key-value store private to one feature, named by that feature (e.g. 'last-activity'). */
  keyValue(namespace: string): KeyValueStore;
  /** The schema version this database is at, after migrations. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

export type StorageConfig = { type: 'sqlite'; path?: string } | { type: 'postgres'; url: string };

/** A PubSub node as stored (XEP-0060). Nodes belong to a service: a pubsub component's JID or, for PEP, an account's bare JID. */
export interface PubSubNodeRecord {
  service: string;
  node: string;
  /** The node configuration, as the PubSub module defines it; stored as JSON. */
  config: Record<string, unknown>;
  /** Bare JID of the entity that created the node; undefined for nodes the service created on its own. */
  creator?: string;
  createdAt: Date;
}

/** XEP-0060 section 4.1 affiliations; 'none' is the absence of a record. */
export type PubSubAffiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'outcast';

export interface PubSubSubscriptionRecord {
  node: string;
  /** The subscribed JID as requested, bare or full. */
  jid: string;
  /** Unique per node (XEP-0060 section 6.1.6). */
  subid: string;
  state: 'subscribed' | 'pending' | 'unconfigured';
  /** Subscription options (pubsub#subscribe_options), as the PubSub module defines them; stored as JSON. */
  options: Record<string, unknown>;
}

export interface PubSubItemRecord {
  id: string;
  /** JID of the entity that published the item. */
  publisher: string;
  /** The item's payload elements, serialised (empty for a notification-only item). */
  payload: string;
  publishedAt: Date;
}

/** Everything of one service except its items: what the PubSub module keeps in memory. */
export interface PubSubServiceState {
  nodes: PubSubNodeRecord[];
  affiliations: { node: string; jid: string; affiliation: PubSubAffiliation }[];
  subscriptions: PubSubSubscriptionRecord[];
}

export interface PubSubStore {
  loadService(service: string): Promise<PubSubServiceState>;
  /** Creates a node, with `owner` (a bare JID) as its first owner if given; false when the node already exists. */
  createNode(node: PubSubNodeRecord, owner?: string): Promise<boolean>;
  setNodeConfig(service: string, node: string, config: Record<string, unknown>): Promise<void>;
  /** Deletes a node with its affiliations, subscriptions and items; false when it did not exist. */
  deleteNode(service: string, node: string): Promise<boolean>;
  /** Sets (or with 'none' removes) the affiliation of a bare JID with a node. */
  setAffiliation(service: string, node: string, jid: string, affiliation: PubSubAffiliation | 'none'): Promise<void>;
  /** Inserts or replaces the subscription with the same node and subid. */
  setSubscription(service: string, subscription: PubSubSubscriptionRecord): Promise<void>;
  deleteSubscription(service: string, node: string, subid: string): Promise<void>;
  /**
   * Stores an item as the newest of its node, replacing the one with the same id, then keeps only
   * the newest `maxItems` items of the node (all when undefined). One atomic step.
   */
  publishItem(service: string, node: string, item: PubSubItemRecord, maxItems?: number): Promise<void>;
  /** Items of a node, newest first: those with the given ids, or the newest `max`, or all. */
  getItems(service: string, node: string, query?: { ids?: string[]; max?: number }): Promise<PubSubItemRecord[]>;
  /** Deletes one item; false when it did not exist. */
  retractItem(service: string, node: string, id: string): Promise<boolean>;
  /** Deletes every item of a node. */
  purgeItems(service: string, node: string): Promise<void>;
}
