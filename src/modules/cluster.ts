// Cluster status and cluster-wide look-ups for administrators (seed 001 section 11.12.3, seed
// 004): the Cluster Connection Manager at cl-comp@<host> lists the nodes in its disco#items
// with connected/disconnected, and offers ad-hoc commands to show the status and to locate a
// user (which node, which resources, from which address, since when) through a cluster-wide
// request. On a single server it shows one node and locates local users the same way.
import { defineModule } from '../core/module-definition.js';
import { StanzaError } from '../core/errors.js';
import { xml } from '../xml/element.js';
import { commandRegistry, oneForm, type CommandReply } from './adhoc/commands.js';
import { bareJidOf, fields, type DataForm } from './adhoc/forms.js';
import type { NodeInfo } from '../cluster/node.js';
import { STATUS_REQUEST } from '../cluster/status.js';

export const CLUSTER_MANAGER = { name: 'cl-comp', label: 'Cluster Connection Manager' };
const NS_CLUSTER = 'urn:switchboard:cluster';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
/** The cluster-wide request answering where a user is connected. */
export const LOCATE_REQUEST = 'cluster/locate-user';

export interface UserLocation {
  resource: string;
  address: string;
  /** ISO time the resource was bound, if known. */
  since?: string;
  available: boolean;
}

function describeNode(n: NodeInfo): string {
  const since = new Date(n.since).toISOString();
  return n.state === 'connected'
    ? `${n.name}: connected since ${since}, ${n.sessions} session(s)`
    : `${n.name}: disconnected since ${since} (${n.reason === 'left' ? 'left' : 'no heartbeat'})`;
}

function completed(text: string, form?: DataForm): CommandReply {
  return { status: 'completed', notes: [{ type: 'info', text }], form };
}

export default defineModule({
  name: 'cluster',
  description: 'Cluster status and user location for administrators (cl-comp@<host>), built on cluster-wide requests',
  setup(ctx) {
    const registry = commandRegistry(ctx);
    registry.defineComponent(CLUSTER_MANAGER);
    const adminOnly = (bare: string) => ctx.isAdmin(bare);

    // Each node answers for its own sessions; the asker gathers every node's answer.
    const offLocate = ctx.cluster.handle(LOCATE_REQUEST, (payload) => {
      const bare = typeof payload === 'object' && payload ? (payload as { jid?: unknown }).jid : undefined;
      if (typeof bare !== 'string') return undefined;
      const here: UserLocation[] = [];
      for (const s of ctx.sessions.resources(bare)) {
        if (s.node !== undefined) continue;
        const since = ctx.cluster.boundSince(s);
        here.push({ resource: s.jid.resource, address: s.remoteAddress, since: since ? new Date(since).toISOString() : undefined, available: s.presence !== undefined });
      }
      return here.length ? here : undefined;
    });

    // `switchboard cluster status` asks every node for its view.
    const offStatusRequest = ctx.cluster.handle(STATUS_REQUEST, () => ctx.cluster.nodes());

    const offStatus = registry.add({
      node: `${NS_CLUSTER}#status`, name: 'Cluster status', component: CLUSTER_MANAGER.name, allowed: adminOnly,
      run: () => {
        const nodes = ctx.cluster.nodes();
        const connected = nodes.filter((n) => n.state === 'connected').length;
        return completed(`${connected} of ${nodes.length} node(s) connected; this is ${ctx.cluster.nodeName}.`, {
          type: 'result', title: 'Cluster status',
          fields: [fields.textMulti('nodes', nodes.map(describeNode), { label: 'Nodes' })],
        });
      },
    });

    const offLocateCommand = registry.add({
      node: `${NS_CLUSTER}#locate-user`, name: 'Locate a user', component: CLUSTER_MANAGER.name, allowed: adminOnly,
      run: oneForm(
        () => ({ type: 'form', title: 'Locate a user', instructions: ['Which nodes the user is connected to, with which resources, from where and since when.'],
          fields: [fields.jid('accountjid', undefined, { label: 'The Jabber ID of the user', required: true })] }),
        async (step) => {
          const value = step.values.text('accountjid');
          if (!value) throw new StanzaError('bad-request', 'accountjid is required');
          const bare = bareJidOf(value, 'The Jabber ID of the user');
          const replies = await ctx.cluster.request<UserLocation[]>(LOCATE_REQUEST, { jid: bare });
          const lines: string[] = [];
          for (const r of replies) {
            for (const l of r.value ?? []) lines.push(`${r.node}: ${bare}/${l.resource} from ${l.address}${l.since ? ` since ${l.since}` : ''}${l.available ? '' : ' (not available)'}`);
          }
          return completed(lines.length ? `${bare} is connected to ${new Set(replies.map((r) => r.node)).size} node(s).` : `${bare} is not connected.`, {
            type: 'result', title: `Where ${bare} is`, fields: [fields.textMulti('locations', lines, { label: 'Locations' })],
          });
        }),
    });

    // Seed 11.12.3: expanding the Cluster Connection Manager in a disco browser lists the nodes
    // and whether they are connected; the commands follow. Before the ad-hoc module's handler.
    const offItems = ctx.hooks.on('iq/bare', (r) => {
      if (r.to.local !== CLUSTER_MANAGER.name || r.stanza.attrs.type !== 'get') return false;
      const query = r.stanza.getChild('query', NS_DISCO_ITEMS);
      if (!query || query.attrs.node !== undefined || !ctx.isAdmin(r.from.bare)) return false;
      const items = ctx.cluster.nodes().map((n) => xml('item', { jid: r.to.bare, node: `node/${n.name}`, name: `${n.name} (${n.state})` }));
      for (const c of registry.list(CLUSTER_MANAGER.name)) items.push(xml('item', { jid: r.to.bare, node: c.node, name: c.name }));
      const reply = xml('iq', { type: 'result', id: r.stanza.attrs.id, from: r.to.full, to: r.from.full }, xml('query', { xmlns: NS_DISCO_ITEMS }, items));
      if (r.origin) r.origin.send(reply);
      else void ctx.router.route(reply);
      return true;
    }, 200);

    return () => { offLocate(); offStatusRequest(); offStatus(); offLocateCommand(); offItems(); };
  },
});
