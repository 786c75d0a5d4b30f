// PubSub, read-only: the services of this server (and any account's PEP service by its JID), the
// node tree of one with collections (XEP-0248) and leaves, and one node's configuration,
// affiliations, subscriptions and newest items, as stored.
import type { PubSubNodeRecord, PubSubServiceState } from '../../../storage/types.js';
import { tryParseJid } from '../../../jid.js';
import type { AdminRequest, AdminWebApp } from '../app.js';
import { html, table, type Html } from '../html.js';

const SECTION = '/admin/pubsub';
const ITEMS_SHOWN = 20;
const PAYLOAD_SHOWN = 2000;

/** Collections a stored node names (its pubsub#collection), as the PubSub module stores its config. */
const parentsOf = (n: PubSubNodeRecord): string[] => {
  const c = n.config.collection;
  return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
};

const typeOf = (n: PubSubNodeRecord) => (n.config.nodeType === 'collection' ? 'collection' : 'leaf');

export function pubsubPages(app: AdminWebApp): void {
  const { ctx } = app;

  const link = (service: string, node?: string) =>
    `${SECTION}?service=${encodeURIComponent(service)}${node === undefined ? '' : `&node=${encodeURIComponent(node)}`}`;

  /** The hierarchy, each node under every collection it names; nodes naming no existing collection at the top. */
  const tree = (service: string, state: PubSubServiceState, current?: string): Html => {
    const names = new Set(state.nodes.map((n) => n.node));
    const children = new Map<string, PubSubNodeRecord[]>();
    const roots: PubSubNodeRecord[] = [];
    for (const n of state.nodes) {
      const parents = parentsOf(n).filter((p) => names.has(p));
      if (parents.length === 0) roots.push(n);
      for (const p of parents) children.set(p, [...(children.get(p) ?? []), n]);
    }
    const branch = (nodes: PubSubNodeRecord[], seen: Set<string>): Html => html`<ul>${nodes.sort((a, b) => a.node.localeCompare(b.node)).map((n) => {
      const below = seen.has(n.node) ? [] : children.get(n.node) ?? [];
      const title = typeof n.config.title === 'string' && n.config.title ? ` — ${n.config.title}` : '';
      return html`<li class="${typeOf(n)}" data-node="${n.node}"><a href="${link(service, n.node)}"${n.node === current ? html` aria-current="true"` : ''}>${n.node}</a> <small>${typeOf(n)}${title}</small>${below.length ? branch(below, new Set([...seen, n.node])) : ''}</li>`;
    })}</ul>`;
    return roots.length ? branch(roots, new Set()) : html`<p class="empty">No nodes.</p>`;
  };

  const nodeDetail = async (service: string, state: PubSubServiceState, name: string): Promise<Html> => {
    const node = state.nodes.find((n) => n.node === name);
    if (!node) return html`<p class="flash error">There is no node ${name} on ${service}.</p>`;
    const config = Object.entries(node.config).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
    const affiliations = state.affiliations.filter((a) => a.node === name).map((a) => [a.jid, a.affiliation]);
    const subscriptions = state.subscriptions.filter((s) => s.node === name).map((s) => [s.jid, s.state, s.subid]);
    const items = typeOf(node) === 'leaf' ? await ctx.storage.pubsub.getItems(service, name, { max: ITEMS_SHOWN }) : [];
    const payload = (p: string) => (p.length > PAYLOAD_SHOWN ? `${p.slice(0, PAYLOAD_SHOWN)}…` : p);
    return html`
      <h2>${name}</h2>
      <p>${typeOf(node)}, created ${node.createdAt.toISOString()}${node.creator ? ` by ${node.creator}` : ''}.</p>
      <h3>Configuration</h3>${table(['Option', 'Value'], config)}
      <h3>Affiliations</h3>${table(['JID', 'Affiliation'], affiliations)}
      <h3>Subscriptions</h3>${table(['JID', 'State', 'Subscription id'], subscriptions)}
      ${typeOf(node) === 'leaf' ? html`<h3>Newest items</h3>${table(['Id', 'Publisher', 'Published', 'Payload'],
        items.map((i) => [i.id, i.publisher, i.publishedAt.toISOString(), html`<pre>${payload(i.payload)}</pre>`]), 'No items.')}` : ''}`;
  };

  app.on('GET', SECTION, async (rq: AdminRequest) => {
    const services = ctx.router.serviceDomains().sort();
    const asked = (rq.url.searchParams.get('service') ?? '').trim();
    const jid = asked ? tryParseJid(asked) : undefined;
    const service = asked ? (jid && !jid.resource ? jid.bare : undefined) : services[0];
    const nodeName = rq.url.searchParams.get('node') ?? undefined;
    let body: Html;
    let status = 200;
    if (service === undefined) {
      status = asked ? 400 : 200;
      body = html`<p class="${asked ? 'flash error' : 'empty'}">${asked ? `"${asked}" is not a service address or an account's JID.` : 'No PubSub service runs here.'}</p>`;
    } else {
      const state = await ctx.storage.pubsub.loadService(service);
      body = html`
        <div class="columns">
          <section class="tree"><h2>${service}</h2><p class="count">${state.nodes.length} node(s).</p>${tree(service, state, nodeName)}</section>
          <section class="detail">${nodeName === undefined ? html`<p class="hint">Choose a node to see its configuration, subscribers and items.</p>` : await nodeDetail(service, state, nodeName)}</section>
        </div>`;
    }
    app.render(rq, status, 'PubSub nodes', SECTION, html`
      <form method="get" action="${SECTION}" class="filter">
        <label for="service">Service</label>
        <input id="service" name="service" list="services" value="${service ?? asked}" placeholder="pubsub.example.com or user@example.com (PEP)">
        <datalist id="services">${services.map((s) => html`<option value="${s}">`)}</datalist>
        <button type="submit">Show</button>
        ${services.map((s) => html` <a href="${link(s)}">${s}</a>`)}
      </form>
      ${body}`);
  });
}
