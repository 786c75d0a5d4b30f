// PostgreSQL backend (node-postgres) over a connection pool. Hot queries are named, so each
// pooled connection parses and plans them once. Writes that must happen together (an item and
// its roster version) are single statements or explicit transactions.
import pg from 'pg';
import { migrate, selectSchemaVersion, type MigrationTarget } from './migrations.js';
import type { Credentials, KeyValueStore, OfflineStore, PubSubStore, RosterItem, RosterStore, Storage, Subscription, UserStore } from './types.js';
import { postgresPubSubStore } from './pubsub-postgres.js';
import { encodeJsonValue } from './json.js';

interface RosterRow {
  contact: string;
  name: string | null;
  groups_json: string;
  subscription: Subscription;
  ask: boolean;
  pending_in: boolean;
  approved: boolean;
  visible: boolean;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

function rosterItemFromRow(row: RosterRow): RosterItem {
  const item: RosterItem = {
    jid: row.contact,
    groups: JSON.parse(row.groups_json) as string[],
    subscription: row.subscription,
    ask: row.ask,
    pendingIn: row.pending_in,
    approved: row.approved,
    visible: row.visible,
  };
  if (row.name !== null) item.name = row.name;
  return item;
}

// Any constant shared by every Switchboard process using this database will do.
const MIGRATION_LOCK_KEY = 0x5b0a4d;

const rosterColumns = 'contact, name, groups_json, subscription, ask, pending_in, approved, visible';

const bumpRosterVersionSql = `
  INSERT INTO roster_versions (owner, version) VALUES ($1, 1)
  ON CONFLICT (owner) DO UPDATE SET version = roster_versions.version + 1
  RETURNING version`;

/** Where a connection URL points, for error messages: never includes the password. */
function describeServer(url: string): string {
  // pg's own parser, so the description matches what it actually tried (PG* variables included).
  const { host, port, database, user } = new pg.Client({ connectionString: url });
  return `${user ?? '?'}@${host}:${port}/${database ?? '?'}`;
}

/** A named query: each pooled connection prepares it once, then reuses the plan. */
function namedQuery<R extends pg.QueryResultRow>(db: pg.Pool | pg.PoolClient, name: string, text: string, values: unknown[]) {
  return db.query<R>({ name, text, values });
}

async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined); // the original error matters more
    throw error;
  } finally {
    client.release();
  }
}

function migrationTarget(pool: pg.Pool): MigrationTarget {
  return {
    dialect: 'postgres',
    exclusiveTransaction: (work) =>
      transaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await work({
          execute: async (sql) => void (await client.query(sql)),
          query: async (sql) => (await client.query(sql)).rows,
        });
      }),
  };
}

export async function openPostgresStorage(url: string): Promise<Storage> {
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // An idle connection that breaks (server restart) is dropped by the pool and replaced on the
  // next query; without a listener the 'error' event would crash the process.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot connect to PostgreSQL at ${describeServer(url)}: ${reason}`, { cause: error });
  }
  try {
    await migrate(migrationTarget(pool));
  } catch (error) {
    await pool.end();
    throw error;
  }
  return new PostgresStorage(pool);
}

class PostgresStorage implements Storage {
  readonly type = 'postgres';
  readonly users: UserStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly pubsub: PubSubStore;
  private readonly keyValueStores = new Map<string, KeyValueStore>();
  private closed = false;

