// Versioned schema migrations, shared by both backends. Migrations are append-only: never edit
// one that has shipped, add a new one. Each runs once, in its own transaction, and is recorded in
// `schema_version`; opening a database that is already up to date changes nothing.

export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  description: string;
  /** One script for both backends, or one per backend where their dialects differ. */
  sql: string | Record<Dialect, string>;
}

// Conventions of the schema:
// - accounts are keyed by (domain, username); everything else by the account's bare JID
//   (`owner`), the form the core already has at hand when it routes a stanza;
// - JSON (credentials, roster groups, key-value values) is stored as text: nothing queries
//   inside it, and text behaves the same on both backends;
// - PostgreSQL text keys use the "C" collation so that equality and ORDER BY compare code
//   points, as SQLite's default BINARY collation does, whatever the database locale is.
export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'accounts, rosters with versions, per-account key-value data',
    sql: {
      sqlite: `
        CREATE TABLE users (
          domain TEXT NOT NULL,
          username TEXT NOT NULL,
          credentials TEXT NOT NULL,
          PRIMARY KEY (domain, username)
        ) WITHOUT ROWID;

        CREATE TABLE roster_items (
          owner TEXT NOT NULL,
          contact TEXT NOT NULL,
          name TEXT,
          groups_json TEXT NOT NULL,
          subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
          ask INTEGER NOT NULL CHECK (ask IN (0, 1)),
          pending_in INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
          approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
          visible INTEGER NOT NULL CHECK (visible IN (0, 1)),
          PRIMARY KEY (owner, contact)
        ) WITHOUT ROWID;

        CREATE TABLE roster_versions (
          owner TEXT NOT NULL PRIMARY KEY,
          version INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE key_values (
          namespace TEXT NOT NULL,
          owner TEXT NOT NULL,
          key TEXT NOT NULL,
          value_json TEXT NOT NULL,
          PRIMARY KEY (namespace, owner, key)
        ) WITHOUT ROWID;

        -- Deleting an account removes its data in every namespace.
        CREATE INDEX key_values_by_owner ON key_values (owner);
      `,
      postgres: `
        CREATE TABLE users (
          domain TEXT COLLATE "C" NOT NULL,
          username TEXT COLLATE "C" NOT NULL,
          credentials TEXT NOT NULL,
          PRIMARY KEY (domain, username)
        );

        CREATE TABLE roster_items (
          owner TEXT COLLATE "C" NOT NULL,
          contact TEXT COLLATE "C" NOT NULL,
          name TEXT,
          groups_json TEXT NOT NULL,
          subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
          ask BOOLEAN NOT NULL,
          pending_in BOOLEAN NOT NULL,
          approved BOOLEAN NOT NULL,
          visible BOOLEAN NOT NULL,
          PRIMARY KEY (owner, contact)
        );

        CREATE TABLE roster_versions (
          owner TEXT COLLATE "C" NOT NULL PRIMARY KEY,
          version INTEGER NOT NULL
        );

        CREATE TABLE key_values (
          namespace TEXT COLLATE "C" NOT NULL,
          owner TEXT COLLATE "C" NOT NULL,
          key TEXT COLLATE "C" NOT NULL,
          value_json TEXT NOT NULL,
          PRIMARY KEY (namespace, owner, key)
        );

        -- Deleting an account removes its data in every namespace.
        CREATE INDEX key_values_by_owner ON key_values (owner);
      `,
    },
  },
  {
    version: 2,
    description: 'offline messages (XEP-0160)',
    // Ids give the delivery order; AUTOINCREMENT (SQLite) and an identity (PostgreSQL) never reuse
    // one, so deleting a delivered message by id can never hit a newer message.
    sql: {
      sqlite: `
        CREATE TABLE offline_messages (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          recipient TEXT NOT NULL,
          sender TEXT NOT NULL,
          stamp TEXT NOT NULL,
          stanza TEXT NOT NULL
        );

        -- Listing a recipient's messages in order, and counting them per sender for the limits.
        CREATE INDEX offline_messages_by_recipient ON offline_messages (recipient, id);
        CREATE INDEX offline_messages_by_pair ON offline_messages (recipient, sender);
      `,
      postgres: `
        CREATE TABLE offline_messages (
          id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          recipient TEXT COLLATE "C" NOT NULL,
          sender TEXT COLLATE "C" NOT NULL,
          stamp TIMESTAMPTZ NOT NULL,
          stanza TEXT NOT NULL
        );

        -- Listing a recipient's messages in order, and counting them per sender for the limits.
        CREATE INDEX offline_messages_by_recipient ON offline_messages (recipient, id);
        CREATE INDEX offline_messages_by_pair ON offline_messages (recipient, sender);
      `,
    },
  },  {
    version: 3,
    description: 'PubSub nodes, affiliations, subscriptions and items (XEP-0060, XEP-0248)',
    // Everything is keyed by the service (pubsub.example.com, or an account for PEP) and the node
    // name. Items carry `seq`, which grows with every publish: "newest first" and the max_items
    // trim order by it, and republishing an id gives it a new one. SQLite takes MAX + 1 inside the
    // write transaction; PostgreSQL a sequence, which also suits concurrent writers. Items keep a
    // rowid table in SQLite: WITHOUT ROWID suits small rows, and payloads may be large.
    sql: {
      sqlite: `
        CREATE TABLE pubsub_nodes (
          service TEXT NOT NULL,
          node TEXT NOT NULL,
          config_json TEXT NOT NULL,
          creator TEXT,
          created_at TEXT NOT NULL,
          PRIMARY KEY (service, node)
        ) WITHOUT ROWID;

        CREATE TABLE pubsub_affiliations (
          service TEXT NOT NULL,
          node TEXT NOT NULL,
          jid TEXT NOT NULL,
          affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'publisher', 'publish-only', 'member', 'outcast')),
          PRIMARY KEY (service, node, jid)
        ) WITHOUT ROWID;

        CREATE TABLE pubsub_subscriptions (
          service TEXT NOT NULL,
          node TEXT NOT NULL,
          subid TEXT NOT NULL,
          jid TEXT NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('subscribed', 'pending', 'unconfigured')),
          options_json TEXT NOT NULL,
          PRIMARY KEY (service, node, subid)
        ) WITHOUT ROWID;

        CREATE TABLE pubsub_items (
          service TEXT NOT NULL,
          node TEXT NOT NULL,
          item_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          publisher TEXT NOT NULL,
          published_at TEXT NOT NULL,
          payload TEXT NOT NULL,
          PRIMARY KEY (service, node, item_id)
        );

        CREATE INDEX pubsub_items_by_age ON pubsub_items (service, node, seq);
      `,
      postgres: `
        CREATE TABLE pubsub_nodes (
          service TEXT COLLATE "C" NOT NULL,
          node TEXT COLLATE "C" NOT NULL,
          config_json TEXT NOT NULL,
          creator TEXT COLLATE "C",
          created_at TIMESTAMPTZ NOT NULL,
          PRIMARY KEY (service, node)
        );

        CREATE TABLE pubsub_affiliations (
          service TEXT COLLATE "C" NOT NULL,
          node TEXT COLLATE "C" NOT NULL,
          jid TEXT COLLATE "C" NOT NULL,
          affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'publisher', 'publish-only', 'member', 'outcast')),
          PRIMARY KEY (service, node, jid)
        );

        CREATE TABLE pubsub_subscriptions (
          service TEXT COLLATE "C" NOT NULL,
          node TEXT COLLATE "C" NOT NULL,
          subid TEXT COLLATE "C" NOT NULL,
          jid TEXT COLLATE "C" NOT NULL,
          state TEXT NOT NULL CHECK (state IN ('subscribed', 'pending', 'unconfigured')),
          options_json TEXT NOT NULL,
          PRIMARY KEY (service, node, subid)
        );

        CREATE SEQUENCE pubsub_item_seq;

        CREATE TABLE pubsub_items (
          service TEXT COLLATE "C" NOT NULL,
          node TEXT COLLATE "C" NOT NULL,
          item_id TEXT COLLATE "C" NOT NULL,
          seq BIGINT NOT NULL DEFAULT nextval('pubsub_item_seq'),
          publisher TEXT COLLATE "C" NOT NULL,
          published_at TIMESTAMPTZ NOT NULL,
          payload TEXT NOT NULL,
          PRIMARY KEY (service, node, item_id)
        );

        CREATE INDEX pubsub_items_by_age ON pubsub_items (service, node, seq);
      `,
    },
  },
];

