// The cluster-wide view of Asterisk device states and mailboxes, for admins: fed by the items
// published under the Asterisk event nodes (device_state, message_waiting and their leaves),
// rebuilt from the stored items at start, and served as JSON on the HTTP port:
//   GET /api/device-states   per device, the state each Asterisk (eid) reported and the aggregate
//   GET /api/mailboxes       per mailbox, the new/old counts
// Both need an administrator's credentials (HTTP Basic, user@domain and password).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModuleContext } from '../../core/modules.js';
import { sendJson } from '../../http/server.js';
import { tryParseJid } from '../../jid.js';
import { verifyPasswordAsync } from '../../auth/credentials.js';
import type { Element } from '../../xml/element.js';
import { aggregateDeviceState } from '../../telephony/device-state.js';
import { DEVICE_STATES, NS_ASTERISK, type DeviceState } from './asterisk.js';
import type { Item, PubSubNode } from './nodes.js';
import type { ItemObserver, PubSubService } from './service.js';
import { addDeviceStateRoutes } from './api.js';

export { aggregateDeviceState } from '../../telephony/device-state.js';

interface Report<T> {
  value: T;
  publisher: string;
  at: Date;
}

interface Device {
  /** The node the device's item is in, so a purge or delete of that node clears it. */
  node: string;
  /** By eid. */
  reports: Map<string, Report<DeviceState>>;
  state: DeviceState;
  changedAt: Date;
}

interface Mailbox {
  node: string;
  reports: Map<string, Report<{ new: number; old: number }>>;
  latest: { new: number; old: number };
  changedAt: Date;
}

/** What one Asterisk payload says, or undefined for anything else. */
function readPayload(payload: Element | undefined): { kind: 'state'; eid: string; state: DeviceState } | { kind: 'mailbox'; eid: string; counts: { new: number; old: number } } | undefined {
  if (!payload || payload.attrs.xmlns !== NS_ASTERISK || !payload.attrs.eid) return undefined;
  const eid = payload.attrs.eid;
  if (payload.name === 'state') {
    const state = payload.text().trim();
    return (DEVICE_STATES as readonly string[]).includes(state) ? { kind: 'state', eid, state: state as DeviceState } : undefined;
  }
  if (payload.name === 'mailbox') {
    const counts = { new: Number(payload.getChildText('NEWMSGS')), old: Number(payload.getChildText('OLDMSGS')) };
    return Number.isInteger(counts.new) && Number.isInteger(counts.old) ? { kind: 'mailbox', eid, counts } : undefined;
  }
  return undefined;
}

export class DeviceStateView implements ItemObserver {
  /** By service, then device (the item id). */
  private readonly devices = new Map<string, Map<string, Device>>();
  private readonly mailboxes = new Map<string, Map<string, Mailbox>>();

  published(service: PubSubService, node: PubSubNode, item: Item): void {
    if (!this.watches(service, node)) return;
    const payload = readPayload(item.payload[0]);
    if (payload?.kind === 'state') {
      const devices = mapFor(this.devices, service.jid);
      const device = devices.get(item.id) ?? { node: node.name, reports: new Map(), state: 'INVALID', changedAt: item.publishedAt };
      device.node = node.name;
      device.reports.set(payload.eid, { value: payload.state, publisher: item.publisher, at: item.publishedAt });
      const state = aggregateDeviceState([...device.reports.values()].map((r) => r.value));
      if (state !== device.state || !devices.has(item.id)) device.changedAt = item.publishedAt;
      device.state = state;
      devices.set(item.id, device);
    } else if (payload?.kind === 'mailbox') {
      const mailboxes = mapFor(this.mailboxes, service.jid);
      const mailbox = mailboxes.get(item.id) ?? { node: node.name, reports: new Map(), latest: payload.counts, changedAt: item.publishedAt };
      mailbox.node = node.name;
      mailbox.reports.set(payload.eid, { value: payload.counts, publisher: item.publisher, at: item.publishedAt });
      mailbox.latest = payload.counts;
      mailbox.changedAt = item.publishedAt;
      mailboxes.set(item.id, mailbox);
    }
  }

  /** A retracted item takes the device or mailbox with it: no report of it is left. */
  retracted(service: PubSubService, node: PubSubNode, id: string): void {
    if (this.devices.get(service.jid)?.get(id)?.node === node.name) this.devices.get(service.jid)!.delete(id);
    if (this.mailboxes.get(service.jid)?.get(id)?.node === node.name) this.mailboxes.get(service.jid)!.delete(id);
  }

  cleared(service: PubSubService, node: PubSubNode): void {
    for (const map of [this.devices.get(service.jid), this.mailboxes.get(service.jid)]) {
      for (const [id, entry] of map ?? []) if (entry.node === node.name) map!.delete(id);
    }
  }

