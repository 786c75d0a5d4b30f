// Helpers for the SIP presence bridge tests: a server whose log lines the test can read, the
// proxy's table in SQLite or PostgreSQL, and a watcher subscribed to the phones' owner.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { xml } from '@xmpp/client';
import { buildConfig, freePorts } from './server.js';
import { startServer, type Server } from '../../src/core/server.js';
import { deriveCredentials } from '../../src/auth/credentials.js';
import { startClient, type LiveClient } from './xmpp-client.js';
import type { RosterItem, Subscription } from '../../src/storage/types.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface LoggedServer {
  server: Server;
  port: number;
  httpPort: number;
  dataDir: string;
  logs: LogLine[];
  /** Waits for a log line that matches (removes nothing). */
  waitForLog(match: (l: LogLine) => boolean, what: string, ms?: number): Promise<LogLine>;
  addUser(jid: string, password?: string): Promise<void>;
  subscribe(watcher: string, owner: string): Promise<void>;
  stop(): Promise<void>;
  /** Stops and starts again with the same data directory, ports and options (running `between` while stopped). */
  restart(between?: () => Promise<void>): Promise<LoggedServer>;
}

export async function startLoggedServer(overrides: Record<string, unknown>, dataDir = mkdtempSync(join(tmpdir(), 'switchboard-sip-')),
  ports?: number[]): Promise<LoggedServer> {
  const [port, tlsPort, httpPort, boshPort, wsPort, wssPort] = ports ?? await freePorts(6);
  const config = buildConfig({
    ...overrides,
    log: { level: 'debug' },
    c2s: { host: '127.0.0.1', port, 'tls-port': tlsPort },
    http: { host: '127.0.0.1', port: httpPort },
    bosh: { port: boshPort },
    websocket: { port: wsPort, 'tls-port': wssPort },
  }, dataDir);
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const server = await startServer(config, { log: pino({ level: 'debug' }, sink) });
  const item = (jid: string, subscription: Subscription): RosterItem => ({ jid, groups: [], subscription, ask: false, pendingIn: false, approved: false, visible: true });
  const self: LoggedServer = {
    server, port: port!, httpPort: httpPort!, dataDir, logs,
    async waitForLog(match, what, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = logs.find(match);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`timed out waiting for log: ${what}; got\n${logs.map((l) => l.msg).join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async addUser(jid, password = 'secret') {
      const [local, domain] = jid.split('@') as [string, string];
      await server.storage.users.create(domain, local, deriveCredentials(password));
    },
    async subscribe(watcher, owner) {
      await server.storage.roster.setItem(owner, item(watcher, 'from'));
      await server.storage.roster.setItem(watcher, item(owner, 'to'));
    },
    stop: () => server.stop(),
    async restart(between) {
      await server.stop();
      await between?.();
      return startLoggedServer(overrides, dataDir, [port!, tlsPort!, httpPort!, boshPort!, wsPort!, wssPort!]);
    },
  };
  return self;
}

/** A logged-in client that sent its initial presence, so it gets its contacts' presence. */
export async function startWatcher(port: number, user: string): Promise<LiveClient> {
  const c = await startClient(port, user);
  await c.xmpp.send(xml('presence'));
  return c;
}

export function writeMapping(dir: string, lines: string[]): string {
  const path = join(dir, 'phones.csv');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

export const TABLE_SQLITE = `CREATE TABLE sip_presence (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uri TEXT NOT NULL,
  state TEXT NOT NULL,
  expires INTEGER,
  created TIMESTAMP DEFAULT CURRENT_TIMESTAMP
)`;

export const TABLE_POSTGRES = `CREATE TABLE sip_presence (
  id BIGSERIAL PRIMARY KEY,
  uri TEXT NOT NULL,
  state TEXT NOT NULL,
  expires INTEGER,
  created TIMESTAMPTZ DEFAULT now()
)`;

/** The proxy's side of the table: what OpenSIPS/Kamailio would insert. */
export interface ProxyTable {
  insert(uri: string, state: string, expires?: number): Promise<void>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export function sqliteTable(path: string): ProxyTable {
  const db = new Database(path);
  db.exec(TABLE_SQLITE);
  return {
    async insert(uri, state, expires) { db.prepare('INSERT INTO sip_presence (uri, state, expires) VALUES (?, ?, ?)').run(uri, state, expires ?? null); },
    async exec(sql) { db.exec(sql); },
    async close() { db.close(); },
  };
}

export async function postgresTable(url: string): Promise<ProxyTable> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(TABLE_POSTGRES);
  return {
    async insert(uri, state, expires) { await client.query('INSERT INTO sip_presence (uri, state, expires) VALUES ($1, $2, $3)', [uri, state, expires ?? null]); },
    async exec(sql) { await client.query(sql); },
    async close() { await client.end(); },
  };
}
