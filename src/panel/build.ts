// Bundles the operator panel (src/panel/client) for the browser with esbuild: app.js (the page
// code with @xmpp/client's browser build inside), index.html and panel.css. `npm run build` and
// the install step run it into dist/panel-app; the panel route builds in memory instead when the
// server runs from its TypeScript sources (development, tests).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const clientDir = fileURLToPath(new URL('../../src/panel/client/', import.meta.url));

export type PanelFiles = Map<string, { type: string; body: Buffer }>;

export async function buildPanel(): Promise<PanelFiles> {
  // A development dependency: a server installed without it serves a panel built beforehand.
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [`${clientDir}app.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    minify: true,
    legalComments: 'none',
    write: false,
    outfile: 'app.js',
    logLevel: 'silent',
    plugins: [{
      // Node modules @xmpp/client reaches only for xmpp:// services (DNS SRV lookups, TCP):
      // the panel uses a ws(s):// URL, so they are empty in the browser.
      name: 'no-node-builtins',
      setup(b) {
        b.onResolve({ filter: /^(node:)?(dns|net|tls)$/ }, (args) => ({ path: args.path, namespace: 'empty' }));
        b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export default {}; export const promises = {};', loader: 'js' }));
      },
    }],
  });
  const files: PanelFiles = new Map();
  for (const f of result.outputFiles) files.set(f.path.slice(f.path.lastIndexOf('/') + 1), { type: 'text/javascript; charset=utf-8', body: Buffer.from(f.contents) });
  files.set('index.html', { type: 'text/html; charset=utf-8', body: readFileSync(`${clientDir}index.html`) });
  files.set('panel.css', { type: 'text/css; charset=utf-8', body: readFileSync(`${clientDir}panel.css`) });
  return files;
}

export const PANEL_DIST = fileURLToPath(new URL('../../dist/panel-app/', import.meta.url));

// `node dist/panel/build.js` (npm run build, postinstall) writes the bundle to dist/panel-app.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = await buildPanel();
  mkdirSync(PANEL_DIST, { recursive: true });
  for (const [name, f] of files) writeFileSync(PANEL_DIST + name, f.body);
  console.log(`panel: ${[...files.keys()].join(', ')} in ${PANEL_DIST}`);
}
