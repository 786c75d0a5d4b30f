// Accounts whose data never reaches the database: anonymous users (seed 001 section 11.13,
// "anonymous users cannot access the database"). While an account is ephemeral, what modules
// write for it through the roster, key-value and offline stores is kept in memory, and it is
// forgotten when the account ends (the JID of an anonymous login is used once). Everything else
// goes to the real storage untouched.
//
// The overlay is a Proxy over the storage object, so stores other modules add to the Storage
// interface keep working; only `roster`, `keyValue()`, `offline` and `pubsub` (PEP: the service
// named by the account's bare JID) are intercepted.
import type { KeyValueStore, OfflineStore, PubSubItemRecord, PubSubStore, RosterItem, RosterStore, Storage } from './types.js';

export interface EphemeralAccounts {
  /** From now on, the data of this account (a bare JID) is kept in memory only. */
  begin(bare: string): void;
  /** Forgets the account's data; writes arriving within `graceMs` still stay in memory (and are dropped). */
  end(bare: string, graceMs?: number): void;
  has(bare: string): boolean;
  /** Accounts currently ephemeral (tests, statistics). */
  readonly size: number;
}

interface MemoryAccount {
  rosterVersion: number;
  roster: Map<string, RosterItem>;
  /** namespace -> key -> value */
  values: Map<string, Map<string, unknown>>;
  /** PEP nodes of the account: node -> items, newest first. */
  pep: Map<string, PubSubItemRecord[]>;
  timer?: NodeJS.Timeout;
}

const cloneItem = (i: RosterItem): RosterItem => ({ ...i, groups: [...i.groups] });

