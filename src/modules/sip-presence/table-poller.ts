// Input "table": a database table the SIP proxy (OpenSIPS, Kamailio) inserts one row into per
// event, polled every `interval` seconds as the seed's daemon did. Each poll takes the waiting
// rows out of the table in one statement (DELETE ... RETURNING), so a row is applied once even
// when the bridge restarts, and then applies them in insertion order. The table:
//
//   CREATE TABLE sip_presence (
//     id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- PostgreSQL: BIGSERIAL PRIMARY KEY
//     uri      TEXT NOT NULL,                      -- the phone's SIP URI (sip:100@pbx.example.com)
//     state    TEXT NOT NULL,                      -- online | still-online | onthephone | still-onthephone | offline
//     expires  INTEGER,                            -- seconds the report holds (e.g. REGISTER Expires); NULL: the configured expiry
//     created  TIMESTAMP DEFAULT CURRENT_TIMESTAMP -- for the operator; not read
//   );
//
// The drivers are the project's own (better-sqlite3, pg). A table that is missing, a database
// that is down or restarting: the poll fails, is logged once (and once more when it works
// again), and the next poll tries again on a fresh connection. Nothing is taken from the table
// unless the statement succeeds, so nothing is half applied. An SQLite table locked by the
// proxy's write is no error: its rows wait for the next poll.
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Logger } from 'pino';

export interface TableRow {
  id: number;
  uri: unknown;
  state: unknown;
  expires: unknown;
}

/** The proxy holds the table's write lock: its rows wait for the next poll; nothing is wrong. */
export class TableBusy extends Error {
  constructor() {
    super('the table is locked by a writer');
  }
}

export interface TableSource {
  /** Takes up to BATCH of the oldest rows out of the table. */
  take(): Promise<TableRow[]>;
  close(): Promise<void>;
}

/** Longest wait, in milliseconds, for the proxy's write lock on an SQLite table. */
const BUSY_TIMEOUT_MS = 100;

/** Rows taken per poll: a burst larger than this is spread over the next polls. */
const BATCH = 500;

const takeSql = (table: string) =>
  `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY id LIMIT ${BATCH}) RETURNING id, uri, state, expires`;

export class SqliteTable implements TableSource {
  private db: Database.Database | undefined;
  private readonly sql: string;

  constructor(private readonly path: string, table: string) {
    this.sql = takeSql(table);
  }

  async take(): Promise<TableRow[]> {
    try {
      // Opened per use after a failure: the proxy may have recreated the file. better-sqlite3 is
      // synchronous, so a short busy timeout: the server must not stall while the proxy writes.
      this.db ??= new Database(this.path, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
      return this.db.prepare<[], TableRow>(this.sql).all();
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new TableBusy();
      this.db?.close();
      this.db = undefined;
      throw e;
    }
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }
}

export class PostgresTable implements TableSource {
  private readonly pool: pg.Pool;
  private readonly sql: string;

  constructor(url: string, table: string, log: Logger) {
    this.sql = takeSql(table);
    // One connection is enough for one poll a second; the pool reconnects after a restart.
    this.pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'switchboard-sip-presence', connectionTimeoutMillis: 10_000 });
    // A connection dropped while idle (server restart) must not crash the process.
    this.pool.on('error', (err) => log.debug({ err }, 'idle database connection lost'));
  }

  async take(): Promise<TableRow[]> {
    const result = await this.pool.query<TableRow>(this.sql);
    return result.rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

export class TablePoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastError: string | undefined;
  private stopped = false;

  constructor(private readonly source: TableSource, private readonly intervalMs: number, private readonly describe: string,
    private readonly onRow: (row: TableRow) => void, private readonly log: Logger,
    /** Asked before each poll: in a cluster a node that no longer serves takes nothing, even before it stops its bridge. */
    private readonly mayTake: () => boolean = () => true) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = (this.mayTake() ? this.poll() : Promise.resolve()).finally(() => {
        this.running = undefined;
        this.schedule(this.intervalMs);
      });
    }, ms);
  }

  /** One poll: the rows taken are applied in id order. */
  async poll(): Promise<void> {
    let rows: TableRow[];
    try {
      rows = await this.source.take();
    } catch (e) {
      if (e instanceof TableBusy) {
        this.log.debug({ table: this.describe }, 'SIP presence table locked by a writer: its rows wait for the next poll');
        return;
      }
      const message = (e as Error).message;
      if (message !== this.lastError) this.log.error({ table: this.describe, error: message }, 'cannot read the SIP presence table; trying again every poll');
      this.lastError = message;
      return;
    }
    if (this.lastError !== undefined) this.log.info({ table: this.describe }, 'SIP presence table readable again');
    this.lastError = undefined;
    rows.sort((a, b) => a.id - b.id);
    for (const row of rows) {
      try {
        this.onRow(row);
      } catch (err) {
        this.log.error({ err, table: this.describe, id: row.id }, 'could not apply a SIP presence row');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.source.close();
  }
}
