// BOSH under `workers`: a BOSH session lives in the worker that created it, but each of its HTTP
// requests may reach any worker (node:cluster hands connections out in turn, and a client
// opens several). A worker's session ids start with its number; a request for another
// worker's session is passed to that worker over a private Unix socket (one per worker, in a
// directory of the primary's pid), and the answer, held as long as the owner holds it, goes
// back to the client unchanged. TCP and WebSocket streams are bound to one connection, so
// they need none of this.
import { createServer, request, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { workerIndex, workerSocketPath } from './workers.js';

/** The private socket on which a worker serves the BOSH requests of its sessions to the other workers. */
function boshSocketPath(worker: number | string): string {
  return workerSocketPath(`bosh-${worker}.sock`);
}

/** Marks a forwarded request whose client connection was TLS (trusted only on the private socket). */
const SECURE_HEADER = 'x-switchboard-secure';

export class BoshForwarder {
  private readonly forwardedSockets = new WeakSet<Socket>();

  private constructor(
    private readonly index: number,
    private readonly server: HttpServer,
    private readonly log: Logger,
  ) {}

  /**
   * In a worker of `workers`: listens on this worker's private socket, serving `handler` (the
   * BOSH handler) to the other workers. Undefined in a single server.
   */
  static start(handler: (req: IncomingMessage, res: ServerResponse) => void, log: Logger): BoshForwarder | undefined {
    const index = workerIndex();
    if (index === undefined) return undefined;
    const path = boshSocketPath(index);
    rmSync(path, { force: true }); // left by this worker's previous run, if it crashed
    const server = createServer(handler);
    const forwarder = new BoshForwarder(index, server, log);
    server.on('connection', (socket) => forwarder.forwardedSockets.add(socket));
    // exclusive: this worker's own socket, not one node:cluster would share through the primary.
    // Bound long before another worker can hold a session id of ours to forward.
    server.on('error', (e) => log.error({ err: e, path }, 'cannot listen for BOSH requests from the other workers'));
    server.listen({ path, exclusive: true });
    return forwarder;
  }

  /** Prefix of this worker's session ids. */
  get sidPrefix(): string {
    return `${this.index}w`;
  }

  /** Whether the request came from another worker with a TLS client behind it. */
  forwardedSecure(req: IncomingMessage): boolean {
    return this.forwardedSockets.has(req.socket) && req.headers[SECURE_HEADER] === '1';
  }

  /**
   * Passes a request for another worker's session to that worker; false when the session id
   * names no other worker (the caller answers item-not-found), or when this request was already
   * forwarded once (never a loop).
   */
  forward(sid: string, req: IncomingMessage, res: ServerResponse, body: Buffer, secure: boolean, gone: () => void): boolean {
    const owner = /^(\d+)w/.exec(sid)?.[1];
    if (owner === undefined || Number(owner) === this.index || this.forwardedSockets.has(req.socket)) return false;
    const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'text/xml; charset=utf-8', 'content-length': String(body.length) };
    if (req.headers.origin) headers.origin = req.headers.origin;
    if (secure) headers[SECURE_HEADER] = '1';
    const forwarded = request({ socketPath: boshSocketPath(owner), method: 'POST', path: req.url ?? '/http-bind/', headers }, (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') out[name] = value;
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    forwarded.on('error', (e) => {
      // The owner is gone (it crashed, its sessions with it): the session no longer exists.
      this.log.debug({ err: e, sid, worker: owner }, 'BOSH request for a worker that does not answer');
      if (!res.headersSent) gone();
      else res.destroy();
    });
    // The client gave up on a held request: so does the owner.
    res.on('close', () => { if (!res.writableFinished) forwarded.destroy(); });
    forwarded.end(body);
    return true;
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}
