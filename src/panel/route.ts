// Serves the operator panel at /panel/: the bundle written by `npm run build` (dist/panel-app),
// or, when the server runs from its TypeScript sources, one built in memory on first request.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import type { Server } from '../core/server.js';
import type { HttpRoutes } from '../http/server.js';
import { PANEL_DIST, buildPanel, type PanelFiles } from './build.js';

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };

function prebuilt(): PanelFiles | undefined {
  if (!existsSync(PANEL_DIST + 'index.html')) return undefined;
  const files: PanelFiles = new Map();
  for (const name of readdirSync(PANEL_DIST)) {
    const ext = name.slice(name.lastIndexOf('.'));
    if (TYPES[ext]) files.set(name, { type: TYPES[ext], body: readFileSync(PANEL_DIST + name) });
  }
  return files;
}

export function registerPanel(server: Server, http: HttpRoutes): void {
  const fromSources = import.meta.url.endsWith('.ts');
  let files: Promise<PanelFiles> | undefined;
  const load = () => (files ??= (async () => (fromSources ? undefined : prebuilt()) ?? buildPanel())());
  http.route('/panel/', async (req, res, url) => {
    if (url.pathname === '/panel') {
      res.writeHead(301, { Location: '/panel/' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let bundle: PanelFiles;
    try {
      bundle = await load();
    } catch (e) {
      files = undefined;
      server.log.error({ err: e }, 'the operator panel is not built (npm run build)');
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('The operator panel is not built: run npm run build.\n');
      return;
    }
    const name = url.pathname.slice('/panel/'.length) || 'index.html';
    const file = bundle.get(name);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': file.body.length,
      'Cache-Control': name === 'index.html' ? 'no-cache' : 'max-age=300',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
      'Referrer-Policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }, { documentedIn: 'README (the operator panel: a web page that speaks XMPP over WebSocket)' });
}