export function withEphemeralAccounts(storage: Storage): { storage: Storage; ephemeral: EphemeralAccounts } {
  const accounts = new Map<string, MemoryAccount>();
  const mem = (owner: string) => accounts.get(owner);

  const ephemeral: EphemeralAccounts = {
    begin(bare) {
      const existing = accounts.get(bare);
      if (existing) { clearTimeout(existing.timer); existing.timer = undefined; return; }
      accounts.set(bare, { rosterVersion: 0, roster: new Map(), values: new Map(), pep: new Map() });
    },
    end(bare, graceMs = 60_000) {
      const account = accounts.get(bare);
      if (!account) return;
      account.roster.clear();
      account.values.clear();
      account.pep.clear();
      clearTimeout(account.timer);
      account.timer = setTimeout(() => { if (accounts.get(bare) === account) accounts.delete(bare); }, graceMs);
      account.timer.unref();
    },
    has: (bare) => accounts.has(bare),
    get size() { return accounts.size; },
  };

  const real = storage.roster;
  const roster: RosterStore = {
    async get(owner) {
      const m = mem(owner);
      return m ? { version: m.rosterVersion, items: [...m.roster.values()].map(cloneItem) } : real.get(owner);
    },
    async getItem(owner, contact) {
      const m = mem(owner);
      if (!m) return real.getItem(owner, contact);
      const item = m.roster.get(contact);
      return item && cloneItem(item);
    },
    async setItem(owner, item) {
      const m = mem(owner);
      if (!m) return real.setItem(owner, item);
      m.roster.set(item.jid, cloneItem(item));
      return ++m.rosterVersion;
    },
    async removeItem(owner, contact) {
      const m = mem(owner);
      if (!m) return real.removeItem(owner, contact);
      return m.roster.delete(contact) ? ++m.rosterVersion : m.rosterVersion;
    },
  };

  const keyValueStores = new Map<string, KeyValueStore>();
  const keyValue = (namespace: string): KeyValueStore => {
    let store = keyValueStores.get(namespace);
    if (store) return store;
    const realStore = storage.keyValue(namespace);
    const values = (owner: string, create: boolean) => {
      const m = mem(owner)!;
      let v = m.values.get(namespace);
      if (!v && create) m.values.set(namespace, (v = new Map()));
      return v;
    };
    store = {
      async get<T>(owner: string, key: string) {
        if (!mem(owner)) return realStore.get<T>(owner, key);
        const v = values(owner, false)?.get(key);
        return v === undefined ? undefined : structuredClone(v) as T;
      },
      async set(owner, key, value) {
        if (!mem(owner)) return realStore.set(owner, key, value);
        values(owner, true)!.set(key, structuredClone(value));
      },
      async delete(owner, key) {
        if (!mem(owner)) return realStore.delete(owner, key);
        values(owner, false)?.delete(key);
      },
    };
    keyValueStores.set(namespace, store);
    return store;
  };

  const realOffline = storage.offline;
  // Nothing is kept for an ephemeral account while it is away: it never comes back.
  const offline: OfflineStore = {
    append: (recipient, message, limit) => (mem(recipient) ? Promise.resolve(undefined) : realOffline.append(recipient, message, limit)),
    list: (recipient) => (mem(recipient) ? Promise.resolve([]) : realOffline.list(recipient)),
    delete: (recipient, id) => (mem(recipient) ? Promise.resolve(false) : realOffline.delete(recipient, id)),
    count: (recipient, sender) => (mem(recipient) ? Promise.resolve(0) : realOffline.count(recipient, sender)),
  };

  // PEP (XEP-0163): the PubSub module keeps nodes, affiliations and subscriptions in memory and
  // reads them back only when a service is loaded, which an ephemeral account's never is again;
  // items are read on demand, so they are kept here.
  const realPubsub = storage.pubsub;
  const pep = (service: string) => mem(service)?.pep;
  const pubsub: PubSubStore = {
    loadService: (service) => (pep(service) ? Promise.resolve({ nodes: [], affiliations: [], subscriptions: [] }) : realPubsub.loadService(service)),
    async createNode(node, owner) {
      const nodes = pep(node.service);
      if (!nodes) return realPubsub.createNode(node, owner);
      if (nodes.has(node.node)) return false;
      nodes.set(node.node, []);
      return true;
    },
    setNodeConfig: (service, node, config) => (pep(service) ? Promise.resolve() : realPubsub.setNodeConfig(service, node, config)),
    async deleteNode(service, node) {
      const nodes = pep(service);
      return nodes ? nodes.delete(node) : realPubsub.deleteNode(service, node);
    },
    setAffiliation: (service, node, jid, affiliation) => (pep(service) ? Promise.resolve() : realPubsub.setAffiliation(service, node, jid, affiliation)),
    setSubscription: (service, subscription) => (pep(service) ? Promise.resolve() : realPubsub.setSubscription(service, subscription)),
    deleteSubscription: (service, node, subid) => (pep(service) ? Promise.resolve() : realPubsub.deleteSubscription(service, node, subid)),
    async publishItem(service, node, item, maxItems) {
      const nodes = pep(service);
      if (!nodes) return realPubsub.publishItem(service, node, item, maxItems);
      const items = [{ ...item }, ...(nodes.get(node) ?? []).filter((i) => i.id !== item.id)];
      nodes.set(node, maxItems === undefined ? items : items.slice(0, maxItems));
    },
    async getItems(service, node, query) {
      const nodes = pep(service);
      if (!nodes) return realPubsub.getItems(service, node, query);
      let items = nodes.get(node) ?? [];
      if (query?.ids) items = items.filter((i) => query.ids!.includes(i.id));
      else if (query?.max !== undefined) items = items.slice(0, query.max);
      return items.map((i) => ({ ...i }));
    },
    async retractItem(service, node, id) {
      const nodes = pep(service);
      if (!nodes) return realPubsub.retractItem(service, node, id);
      const items = nodes.get(node) ?? [];
      const kept = items.filter((i) => i.id !== id);
      nodes.set(node, kept);
      return kept.length !== items.length;
    },
    async purgeItems(service, node) {
      const nodes = pep(service);
      if (!nodes) return realPubsub.purgeItems(service, node);
      if (nodes.has(node)) nodes.set(node, []);
    },
  };

  const proxy = new Proxy(storage, {
    get(target, prop) {
      if (prop === 'pubsub') return pubsub;
      if (prop === 'roster') return roster;
      if (prop === 'offline') return offline;
      if (prop === 'keyValue') return keyValue;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { storage: proxy, ephemeral };
}
