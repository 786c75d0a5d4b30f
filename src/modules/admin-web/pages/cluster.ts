// The cluster's nodes (seed 001 section 11.12.3): connected or disconnected, since when, how
// many sessions each holds, and which one serves the domain services. On a server outside
// cluster-mode the page shows that one node.
import type { AdminWebApp } from '../app.js';
import { html, table } from '../html.js';

const SECTION = '/admin/cluster';

export function clusterPages(app: AdminWebApp): void {
  const { ctx } = app;
  app.on('GET', SECTION, (rq) => {
    const nodes = ctx.cluster.nodes();
    const rows = nodes.map((n) => [
      n.name + (n.name === ctx.cluster.nodeName ? ' (this node)' : ''),
      n.state === 'connected' ? 'connected' : `disconnected (${n.reason === 'left' ? 'left' : 'no heartbeat'})`,
      n.state === 'connected' ? String(n.sessions) : '-',
      new Date(n.since).toISOString(),
    ]);
    const connected = nodes.filter((n) => n.state === 'connected').length;
    app.render(rq, 200, 'Cluster', SECTION, html`
      <p class="count">${ctx.cluster.enabled ? `${connected} of ${nodes.length} node(s) connected.` : 'This server is not in cluster-mode: it is a cluster of one.'}</p>
      ${table(['Node', 'State', 'Sessions', 'Since'], rows, 'No node.')}`);
  });
}
