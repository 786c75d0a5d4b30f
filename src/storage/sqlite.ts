// SQLite backend (better-sqlite3). Calls are synchronous and fast, so the async interface simply
// wraps them; every statement is prepared once when the database is opened, because logins and
// roster lookups run these queries thousands of times per second under load.
import Database from 'better-sqlite3';
import { migrate, selectSchemaVersion, type MigrationTarget } from './migrations.js';
import type { Credentials, KeyValueStore, OfflineMessage, OfflineStore, PubSubStore, RosterItem, RosterStore, Storage, Subscription, UserStore } from './types.js';
import { sqlitePubSubStore } from './pubsub-sqlite.js';
import { encodeJsonValue } from './json.js';

interface RosterRow {
  contact: string;
  name: string | null;
  groups_json: string;
  subscription: Subscription;
  ask: number;
  pending_in: number;
  approved: number;
  visible: number;
}

function rosterItemFromRow(row: RosterRow): RosterItem {
  const item: RosterItem = {
    jid: row.contact,
    groups: JSON.parse(row.groups_json) as string[],
    subscription: row.subscription,
    ask: row.ask === 1,
    pendingIn: row.pending_in === 1,
    approved: row.approved === 1,
    visible: row.visible === 1,
  };
  if (row.name !== null) item.name = row.name;
  return item;
}

