// The HTTP listeners: the main HTTP port, the BOSH port and the two WebSocket ports, all
// serving the one routing table of server.http (BOSH, WebSocket upgrades, the panel, module
// routes). Dedicated WebSocket ports accept the upgrade on any path (wss://host:5291/).
import type { Server } from '../core/server.js';
import type { Listener } from '../transports/tcp.js';
import { registerBosh } from '../transports/bosh.js';
import { WEBSOCKET_PATH, webSocketEndpoint } from '../transports/websocket.js';
import { registerPanel } from '../panel/route.js';
import { registerObservability } from './observability.js';

export async function listenHttp(server: Server): Promise<Listener[]> {
  const http = server.http;
  const { host, port } = server.config.http;
  const boshPort = server.config.bosh.port;
  const { port: wsPort, 'tls-port': wssPort } = server.config.websocket;
  registerBosh(server, http);
  registerPanel(server, http);
  registerObservability(server, http);
  const ws = webSocketEndpoint(server);
  http.upgrade(WEBSOCKET_PATH, ws.upgrade);
  http.onClose(ws.close);
  const tls = {
    secureContext: server.certificates.defaultContext,
    SNICallback: (name: string, cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void) => cb(null, server.certificates.contextFor(name)),
  };
  const out: Listener[] = [];
  try {
    if (port !== 0) out.push(await http.listen('http', host, port));
    if (boshPort !== 0) out.push(await http.listen('bosh', host, boshPort));
    if (wsPort !== 0) out.push(await http.listen('websocket', host, wsPort, { defaultUpgrade: ws.upgrade }));
    if (wssPort !== 0) out.push(await http.listen('websocket-tls', host, wssPort, { tls, defaultUpgrade: ws.upgrade }));
  } catch (e) {
    await Promise.all(out.map((l) => l.close()));
    throw e;
  }
  return out;
}
