// One HTTP service for everything Switchboard serves over HTTP: BOSH (/http-bind/), XMPP over
// WebSocket (upgrades), the operator panel (/panel/) and module APIs. Routes and upgrade
// handlers are registered by prefix; the same routing table is served on every HTTP listener
// (the main HTTP port, the BOSH port, the WebSocket ports), so each is reachable on all.
//
// A module registers its routes in setup() through `ctx.http.route(...)`, saying what each
// serves: the operations of an API (each one in docs/openapi.yaml, which
// test/http-api-openapi.test.ts checks against `servedRoutes()`), or where a route that is no
// scripted API (a transport, a web page) is specified instead:
//
//   ctx.http.route('/api/devices', async (req, res, url) => sendJson(res, 200, { ... }),
//     { operations: [{ method: 'GET', path: '/api/devices' }] });
//
// Handlers get the request, the response and the parsed URL; a handler that throws or rejects
// answers 500 (if nothing was sent yet). CORS preflights and headers are the handler's choice
// (`cors()` applies the configured origins).
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Listener } from '../transports/tcp.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

/** An operation of an HTTP API, as docs/openapi.yaml names it: `{name}` in a path is a parameter. */
export interface HttpOperation {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
}

/** What a route serves: API operations, or (for a transport or web page) where it is specified instead. */
export type RouteDescription =
  | { operations: readonly HttpOperation[] | (() => readonly HttpOperation[]) }
  | { documentedIn: string };

/** A registered route as `servedRoutes()` lists it. */
export type ServedRoute = { prefix: string } & ({ operations: readonly HttpOperation[] } | { documentedIn: string });

/** What modules see of the HTTP service. */
export interface HttpRoutes {
  /**
   * Serves every path that starts with `prefix` (longest prefix wins). A prefix ending in `/`
   * also serves the path without it (`/panel/` serves `/panel`). `description` says what it serves
   * (a function for operations that change at runtime, such as the management API's).
   */
  route(prefix: string, handler: HttpHandler, description: RouteDescription): void;
  /** Accepts WebSocket (or other) upgrades on exactly this path. */
  upgrade(path: string, handler: UpgradeHandler): void;
  /** Applies the configured CORS policy to a response; answers a preflight and returns true for OPTIONS. */
  cors(req: IncomingMessage, res: ServerResponse, methods?: string): boolean;
}

export interface HttpListenOptions {
  /** TLS: the server's default context and SNI. */
  tls?: { secureContext: SecureContext; SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void };
  /** Upgrades on paths with no registered handler go here (dedicated WebSocket ports). */
  defaultUpgrade?: UpgradeHandler;
}

export class HttpService implements HttpRoutes {
  private readonly routes: { prefix: string; handler: HttpHandler; description: RouteDescription }[] = [];
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private readonly closers: (() => void)[] = [];

  constructor(private readonly log: Logger, private readonly corsOrigins: readonly string[] = ['*']) {}

  route(prefix: string, handler: HttpHandler, description: RouteDescription): void {
    if (!prefix.startsWith('/')) throw new Error(`HTTP route "${prefix}" must start with /`);
    if (this.routes.some((r) => r.prefix === prefix)) throw new Error(`HTTP route ${prefix} is already registered`);
    this.routes.push({ prefix, handler, description });
    this.routes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The routing table as it is now: each prefix with its operations or where it is specified (for the OpenAPI check). */
  servedRoutes(): ServedRoute[] {
    return this.routes.map(({ prefix, description: d }) => ('operations' in d
      ? { prefix, operations: [...(typeof d.operations === 'function' ? d.operations() : d.operations)] }
      : { prefix, documentedIn: d.documentedIn }));
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.upgrades.has(path)) throw new Error(`HTTP upgrade path ${path} is already registered`);
    this.upgrades.set(path, handler);
  }

  /** Runs when the listeners close (e.g. to end long-polling requests first). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  cors(req: IncomingMessage, res: ServerResponse, methods = 'GET, POST, OPTIONS'): boolean {
    const origin = req.headers.origin;
    const allowed = this.corsOrigins;
    if (allowed.includes('*')) res.setHeader('Access-Control-Allow-Origin', '*');
    else if (origin && allowed.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    if (req.method !== 'OPTIONS') return false;
    res.writeHead(204, {
      'Access-Control-Allow-Methods': methods,
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Content-Type',
      'Access-Control-Max-Age': '86400',
    });
    res.end();
    return true;
  }

  private find(path: string): HttpHandler | undefined {
    for (const r of this.routes) {
      if (path.startsWith(r.prefix) || (r.prefix.endsWith('/') && path === r.prefix.slice(0, -1))) return r.handler;
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const handler = this.find(url.pathname);
    if (!handler) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return;
    }
    const fail = (e: unknown) => {
      this.log.error({ err: e, path: url.pathname }, 'HTTP handler failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Internal server error\n');
      else res.destroy();
    };
    try {
      const r = handler(req, res, url);
      if (r) r.catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fallback?: UpgradeHandler): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      socket.destroy();
      return;
    }
    const handler = this.upgrades.get(url.pathname) ?? fallback;
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    handler(req, socket, head, url);
  }

  /** Starts one listener serving the routing table. */
  listen(name: string, host: string, port: number, options: HttpListenOptions = {}): Promise<Listener> {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const http: HttpServer = options.tls
      ? createHttpsServer({ secureContext: options.tls.secureContext, SNICallback: options.tls.SNICallback }, onRequest)
      : createHttpServer(onRequest);
    // Long-polling (BOSH) holds requests up to its `wait`: no request timeout of Node's own.
    http.requestTimeout = 0;
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head, options.defaultUpgrade));
    http.on('clientError', (_e, socket: Duplex) => {
      if ((socket as Socket).writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const sockets = new Set<Duplex>();
    const track = (s: Duplex) => { sockets.add(s); s.once('close', () => sockets.delete(s)); };
    http.on('connection', track);
    http.on('secureConnection', track);
    return new Promise((resolve, reject) => {
      http.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`${name}: cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
      http.listen(port, host, () => {
        const a = http.address();
        const actualPort = typeof a === 'object' && a ? a.port : port;
        let closed = false;
        resolve({
          address: () => ({ name, host, port: actualPort }),
          stopAccepting: () => { http.close(); },
          close: () => new Promise<void>((done) => {
            if (!closed) {
              closed = true;
              for (const fn of this.closers.splice(0)) fn();
            }
            http.close(() => done());
            http.closeIdleConnections();
            // Whatever is left after a grace period (a peer that never reads) is cut.
            setTimeout(() => { for (const s of sockets) s.destroy(); http.closeAllConnections(); }, 500).unref();
          }),
        });
      });
    });
  }
}

/** Reads a request body up to `limit` bytes; resolves undefined when it is larger (the rest is not read). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) { over = true; resolve(undefined); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}
