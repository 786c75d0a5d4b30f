// The callcenter queues table (seed 004's columns), read from SQLite or PostgreSQL: Switchboard's
// own database by default, or the one named by `xml-curl.database`. Read-only: the table belongs
// to whoever fills it (INSERTs by hand, a provisioning system).
//
// A table that is missing, a column that is missing, a database that is down or restarting:
// each is a QueueSourceError with a message for the log; the next request tries again (the pg pool
// replaces dead connections, SQLite reopens nothing: the file handle stays valid).
import Database from 'better-sqlite3';
import pg from 'pg';

/** A queue row: the seed's columns, NULL as undefined. */
export interface QueueRow {
  name: string;
  strategy?: string;
  moh_sound?: string;
  announce_sound?: string;
  announce_frequency?: string;
  time_base_score?: string;
  tier_rules_apply?: string;
  tier_rule_wait_second?: string;
  tier_rule_wait_multiply_level?: string;
  tier_rule_no_agent_no_wait?: string;
  discard_abandoned_after?: string;
  abandoned_resume_allowed?: string;
  max_wait_time?: string;
  max_wait_time_with_no_agent?: string;
  max_wait_time_with_no_agent_time_reached?: string;
  record_template?: string;
}

/** The columns read, in the seed's order (queue_id, the key, is not needed by FreeSWITCH). */
export const QUEUE_COLUMNS = [
  'name', 'strategy', 'moh_sound', 'announce_sound', 'announce_frequency', 'time_base_score', 'tier_rules_apply',
  'tier_rule_wait_second', 'tier_rule_wait_multiply_level', 'tier_rule_no_agent_no_wait', 'discard_abandoned_after',
  'abandoned_resume_allowed', 'max_wait_time', 'max_wait_time_with_no_agent', 'max_wait_time_with_no_agent_time_reached', 'record_template',
] as const satisfies readonly (keyof QueueRow)[];

export class QueueSourceError extends Error {}

export interface QueueSource {
  /** One queue by name, or every queue (sorted by name) when `name` is undefined. */
  queues(name?: string): Promise<QueueRow[]>;
  close(): Promise<void>;
}

/** `name` or `schema.name`, each an SQL identifier; quoted when used. */
export const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function quotedTable(table: string): string {
  return table.split('.').map((part) => `"${part}"`).join('.');
}

function selectSql(table: string, placeholder: string | undefined): string {
  const columns = QUEUE_COLUMNS.map((c) => `"${c}"`).join(', ');
  return `SELECT ${columns} FROM ${quotedTable(table)}${placeholder ? ` WHERE "name" = ${placeholder}` : ''} ORDER BY "name"`;
}

function rowOf(raw: Record<string, unknown>): QueueRow {
  const row: Record<string, string> = {};
  for (const column of QUEUE_COLUMNS) {
    const v = raw[column];
    if (v !== null && v !== undefined) row[column] = String(v);
  }
  return row as unknown as QueueRow;
}

export function sqliteQueues(path: string, table: string): QueueSource {
  let db: Database.Database | undefined;
  const open = () => {
    if (!db) {
      try {
        db = new Database(path, { readonly: true, fileMustExist: true });
      } catch (e) {
        throw new QueueSourceError(`cannot open the SQLite database ${path}: ${(e as Error).message}`);
      }
    }
    return db;
  };
  return {
    async queues(name) {
      const database = open();
      try {
        const statement = database.prepare(selectSql(table, name === undefined ? undefined : '?'));
        const rows = (name === undefined ? statement.all() : statement.all(name)) as Record<string, unknown>[];
        return rows.map(rowOf);
      } catch (e) {
        const message = (e as Error).message;
        if (/no such table/.test(message)) throw new QueueSourceError(`the queues table ${table} does not exist in ${path}`);
        if (/no such column/.test(message)) throw new QueueSourceError(`the queues table ${table} lacks a column (${message}); see the README for its CREATE TABLE`);
        throw new QueueSourceError(`reading ${table} failed: ${message}`);
      }
    },
    async close() {
      db?.close();
      db = undefined;
    },
  };
}

export function postgresQueues(url: string, table: string, onError: (e: Error) => void): QueueSource {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, application_name: 'switchboard-xml-curl' });
  // An idle connection dropped by a server restart is reported here; without a listener it would crash the process.
  pool.on('error', onError);
  return {
    async queues(name) {
      try {
        const result = name === undefined ? await pool.query(selectSql(table, undefined)) : await pool.query(selectSql(table, '$1'), [name]);
        return result.rows.map(rowOf);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === '42P01') throw new QueueSourceError(`the queues table ${table} does not exist`);
        if (code === '42703') throw new QueueSourceError(`the queues table ${table} lacks a column (${(e as Error).message}); see the README for its CREATE TABLE`);
        throw new QueueSourceError(`reading ${table} from PostgreSQL failed: ${(e as Error).message}`);
      }
    },
    close: () => pool.end(),
  };
}