export const latestSchemaVersion = migrations[migrations.length - 1]!.version;

/** One transaction of the migration runner, as each backend provides it. */
export interface MigrationTransaction {
  /** Runs a script of one or more statements without parameters. */
  execute(sql: string): Promise<void>;
  /** Runs one query without parameters and returns its rows. */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

export interface MigrationTarget {
  readonly dialect: Dialect;
  /**
   * Runs `work` in a transaction that no other migrator can run alongside (SQLite: BEGIN
   * IMMEDIATE; PostgreSQL: an advisory lock), so that two servers starting at once against the
   * same database apply each migration once. Commits when `work` resolves, rolls back when it throws.
   */
  exclusiveTransaction(work: (tx: MigrationTransaction) => Promise<void>): Promise<void>;
}

export const selectSchemaVersion = 'SELECT COALESCE(MAX(version), 0) AS version FROM schema_version';

async function appliedVersion(tx: MigrationTransaction): Promise<number> {
  const [row] = await tx.query(selectSchemaVersion);
  return Number(row?.version ?? 0);
}

/** Brings the database to the latest schema version and returns that version. */
export async function migrate(target: MigrationTarget): Promise<number> {
  let current = 0;
  await target.exclusiveTransaction(async (tx) => {
    await tx.execute(`CREATE TABLE IF NOT EXISTS schema_version (
      version INTEGER NOT NULL PRIMARY KEY,
      applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    )`);
    current = await appliedVersion(tx);
  });
  if (current > latestSchemaVersion) {
    throw new Error(`The database schema is at version ${current}, newer than this Switchboard knows (${latestSchemaVersion}); refusing to use it`);
  }

  for (const migration of migrations) {
    if (migration.version <= current) continue;
    await target.exclusiveTransaction(async (tx) => {
      // Another server may have applied it while we waited for the lock.
      if ((await appliedVersion(tx)) >= migration.version) return;
      const sql = typeof migration.sql === 'string' ? migration.sql : migration.sql[target.dialect];
      await tx.execute(sql);
      await tx.execute(`INSERT INTO schema_version (version) VALUES (${migration.version})`);
    });
    current = migration.version;
  }
  return current;
}
