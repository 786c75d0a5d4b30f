// The operator panel in the browser: logs in over XMPP on WebSocket (same origin,
// /xmpp-websocket), subscribes to the Asterisk device-state and mailbox nodes of the
// domain's PubSub service, reads the roster and the contacts' presence, and redraws on every
// change. @xmpp/client reconnects by itself after a lost connection; the subscriptions and the
// items are read again each time it is back online.
import { client, xml, type Client, type XmlElement } from '@xmpp/client';
import { CATEGORY_LABELS, PanelModel, category, type Category } from './model.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_ROSTER = 'jabber:iq:roster';
const NS_DATA = 'jabber:x:data';
const SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
const RETRY_MS = 10_000;
const MAX_LEAVES = 500;

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let xmpp: Client | undefined;
let model = new PanelModel();
let self = '';
let pubsub = '';
let wasLive = false;
let drawScheduled = false;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
const notices = new Map<string, string>();

function webSocketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`;
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function setStatus(status: 'offline' | 'connecting' | 'live' | 'reconnecting'): void {
  const el = byId('status');
  el.dataset.status = status;
  el.textContent = status;
}

// --- XMPP -----------------------------------------------------------------------------------

function request(el: XmlElement): Promise<XmlElement> {
  return xmpp!.iqCaller.request(el, 15_000);
}

function conditionOf(e: unknown): string {
  return (e as { condition?: string }).condition ?? String(e);
}

async function login(jid: string, password: string): Promise<void> {
  const at = jid.lastIndexOf('@');
  const domain = jid.slice(at + 1);
  model = new PanelModel();
  pubsub = `pubsub.${domain}`;
  const x = client({ service: webSocketUrl(), domain, username: jid.slice(0, at), password, resource: `panel-${Math.random().toString(36).slice(2, 8)}` });
  xmpp = x;
  x.reconnect.delay = 1000;
  x.on('error', (e) => console.warn('xmpp:', e.condition ?? e.message));
  x.on('status', (s) => {
    if (s === 'online') return;
    if (s === 'disconnect' || ((s === 'connecting' || s === 'opening') && wasLive)) setStatus('reconnecting');
    else if (s === 'connecting') setStatus('connecting');
    else if (s === 'offline') setStatus('offline');
  });
  x.on('stanza', onStanza);
  x.on('online', (address) => {
    self = address.toString();
    wasLive = true;
    setStatus('live');
    byId('who').textContent = self;
    setup().catch((e) => console.warn('panel setup:', e));
  });
  setStatus('connecting');
  await x.start();
}

async function logout(): Promise<void> {
  clearTimeout(retryTimer);
  const x = xmpp;
  xmpp = undefined;
  wasLive = false;
  if (x) {
    x.reconnect.stop();
    await x.stop().catch(() => {});
  }
  setStatus('offline');
  showBoard(false);
}

/** After each (re)connection: roster, presence, and the two Asterisk nodes. */
async function setup(): Promise<void> {
  model.resetLive();
  const roster = await request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  const query = roster.getChild('query', NS_ROSTER);
  if (query) model.applyRoster(query, true);
  await xmpp!.send(xml('presence', {}, xml('status', {}, 'Switchboard operator panel')));
  await Promise.all([watch(model.deviceNode, 'device states'), watch(model.mwiNode, 'mailboxes')]);
  draw();
}

/**
 * Subscribes to one Asterisk node and reads what it holds. A flat node (collection_nodes=no)
 * holds one item per device; a collection (collection_nodes=yes) has a leaf per device. A node
 * that does not exist yet is not created from here (its type is Asterisk's choice): it is
 * looked for again later.
 */
async function watch(node: string, what: string): Promise<void> {
  const bare = self.split('/')[0]!;
  try {
    const info = await request(xml('iq', { type: 'get', to: pubsub }, xml('query', { xmlns: NS_DISCO_INFO, node })));
    const type = info.getChild('query', NS_DISCO_INFO)?.getChild('identity')?.attrs.type;
    if (type === 'collection') {
      const options = xml('options', {}, xml('x', { xmlns: NS_DATA, type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, SUBSCRIBE_OPTIONS)),
        xml('field', { var: 'pubsub#subscription_type' }, xml('value', {}, 'items')),
        xml('field', { var: 'pubsub#subscription_depth' }, xml('value', {}, 'all'))));
      await request(xml('iq', { type: 'set', to: pubsub }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node, jid: bare }), options)));
      const children = await request(xml('iq', { type: 'get', to: pubsub }, xml('query', { xmlns: NS_DISCO_ITEMS, node })));
      const leaves = (children.getChild('query', NS_DISCO_ITEMS)?.getChildren('item') ?? []).map((i) => i.attrs.node).filter((n): n is string => !!n);
      for (let i = 0; i < Math.min(leaves.length, MAX_LEAVES); i += 10) {
        await Promise.all(leaves.slice(i, i + 10).map((leaf) => readItems(leaf).catch(() => {})));
      }
    } else {
      await request(xml('iq', { type: 'set', to: pubsub }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node, jid: bare }))));
      await readItems(node);
    }
    notices.delete(node);
  } catch (e) {
    const condition = conditionOf(e);
    notices.set(node, condition === 'item-not-found'
      ? `No ${what} yet: the ${node} node does not exist on ${pubsub} (Asterisk creates it); looking again shortly.`
      : `Cannot follow ${what} (${node} on ${pubsub}): ${condition}.`);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { if (xmpp) void Promise.all([watch(model.deviceNode, 'device states'), watch(model.mwiNode, 'mailboxes')]).then(draw); }, RETRY_MS);
  }
  scheduleDraw();
}

async function readItems(node: string): Promise<void> {
  const result = await request(xml('iq', { type: 'get', to: pubsub }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }))));
  const items = result.getChild('pubsub', NS_PUBSUB)?.getChild('items')?.getChildren('item') ?? [];
  // Oldest first, so the latest report of each server wins.
  for (const item of items.reverse()) {
    const payload = item.children.find((c): c is XmlElement => typeof c !== 'string');
    model.applyItem(node, item.attrs.id, payload);
  }
}

function onStanza(s: XmlElement): void {
  if (s.is('message') && s.attrs.from === pubsub) {
    if (model.applyEvent(s)) scheduleDraw();
  } else if (s.is('presence')) {
    if (model.applyPresence(s, self)) scheduleDraw();
  } else if (s.is('iq') && s.attrs.type === 'set') {
    const query = s.getChild('query', NS_ROSTER);
    const from = s.attrs.from;
    if (query && (!from || from === self.split('/')[0])) {
      model.applyRoster(query, false);
      void xmpp?.send(xml('iq', { type: 'result', id: s.attrs.id }));
      scheduleDraw();
    }
  }
}

// --- Drawing --------------------------------------------------------------------------------

function scheduleDraw(): void {
  if (drawScheduled) return;
  drawScheduled = true;
  setTimeout(() => { drawScheduled = false; draw(); }, 0);
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function draw(): void {
  const devices = [...model.devices.values()].sort((a, b) => collator.compare(a.name, b.name));
  const counts = new Map<Category, number>();
  byId('devices').innerHTML = devices.map((d) => {
    const c = category(d.state);
    counts.set(c, (counts.get(c) ?? 0) + 1);
    const detail = [...d.reports].map(([eid, s]) => `${eid || 'server'}: ${s}`).join('\n');
    return `<li class="device" data-device="${escape(d.name)}" data-state="${c}" title="${escape(detail)}">` +
      `<span class="name">${escape(d.name)}</span><span class="state">${CATEGORY_LABELS[c]}</span></li>`;
  }).join('');
  byId('device-count').textContent = devices.length ? `(${devices.length})` : '';
  byId('legend').innerHTML = (Object.keys(CATEGORY_LABELS) as Category[])
    .map((c) => `<li style="--swatch: var(--${c})" data-category="${c}">${CATEGORY_LABELS[c]} <b>${counts.get(c) ?? 0}</b></li>`).join('');
  const notice = byId('device-notice');
  notice.hidden = notices.size === 0;
  notice.textContent = [...notices.values()].join(' ');

  const mailboxes = [...model.mailboxes.values()].sort((a, b) => collator.compare(a.name, b.name));
  byId('mailboxes').innerHTML = mailboxes.length === 0 ? '<tr><td colspan="3" class="notice">No mailboxes reported yet.</td></tr>'
    : mailboxes.map((m) => `<tr data-mailbox="${escape(m.name)}" data-new="${m.newMessages > 0}"><td>${escape(m.name)}</td>` +
      `<td class="new">${m.newMessages}</td><td class="old">${m.oldMessages}</td></tr>`).join('');

  const order = { online: 0, dnd: 1, away: 2, offline: 3 };
  const contacts = [...model.contacts.values()].map((c) => ({ c, p: model.availability(c) }))
    .sort((a, b) => order[a.p.show] - order[b.p.show] || collator.compare(a.c.name, b.c.name));
  byId('contacts').innerHTML = contacts.length === 0 ? '<li class="notice">No contacts in this account\'s roster.</li>'
    : contacts.map(({ c, p }) => `<li class="contact" data-jid="${escape(c.jid)}" data-show="${p.show}"><span class="dot" aria-hidden="true"></span>` +
      `<span class="text"><span class="name">${escape(c.name)}</span><span class="detail">${p.show}${p.status ? ` · ${escape(p.status)}` : ''}</span></span></li>`).join('');
}

function showBoard(on: boolean): void {
  byId('login').hidden = on;
  byId('board').hidden = !on;
  byId('logout').hidden = !on;
  if (!on) byId('who').textContent = '';
}

// --- Page -----------------------------------------------------------------------------------

byId<HTMLFormElement>('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const jid = byId<HTMLInputElement>('jid').value.trim();
  const password = byId<HTMLInputElement>('password').value;
  const error = byId('login-error');
  error.textContent = '';
  if (!/^[^@/\s]+@[^@/\s]+$/.test(jid)) { error.textContent = 'Enter an account as user@domain.'; return; }
  localStorage.setItem('switchboard-panel-jid', jid);
  login(jid, password).then(() => {
    byId<HTMLInputElement>('password').value = '';
    showBoard(true);
    draw();
  }, async (e: unknown) => {
    const condition = conditionOf(e);
    error.textContent = condition === 'not-authorized' ? 'Wrong account or password.' : `Cannot log in: ${condition}`;
    await logout();
  });
});

byId('logout').addEventListener('click', () => { void logout(); });
byId<HTMLInputElement>('jid').value = localStorage.getItem('switchboard-panel-jid') ?? '';
setStatus('offline');
