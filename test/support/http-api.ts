// A Switchboard started from a YAML file (as `switchboard start -c FILE` does), so that the
// management API's configuration reload has a file to read again, and a fetch-based client of
// the API.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { startServer, type Server } from '../../src/core/server.js';
import { deriveCredentials } from '../../src/auth/credentials.js';
import { freePorts } from './server.js';

export interface FileServer {
  server: Server;
  file: string;
  dir: string;
  port: number;
  httpPort: number;
  /** The options written to the file; `rewrite` replaces them. */
  options: Record<string, unknown>;
  rewrite(options: Record<string, unknown> | string): void;
  addUser(jid: string, password?: string): Promise<void>;
  stop(): Promise<void>;
}

/** Writes `options` (plus loopback listeners on free ports and a temporary data directory) to a file and starts from it. */
export async function startFromFile(options: Record<string, unknown>): Promise<FileServer> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-api-'));
  const [port, tlsPort, httpPort, boshPort, wsPort, wssPort] = await freePorts(6);
  const base = {
    'data-dir': join(dir, 'data'),
    log: { level: 'silent' },
    c2s: { host: '127.0.0.1', port, 'tls-port': tlsPort },
    http: { host: '127.0.0.1', port: httpPort },
    bosh: { port: boshPort },
    websocket: { port: wsPort, 'tls-port': wssPort },
  };
  const file = join(dir, 'switchboard.yaml');
  const write = (o: Record<string, unknown> | string) => writeFileSync(file, typeof o === 'string' ? o : stringify({ ...base, ...o }));
  write(options);
  const { config } = await loadConfig({ file });
  const server = await startServer(config, { configFile: file, log: pino({ level: config.log.level }) });
  const fs: FileServer = {
    server, file, dir, port: port!, httpPort: httpPort!, options,
    rewrite(o) { if (typeof o !== 'string') fs.options = o; write(o); },
    async addUser(jid, password = 'secret') {
      const [local, domain] = jid.split('@') as [string, string];
      await server.storage.users.create(domain, local, deriveCredentials(password));
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fs;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined for an empty body. */
  body: any;
}

/** Calls the API: `api(port, token)('POST', '/users', {...})`. A string body is sent as is, with `contentType`. */
export function apiClient(httpPort: number, token: string | undefined) {
  return async (method: string, path: string, body?: unknown, options: { contentType?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...options.headers };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1${path}`, { method, headers, body: payload });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}
