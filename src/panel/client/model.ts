// What the operator panel shows, kept apart from the page so it can be tested in Node: device
// states and mailboxes from the Asterisk PubSub nodes, and the contacts' presence. Runs in the
// browser; takes any element with the ltx shape (@xmpp/xml in the page, the same in tests).
//
// Shapes (test/fixtures/asterisk/README.md): a device state is <state xmlns='http://asterisk.org'
// eid='EID'>INUSE</state>, a mailbox <mailbox xmlns='http://asterisk.org' eid='EID'><NEWMSGS>2
// </NEWMSGS><OLDMSGS>5</OLDMSGS></mailbox>. In flat mode they are items of the node device_state
// (or message_waiting) whose item id names the device (mailbox); with collection nodes each device
// has its own leaf under the collection, and the leaf's name is the device.

export interface XmlLike {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlLike | string)[];
  getChild(name: string, xmlns?: string): XmlLike | undefined;
  getChildren(name: string, xmlns?: string): XmlLike[];
  text(): string;
}

export const NS_ASTERISK = 'http://asterisk.org';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';

export const DEVICE_STATES = ['INVALID', 'UNKNOWN', 'UNAVAILABLE', 'NOT_INUSE', 'ONHOLD', 'RINGING', 'INUSE', 'BUSY', 'RINGINUSE'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

/** What the grid colours: the six states an operator tells apart. */
export type Category = 'idle' | 'ringing' | 'inuse' | 'busy' | 'onhold' | 'unavailable';

export const CATEGORY_LABELS: Record<Category, string> = {
  idle: 'idle', ringing: 'ringing', inuse: 'in use', busy: 'busy', onhold: 'on hold', unavailable: 'unavailable',
};

/**
 * Asterisk's aggregation of what several servers report for one device: the highest in the
 * order of DEVICE_STATES, except that RINGING together with INUSE, ONHOLD or BUSY is RINGINUSE.
 */
export function aggregate(states: readonly DeviceState[]): DeviceState {
  let result: DeviceState = 'INVALID';
  for (const s of states) if (DEVICE_STATES.indexOf(s) > DEVICE_STATES.indexOf(result)) result = s;
  if (states.includes('RINGING') && states.some((s) => s === 'INUSE' || s === 'ONHOLD' || s === 'BUSY')) result = 'RINGINUSE';
  return result;
}

export function category(state: DeviceState): Category {
  switch (state) {
    case 'NOT_INUSE': return 'idle';
    case 'RINGING': case 'RINGINUSE': return 'ringing';
    case 'INUSE': return 'inuse';
    case 'BUSY': return 'busy';
    case 'ONHOLD': return 'onhold';
    default: return 'unavailable';
  }
}

export interface Device {
  name: string;
  node: string;
  /** The state each Asterisk (by eid) reported. */
  reports: Map<string, DeviceState>;
  state: DeviceState;
  changedAt: number;
}

export interface Mailbox {
  name: string;
  node: string;
  newMessages: number;
  oldMessages: number;
  changedAt: number;
}

export type Availability = 'online' | 'away' | 'dnd' | 'offline';

export interface Contact {
  jid: string;
  name: string;
  subscription: string;
  /** By resource. */
  resources: Map<string, { show: Availability; status: string; priority: number }>;
}

function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

function resourceOf(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? '' : jid.slice(slash + 1);
}

function childText(el: XmlLike, name: string): string | undefined {
  const c = el.getChild(name);
  return c ? c.text() : undefined;
}

export class PanelModel {
  readonly devices = new Map<string, Device>();
  readonly mailboxes = new Map<string, Mailbox>();
  readonly contacts = new Map<string, Contact>();

  constructor(readonly deviceNode = 'device_state', readonly mwiNode = 'message_waiting', private readonly now: () => number = Date.now) {}

  /** One item of an Asterisk node (from an items result or an event); returns whether anything changed. */
  applyItem(node: string, itemId: string | undefined, payload: XmlLike | undefined): boolean {
    if (!payload || payload.attrs.xmlns !== NS_ASTERISK) return false;
    const eid = payload.attrs.eid ?? '';
    if (payload.name === 'state') {
      const value = payload.text().trim() as DeviceState;
      if (!DEVICE_STATES.includes(value)) return false;
      const name = node === this.deviceNode || node === this.mwiNode ? itemId : node;
      if (!name) return false;
      let device = this.devices.get(name);
      const created = !device;
      if (!device) this.devices.set(name, (device = { name, node, reports: new Map(), state: 'INVALID', changedAt: this.now() }));
      device.node = node;
      device.reports.set(eid, value);
      const state = aggregate([...device.reports.values()]);
      if (state === device.state && !created) return false;
      device.state = state;
      device.changedAt = this.now();
      return true;
    }
    if (payload.name === 'mailbox') {
      const newMessages = Number(childText(payload, 'NEWMSGS'));
      const oldMessages = Number(childText(payload, 'OLDMSGS'));
      if (!Number.isInteger(newMessages) || !Number.isInteger(oldMessages)) return false;
      const name = node === this.deviceNode || node === this.mwiNode ? itemId : node;
      if (!name) return false;
      const before = this.mailboxes.get(name);
      if (before && before.newMessages === newMessages && before.oldMessages === oldMessages) return false;
      this.mailboxes.set(name, { name, node, newMessages, oldMessages, changedAt: this.now() });
      return true;
    }
    return false;
  }

  /** A PubSub event message (XEP-0060 section 7): items, retractions, purges, deletions. */
  applyEvent(message: XmlLike): boolean {
    const event = message.getChild('event', NS_PUBSUB_EVENT);
    if (!event) return false;
    let changed = false;
    for (const items of event.getChildren('items')) {
      const node = items.attrs.node ?? '';
      for (const item of items.getChildren('item')) {
        const payload = item.children.find((c): c is XmlLike => typeof c !== 'string');
        if (this.applyItem(node, item.attrs.id, payload)) changed = true;
      }
      for (const retract of items.getChildren('retract')) if (this.forget(node, retract.attrs.id)) changed = true;
    }
    for (const name of ['purge', 'delete']) {
      const el = event.getChild(name);
      if (el?.attrs.node !== undefined && this.forget(el.attrs.node, undefined)) changed = true;
    }
    return changed;
  }

  /** Drops what one item (or, without an id, a whole node) said. */
  private forget(node: string, itemId: string | undefined): boolean {
    let changed = false;
    for (const map of [this.devices, this.mailboxes] as Map<string, { node: string }>[]) {
      for (const [name, entry] of map) {
        if (entry.node !== node) continue;
        if (itemId !== undefined && (node === this.deviceNode || node === this.mwiNode) && name !== itemId) continue;
        map.delete(name);
        changed = true;
      }
    }
    return changed;
  }

  /** A roster result or push (RFC 6121 section 2). */
  applyRoster(query: XmlLike, replace: boolean): boolean {
    if (replace) {
      const keep = new Set(query.getChildren('item').map((i) => i.attrs.jid));
      for (const jid of this.contacts.keys()) if (!keep.has(jid)) this.contacts.delete(jid);
    }
    for (const item of query.getChildren('item')) {
      const jid = item.attrs.jid;
      if (!jid) continue;
      if (item.attrs.subscription === 'remove') { this.contacts.delete(jid); continue; }
      const existing = this.contacts.get(jid);
      this.contacts.set(jid, {
        jid,
        name: item.attrs.name || jid,
        subscription: item.attrs.subscription ?? 'none',
        resources: existing?.resources ?? new Map(),
      });
    }
    return true;
  }

  applyPresence(presence: XmlLike, self: string): boolean {
    const from = presence.attrs.from;
    const type = presence.attrs.type;
    if (!from || (type !== undefined && type !== 'unavailable')) return false;
    const bare = bareOf(from);
    if (bare === bareOf(self)) return false;
    const contact = this.contacts.get(bare);
    if (!contact) return false;
    const resource = resourceOf(from);
    if (type === 'unavailable') return contact.resources.delete(resource) || resource === '';
    const show = childText(presence, 'show');
    contact.resources.set(resource, {
      show: show === 'away' || show === 'xa' ? 'away' : show === 'dnd' ? 'dnd' : 'online',
      status: childText(presence, 'status') ?? '',
      priority: Number(childText(presence, 'priority') ?? 0) || 0,
    });
    return true;
  }

  /** A contact's presence: its highest-priority resource's, or offline. */
  availability(contact: Contact): { show: Availability; status: string } {
    let best: { show: Availability; status: string; priority: number } | undefined;
    for (const r of contact.resources.values()) if (!best || r.priority > best.priority) best = r;
    return best ? { show: best.show, status: best.status } : { show: 'offline', status: '' };
  }

  /** Everything from the server is stale after a reconnect: presence comes again, items are fetched again. */
  resetLive(): void {
    for (const c of this.contacts.values()) c.resources.clear();
  }
}