  /** Reads the stored items of a service's Asterisk nodes, oldest first, as if published now. */
  async rebuild(service: PubSubService): Promise<void> {
    for (const node of service.tree.all()) {
      if (node.isCollection || !this.watches(service, node)) continue;
      const items = await service.storedItems(node);
      for (const item of items.reverse()) this.published(service, node, item);
    }
  }

  deviceStates() {
    return [...this.devices].flatMap(([service, devices]) => [...devices].map(([device, d]) => ({
      service, device, state: d.state, changedAt: d.changedAt.toISOString(),
      servers: [...d.reports].map(([eid, r]) => ({ eid, state: r.value, publisher: r.publisher, reportedAt: r.at.toISOString() })),
    }))).sort((a, b) => a.service.localeCompare(b.service) || a.device.localeCompare(b.device));
  }

  mailboxList() {
    return [...this.mailboxes].flatMap(([service, mailboxes]) => [...mailboxes].map(([mailbox, m]) => ({
      service, mailbox, new: m.latest.new, old: m.latest.old, changedAt: m.changedAt.toISOString(),
      servers: [...m.reports].map(([eid, r]) => ({ eid, new: r.value.new, old: r.value.old, publisher: r.publisher, reportedAt: r.at.toISOString() })),
    }))).sort((a, b) => a.service.localeCompare(b.service) || a.mailbox.localeCompare(b.mailbox));
  }

  private watches(service: PubSubService, node: PubSubNode): boolean {
    return service.asterisk.carriesAsteriskEvents(node.name, service.tree.ancestors(node).map((a) => a.node.name));
  }
}

function mapFor<T>(maps: Map<string, Map<string, T>>, key: string): Map<string, T> {
  let map = maps.get(key);
  if (!map) maps.set(key, (map = new Map()));
  return map;
}

/** The cluster-wide request for the view of the node serving PubSub. */
const VIEW_REQUEST = 'pubsub/device-state-view';

/** Serves the view on the HTTP listeners, to administrators only. */
export function serveDeviceStates(ctx: ModuleContext, view: DeviceStateView): void {
  const endpoint = (path: string, body: () => Promise<unknown>) => ctx.http.route(path, async (req, res, url) => {
    if (ctx.http.cors(req, res, 'GET, OPTIONS')) return;
    if (url.pathname !== path) return sendJson(res, 404, { error: 'not found' });
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET, OPTIONS');
      return sendJson(res, 405, { error: 'only GET' });
    }
    if (!(await authorised(ctx, req, res))) return;
    let answer: unknown;
    try {
      answer = await body();
    } catch (e) {
      return sendJson(res, 503, { error: (e as Error).message });
    }
    sendJson(res, 200, answer);
  }, { operations: [{ method: 'GET', path }] });
  const local = (kind: unknown) => (kind === 'mailboxes' ? { mailboxes: view.mailboxList() } : { devices: view.deviceStates() });
  // The view follows what is published, which the node serving PubSub sees; in a cluster the
  // other nodes ask it.
  ctx.cluster.handle(VIEW_REQUEST, (kind) => (ctx.cluster.serving() ? local(kind) : undefined));
  const current = async (kind: 'devices' | 'mailboxes') => {
    if (ctx.cluster.serving()) return local(kind);
    const reply = (await ctx.cluster.request(VIEW_REQUEST, kind)).find((r) => r.value !== undefined);
    if (!reply) throw new Error('the cluster node serving PubSub did not answer; try again');
    return reply.value;
  };
  const deviceStates = () => current('devices');
  const mailboxes = () => current('mailboxes');
  endpoint('/api/device-states', deviceStates);
  endpoint('/api/mailboxes', mailboxes);
  // The same bodies in the management API (/api/v1/, bearer tokens), when that module is on.
  addDeviceStateRoutes(ctx, { deviceStates, mailboxes });
}

/** HTTP Basic with an administrator's JID and password, checked against the stored SCRAM keys. */
async function authorised(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const refuse = (status: 401 | 403, error: string) => {
    if (status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="Switchboard", charset="UTF-8"');
    sendJson(res, status, { error });
    return false;
  };
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return refuse(401, 'administrator credentials required');
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const jid = tryParseJid(colon > 0 ? decoded.slice(0, colon) : undefined);
  const credentials = jid?.local ? await ctx.storage.users.get(jid.domain, jid.local) : undefined;
  // A password SASLprep refuses cannot be anyone's.
  const valid = credentials !== undefined && (await verifyPasswordAsync(credentials, decoded.slice(colon + 1)).catch(() => false));
  if (!jid || !valid) return refuse(401, 'wrong user or password');
  if (!ctx.isAdmin(jid.bare)) return refuse(403, `${jid.bare} is not an administrator`);
  return true;
}