  constructor(private readonly pool: pg.Pool) {
    this.pubsub = postgresPubSubStore(pool, (work) => transaction(pool, work));
    this.users = {
      async create(domain, username, credentials) {
        const { rowCount } = await namedQuery(pool, 'user-create',
          'INSERT INTO users (domain, username, credentials) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [domain, username, JSON.stringify(credentials)]);
        return rowCount === 1;
      },
      async get(domain, username) {
        const { rows } = await namedQuery<{ credentials: string }>(pool, 'user-get',
          'SELECT credentials FROM users WHERE domain = $1 AND username = $2', [domain, username]);
        return rows[0] ? (JSON.parse(rows[0].credentials) as Credentials) : undefined;
      },
      async exists(domain, username) {
        const { rowCount } = await namedQuery(pool, 'user-exists', 'SELECT 1 FROM users WHERE domain = $1 AND username = $2', [domain, username]);
        return rowCount === 1;
      },
      async setCredentials(domain, username, credentials) {
        const { rowCount } = await namedQuery(pool, 'user-set-credentials',
          'UPDATE users SET credentials = $3 WHERE domain = $1 AND username = $2', [domain, username, JSON.stringify(credentials)]);
        return rowCount === 1;
      },
      async delete(domain, username) {
        const owner = `${username}@${domain}`;
        return transaction(pool, async (client) => {
          const deletedUsers = await client.query('DELETE FROM users WHERE domain = $1 AND username = $2', [domain, username]);
          // The version counter outlives the account: a client that cached version N of a deleted
          // account's roster must not mistake a recreated account's roster N for it.
          const deletedItems = await client.query('DELETE FROM roster_items WHERE owner = $1', [owner]);
          if (deletedItems.rowCount) await client.query(bumpRosterVersionSql, [owner]);
          await client.query('DELETE FROM key_values WHERE owner = $1', [owner]);
          await client.query('DELETE FROM offline_messages WHERE recipient = $1', [owner]);
          return deletedUsers.rowCount === 1;
        });
      },
      async list(domain) {
        const { rows } = await namedQuery<{ username: string }>(pool, 'user-list',
          'SELECT username FROM users WHERE domain = $1 ORDER BY username', [domain]);
        return rows.map((row) => row.username);
      },
    };

    this.roster = {
      async get(owner) {
        // One statement, so the items and the version come from the same snapshot: the version
        // is repeated on every item row, or comes alone (contact NULL) when the roster is empty.
        const { rows } = await namedQuery<{ version: number } & Nullable<RosterRow>>(pool, 'roster-get', `
          SELECT COALESCE(v.version, 0) AS version, ${rosterColumns}
          FROM (SELECT $1::text AS owner) o
          LEFT JOIN roster_versions v ON v.owner = o.owner
          LEFT JOIN roster_items i ON i.owner = o.owner
          ORDER BY contact`, [owner]);
        const items = rows.filter((row): row is { version: number } & RosterRow => row.contact !== null).map(rosterItemFromRow);
        return { version: rows[0]!.version, items };
      },
      async getItem(owner, contact) {
        const { rows } = await namedQuery<RosterRow>(pool, 'roster-get-item',
          `SELECT ${rosterColumns} FROM roster_items WHERE owner = $1 AND contact = $2`, [owner, contact]);
        return rows[0] ? rosterItemFromRow(rows[0]) : undefined;
      },
      async setItem(owner, item) {
        // One statement, hence atomic: the data-modifying CTE writes the item, the outer
        // INSERT bumps the version (row-locked by ON CONFLICT, so concurrent bumps serialize).
        const { rows } = await namedQuery<{ version: number }>(pool, 'roster-set-item', `
          WITH item AS (
            INSERT INTO roster_items (owner, contact, name, groups_json, subscription, ask, pending_in, approved, visible)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (owner, contact) DO UPDATE SET
              name = excluded.name, groups_json = excluded.groups_json, subscription = excluded.subscription,
              ask = excluded.ask, pending_in = excluded.pending_in, approved = excluded.approved, visible = excluded.visible
          )
          ${bumpRosterVersionSql}`,
        [owner, item.jid, item.name ?? null, JSON.stringify(item.groups), item.subscription, item.ask, item.pendingIn, item.approved, item.visible]);
        return rows[0]!.version;
      },
      async removeItem(owner, contact) {
        // As in setItem, but the version is bumped only when the DELETE removed a row.
        const { rows } = await namedQuery<{ version: number }>(pool, 'roster-remove-item', `
          WITH removed AS (DELETE FROM roster_items WHERE owner = $1 AND contact = $2 RETURNING owner)
          INSERT INTO roster_versions (owner, version) SELECT owner, 1 FROM removed
          ON CONFLICT (owner) DO UPDATE SET version = roster_versions.version + 1
          RETURNING version`, [owner, contact]);
        if (rows[0]) return rows[0].version;
        const current = await namedQuery<{ version: number }>(pool, 'roster-version', 'SELECT version FROM roster_versions WHERE owner = $1', [owner]);
        return current.rows[0]?.version ?? 0;
      },
    };

    // BIGINT ids and COUNT(*) arrive as strings (pg keeps 64-bit integers exact); both stay far
    // below 2^53, so Number() is exact.
    const insertOfflineSql = 'INSERT INTO offline_messages (recipient, sender, stamp, stanza) VALUES ($1, $2, $3, $4) RETURNING id';
    const countOfflineSql = 'SELECT COUNT(*) AS count FROM offline_messages WHERE recipient = $1 AND sender = $2';
    this.offline = {
      async append(recipient, message, limit) {
        const values = [recipient, message.sender, message.stamp, message.stanza];
        if (limit === undefined) {
          const { rows } = await namedQuery<{ id: string }>(pool, 'offline-append', insertOfflineSql, values);
          return Number(rows[0]!.id);
        }
        return transaction(pool, async (client) => {
          // Under READ COMMITTED two transactions could both count limit - 1 and both insert: a
          // lock per sender-recipient pair (two-key form, apart from the migration lock's keys)
          // makes the second wait, and its COUNT, a new statement, then sees the first's row.
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [recipient, message.sender]);
          const counted = await client.query<{ count: string }>(countOfflineSql, [recipient, message.sender]);
          if (Number(counted.rows[0]!.count) >= limit) return undefined;
          const { rows } = await client.query<{ id: string }>(insertOfflineSql, values);
          return Number(rows[0]!.id);
        });
      },
      async list(recipient) {
        const { rows } = await namedQuery<{ id: string; sender: string; stamp: Date; stanza: string }>(pool, 'offline-list',
          'SELECT id, sender, stamp, stanza FROM offline_messages WHERE recipient = $1 ORDER BY id', [recipient]);
        return rows.map((row) => ({ ...row, id: Number(row.id) }));
      },
      async delete(recipient, id) {
        const { rowCount } = await namedQuery(pool, 'offline-delete', 'DELETE FROM offline_messages WHERE recipient = $1 AND id = $2', [recipient, id]);
        return rowCount === 1;
      },
      async count(recipient, sender) {
        const { rows } = await namedQuery<{ count: string }>(pool, 'offline-count', countOfflineSql, [recipient, sender]);
        return Number(rows[0]!.count);
      },
    };
  }