function migrationTarget(db: Database.Database): MigrationTarget {
  return {
    dialect: 'sqlite',
    async exclusiveTransaction(work) {
      // IMMEDIATE takes the write lock up front, so a second process waits instead of racing.
      db.exec('BEGIN IMMEDIATE');
      try {
        await work({
          execute: async (sql) => void db.exec(sql),
          query: async (sql) => db.prepare(sql).all() as Record<string, unknown>[],
        });
        db.exec('COMMIT');
      } catch (error) {
        // SQLite may already have rolled back on its own (e.g. after SQLITE_FULL).
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    },
  };
}

export async function openSqliteStorage(path: string): Promise<Storage> {
  const db = new Database(path);
  try {
    // WAL lets readers proceed during a write; with WAL, synchronous=NORMAL is still crash-safe
    // (a power loss can only lose the last transactions, never corrupt the database).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    await migrate(migrationTarget(db));
    return new SqliteStorage(db);
  } catch (error) {
    db.close();
    throw error;
  }
}

const rosterColumns = 'contact, name, groups_json, subscription, ask, pending_in, approved, visible';

function prepareStatements(db: Database.Database) {
  return {
    insertUser: db.prepare<[string, string, string]>('INSERT INTO users (domain, username, credentials) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    selectUser: db.prepare<[string, string], { credentials: string }>('SELECT credentials FROM users WHERE domain = ? AND username = ?'),
    userExists: db.prepare<[string, string], { found: number }>('SELECT 1 AS found FROM users WHERE domain = ? AND username = ?'),
    updateCredentials: db.prepare<[string, string, string]>('UPDATE users SET credentials = ? WHERE domain = ? AND username = ?'),
    deleteUser: db.prepare<[string, string]>('DELETE FROM users WHERE domain = ? AND username = ?'),
    listUsers: db.prepare<[string], { username: string }>('SELECT username FROM users WHERE domain = ? ORDER BY username'),

    selectRoster: db.prepare<[string], RosterRow>(`SELECT ${rosterColumns} FROM roster_items WHERE owner = ? ORDER BY contact`),
    selectRosterItem: db.prepare<[string, string], RosterRow>(`SELECT ${rosterColumns} FROM roster_items WHERE owner = ? AND contact = ?`),
    upsertRosterItem: db.prepare<[string, string, string | null, string, Subscription, number, number, number, number]>(`
      INSERT INTO roster_items (owner, contact, name, groups_json, subscription, ask, pending_in, approved, visible)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (owner, contact) DO UPDATE SET
        name = excluded.name, groups_json = excluded.groups_json, subscription = excluded.subscription,
        ask = excluded.ask, pending_in = excluded.pending_in, approved = excluded.approved, visible = excluded.visible`),
    deleteRosterItem: db.prepare<[string, string]>('DELETE FROM roster_items WHERE owner = ? AND contact = ?'),
    deleteRoster: db.prepare<[string]>('DELETE FROM roster_items WHERE owner = ?'),
    selectRosterVersion: db.prepare<[string], { version: number }>('SELECT version FROM roster_versions WHERE owner = ?'),
    bumpRosterVersion: db.prepare<[string], { version: number }>(`
      INSERT INTO roster_versions (owner, version) VALUES (?, 1)
      ON CONFLICT (owner) DO UPDATE SET version = roster_versions.version + 1
      RETURNING version`),

    selectValue: db.prepare<[string, string, string], { value_json: string }>('SELECT value_json FROM key_values WHERE namespace = ? AND owner = ? AND key = ?'),
    upsertValue: db.prepare<[string, string, string, string]>(`
      INSERT INTO key_values (namespace, owner, key, value_json) VALUES (?, ?, ?, ?)
      ON CONFLICT (namespace, owner, key) DO UPDATE SET value_json = excluded.value_json`),
    deleteValue: db.prepare<[string, string, string]>('DELETE FROM key_values WHERE namespace = ? AND owner = ? AND key = ?'),
    deleteOwnerValues: db.prepare<[string]>('DELETE FROM key_values WHERE owner = ?'),

    insertOfflineMessage: db.prepare<[string, string, string, string], { id: number }>(
      'INSERT INTO offline_messages (recipient, sender, stamp, stanza) VALUES (?, ?, ?, ?) RETURNING id'),
    selectOfflineMessages: db.prepare<[string], { id: number; sender: string; stamp: string; stanza: string }>(
      'SELECT id, sender, stamp, stanza FROM offline_messages WHERE recipient = ? ORDER BY id'),
    deleteOfflineMessage: db.prepare<[string, number]>('DELETE FROM offline_messages WHERE recipient = ? AND id = ?'),
    countOfflineMessages: db.prepare<[string, string], { count: number }>(
      'SELECT COUNT(*) AS count FROM offline_messages WHERE recipient = ? AND sender = ?'),
    deleteRecipientOfflineMessages: db.prepare<[string]>('DELETE FROM offline_messages WHERE recipient = ?'),

    selectSchemaVersion: db.prepare<[], { version: number }>(selectSchemaVersion),
  };
}

class SqliteStorage implements Storage {
  readonly type = 'sqlite';
  readonly users: UserStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly pubsub: PubSubStore;
  private readonly keyValueStores = new Map<string, KeyValueStore>();
  private readonly statements: ReturnType<typeof prepareStatements>;

  constructor(private readonly db: Database.Database) {
    const statements = (this.statements = prepareStatements(db));
    this.pubsub = sqlitePubSubStore(db);

    const rosterVersion = (owner: string) => statements.selectRosterVersion.get(owner)?.version ?? 0;
    const bumpRosterVersion = (owner: string) => statements.bumpRosterVersion.get(owner)!.version;

    const setRosterItem = db.transaction((owner: string, item: RosterItem) => {
      statements.upsertRosterItem.run(owner, item.jid, item.name ?? null, JSON.stringify(item.groups), item.subscription,
        Number(item.ask), Number(item.pendingIn), Number(item.approved), Number(item.visible));
      return bumpRosterVersion(owner);
    });
    const removeRosterItem = db.transaction((owner: string, contact: string) =>
      statements.deleteRosterItem.run(owner, contact).changes > 0 ? bumpRosterVersion(owner) : rosterVersion(owner));
    // The version counter outlives the account: a client that cached version N of a deleted
    // account's roster must not mistake a recreated account's roster N for it.
    const deleteAccount = db.transaction((domain: string, username: string) => {
      const owner = `${username}@${domain}`;
      const existed = statements.deleteUser.run(domain, username).changes > 0;
      if (statements.deleteRoster.run(owner).changes > 0) bumpRosterVersion(owner);
      statements.deleteOwnerValues.run(owner);
      statements.deleteRecipientOfflineMessages.run(owner);
      return existed;
    });
    // Reads of items and version in one transaction, so they always match.
    const readRoster = db.transaction((owner: string) => ({
      version: rosterVersion(owner),
      items: statements.selectRoster.all(owner).map(rosterItemFromRow),
    }));

    this.users = {
      async create(domain, username, credentials) {
        return statements.insertUser.run(domain, username, JSON.stringify(credentials)).changes > 0;
      },
      async get(domain, username) {
        const row = statements.selectUser.get(domain, username);
        return row ? (JSON.parse(row.credentials) as Credentials) : undefined;
      },
      async exists(domain, username) {
        return statements.userExists.get(domain, username) !== undefined;
      },
      async setCredentials(domain, username, credentials) {
        return statements.updateCredentials.run(JSON.stringify(credentials), domain, username).changes > 0;
      },
      async delete(domain, username) {
        return deleteAccount(domain, username);
      },
      async list(domain) {
        return statements.listUsers.all(domain).map((row) => row.username);
      },
    };

    // IMMEDIATE: the write lock is taken before counting, so another process cannot insert in between.
    const appendOffline = db.transaction((recipient: string, message: Omit<OfflineMessage, 'id'>, limit: number | undefined) => {
      if (limit !== undefined && statements.countOfflineMessages.get(recipient, message.sender)!.count >= limit) return undefined;
      return statements.insertOfflineMessage.get(recipient, message.sender, message.stamp.toISOString(), message.stanza)!.id;
    });

    this.roster = {
      async get(owner) {
        return readRoster(owner);
      },
      async getItem(owner, contact) {
        const row = statements.selectRosterItem.get(owner, contact);
        return row ? rosterItemFromRow(row) : undefined;
      },
      async setItem(owner, item) {
        return setRosterItem(owner, item);
      },
      async removeItem(owner, contact) {
        return removeRosterItem(owner, contact);
      },
    };

    this.offline = {
      async append(recipient, message, limit) {
        return appendOffline.immediate(recipient, message, limit);
      },
      async list(recipient) {
        return statements.selectOfflineMessages.all(recipient).map((row) => ({ ...row, stamp: new Date(row.stamp) }));
      },
      async delete(recipient, id) {
        return statements.deleteOfflineMessage.run(recipient, id).changes > 0;
      },
      async count(recipient, sender) {
        return statements.countOfflineMessages.get(recipient, sender)!.count;
      },
    };
  }

  keyValue(namespace: string): KeyValueStore {
    let store = this.keyValueStores.get(namespace);
    if (!store) {
      const { selectValue, upsertValue, deleteValue } = this.statements;
      store = {
        async get<T>(owner: string, key: string) {
          const row = selectValue.get(namespace, owner, key);
          return row ? (JSON.parse(row.value_json) as T) : undefined;
        },
        async set(owner, key, value) {
          upsertValue.run(namespace, owner, key, encodeJsonValue(value));
        },
        async delete(owner, key) {
          deleteValue.run(namespace, owner, key);
        },
      };
      this.keyValueStores.set(namespace, store);
    }
    return store;
  }

  async schemaVersion(): Promise<number> {
    return this.statements.selectSchemaVersion.get()!.version;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
