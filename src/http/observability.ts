// GET /metrics (Prometheus text format) and GET /health (for load balancers) on every HTTP
// listener.
//
// /metrics tells who is connected how much and how the process is doing, so it is answered
// only to the addresses of `http.metrics-allow` (loopback by default; a Prometheus server
// elsewhere is added by its address or network). /health says only whether this node takes
// connections, and is open to all: 200 while serving, 503 from the start of a graceful stop so
// that a balancer drains the node.
import { BlockList, isIP } from 'node:net';
import type { Server } from '../core/server.js';
import { VERSION } from '../modules/version.js';
import { sendJson, type HttpRoutes } from './server.js';

/** The allow-list as a BlockList (used here to allow): plain addresses and CIDR networks. */
export function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

/** Whether a peer address is on the list; an IPv4-mapped IPv6 address is checked as IPv4 too. */
export function listed(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  if (isIP(address) === 4) return list.check(address, 'ipv4');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  return list.check(address, 'ipv6') || (mapped !== undefined && list.check(mapped, 'ipv4'));
}

export function registerObservability(server: Server, http: HttpRoutes): void {
  const allowed = addressList(server.config.http['metrics-allow']);

  http.route('/metrics', async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (!listed(allowed, req.socket.remoteAddress)) {
      sendJson(res, 403, { error: 'forbidden', message: `${req.socket.remoteAddress ?? 'this address'} may not read the metrics (see http.metrics-allow)` });
      return;
    }
    const text = await server.metrics.text();
    res.writeHead(200, { 'Content-Type': server.metrics.contentType, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  }, { operations: [{ method: 'GET', path: '/metrics' }, { method: 'HEAD', path: '/metrics' }] });

  http.route('/health', (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const serving = server.state === 'serving';
    sendJson(res, serving ? 200 : 503, {
      status: serving ? 'ok' : server.state,
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - server.startedAt.getTime()) / 1000),
      sessions: server.sessions.localCount(),
      connections: server.stats.openStreams,
    });
  }, { operations: [{ method: 'GET', path: '/health' }, { method: 'HEAD', path: '/health' }] });
}