  keyValue(namespace: string): KeyValueStore {
    let store = this.keyValueStores.get(namespace);
    if (!store) {
      const pool = this.pool;
      store = {
        async get<T>(owner: string, key: string) {
          const { rows } = await namedQuery<{ value_json: string }>(pool, 'kv-get',
            'SELECT value_json FROM key_values WHERE namespace = $1 AND owner = $2 AND key = $3', [namespace, owner, key]);
          return rows[0] ? (JSON.parse(rows[0].value_json) as T) : undefined;
        },
        async set(owner, key, value) {
          await namedQuery(pool, 'kv-set', `
            INSERT INTO key_values (namespace, owner, key, value_json) VALUES ($1, $2, $3, $4)
            ON CONFLICT (namespace, owner, key) DO UPDATE SET value_json = excluded.value_json`,
          [namespace, owner, key, encodeJsonValue(value)]);
        },
        async delete(owner, key) {
          await namedQuery(pool, 'kv-delete', 'DELETE FROM key_values WHERE namespace = $1 AND owner = $2 AND key = $3', [namespace, owner, key]);
        },
      };
      this.keyValueStores.set(namespace, store);
    }
    return store;
  }

  async schemaVersion(): Promise<number> {
    const { rows } = await this.pool.query<{ version: number }>(selectSchemaVersion);
    return rows[0]!.version;
  }

  async close(): Promise<void> {
    // pool.end() rejects when called twice; the server and tests may both close.
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
