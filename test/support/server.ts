// Starts a real Switchboard on free loopback ports with its data in a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { configSchema } from '../../src/config/load.js';
import { startServer, type Config, type Server } from '../../src/core/server.js';
import { deriveCredentials } from '../../src/auth/credentials.js';

/** Distinct free loopback ports: all are held open together, so no two can be the same. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<import('node:net').Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => { const a = s.address(); return typeof a === 'object' && a ? a.port : 0; });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/**
 * The listeners of a YAML config for a server run in a child process: C2S (plain and TLS) and
 * HTTP on free loopback ports, and no BOSH or WebSocket listeners of their own.
 */
export async function loopbackListeners(): Promise<{ ports: { c2s: number; tls: number; http: number }; listeners: Record<string, unknown> }> {
  const [c2s, tls, http] = (await freePorts(3)) as [number, number, number];
  return {
    ports: { c2s, tls, http },
    listeners: {
      c2s: { host: '127.0.0.1', port: c2s, 'tls-port': tls },
      http: { host: '127.0.0.1', port: http },
      bosh: { port: 0 },
      websocket: { port: 0, 'tls-port': 0 },
    },
  };
}

export interface TestServer {
  server: Server;
  port: number;
  tlsPort: number;
  /** HTTP listeners (all serve BOSH at /http-bind/, WebSocket at /xmpp-websocket, the panel at /panel/). */
  httpPort: number;
  boshPort: number;
  wsPort: number;
  wssPort: number;
  dataDir: string;
  config: Config;
  addUser(jid: string, password?: string): Promise<void>;
  /** Stops the server; keeps the data directory unless `cleanup` is true. */
  stop(cleanup?: boolean): Promise<void>;
  /** Stops and starts again on the same data directory and ports. */
  restart(): Promise<TestServer>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

/** Builds a config from overrides (merged one level deep into sections). */
export function buildConfig(overrides: Record<string, unknown> = {}, dataDir?: string): Config {
  const base: Record<string, unknown> = { 'data-dir': dataDir ?? mkdtempSync(join(tmpdir(), 'switchboard-test-')), 'log': { level: process.env.SWITCHBOARD_TEST_LOG ?? 'silent' } };
  for (const [k, v] of Object.entries(overrides)) {
    base[k] = v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object' ? { ...(base[k] as object), ...v } : v;
  }
  // The same schema and cross-option checks as a configuration file goes through.
  return configSchema().parse(base) as Config;
}

export async function startTestServer(overrides: DeepPartial<Record<string, unknown>> & Record<string, unknown> = {}, dataDir?: string,
  ports?: { port: number; tlsPort: number; httpPort?: number; boshPort?: number; wsPort?: number; wssPort?: number }): Promise<TestServer> {
  const fresh = await freePorts(6);
  const port = ports?.port ?? fresh[0]!;
  const tlsPort = ports?.tlsPort ?? fresh[1]!;
  const httpPort = ports?.httpPort ?? fresh[2]!;
  const boshPort = ports?.boshPort ?? fresh[3]!;
  const wsPort = ports?.wsPort ?? fresh[4]!;
  const wssPort = ports?.wssPort ?? fresh[5]!;
  const c2s = { host: '127.0.0.1', port, 'tls-port': tlsPort, ...((overrides.c2s as object) ?? {}) };
  const http = { host: '127.0.0.1', port: httpPort, ...((overrides.http as object) ?? {}) };
  const bosh = { port: boshPort, ...((overrides.bosh as object) ?? {}) };
  const websocket = { port: wsPort, 'tls-port': wssPort, ...((overrides.websocket as object) ?? {}) };
  const config = buildConfig({ ...overrides, c2s, http, bosh, websocket }, dataDir);
  const log = pino({ level: config.log.level });
  const server = await startServer(config, { log });
  const t: TestServer = {
    server, port, tlsPort, httpPort, boshPort, wsPort, wssPort, dataDir: config['data-dir'], config,
    async addUser(jid, password = 'secret') {
      const [local, domain] = jid.split('@') as [string, string];
      await server.storage.users.create(domain, local, deriveCredentials(password));
    },
    async stop(cleanup = false) {
      await server.stop();
      if (cleanup) rmSync(config['data-dir'], { recursive: true, force: true });
    },
    async restart() {
      await server.stop();
      return startTestServer(overrides, config['data-dir'], { port, tlsPort, httpPort, boshPort, wsPort, wssPort });
    },
  };
  return t;
}
