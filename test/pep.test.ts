// PEP (XEP-0163) with real clients (@xmpp/client over TCP): accounts are PubSub services of
// their own; contacts with a presence subscription get notifications when their entity caps
// (XEP-0115) say +notify for the node, others do not; the last item comes on presence;
// retrieval follows the access model; publish-options are preconditions; items survive a
// restart on every storage backend.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from './support/server.js';
import { startClient, type LiveClient } from './support/xmpp-client.js';
import { NS_ADMIN, connectClient } from './support/adhoc-client.js';
import { backends } from './support/postgres.js';
import { capsHash } from '../src/modules/pubsub/caps.js';
import { xml as serverXml } from '../src/xml/element.js';

const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const NS_CAPS = 'http://jabber.org/protocol/caps';
const NS_TUNE = 'http://jabber.org/protocol/tune';
const NS_GEOLOC = 'http://jabber.org/protocol/geoloc';

/**
 * Makes a client answer disco#info for its caps node with `features`, and returns the <c/> to put
 * in its presence (ver computed as XEP-0115 says; the hash itself is checked against the XEP's
 * examples in src/modules/pubsub/caps.test.ts).
 */
function announce(c: LiveClient, features: string[]): XmppElement {
  const node = 'https://switchboard.test/client';
  const ver = capsHash(serverXml('query', null,
    serverXml('identity', { category: 'client', type: 'pc', name: 'Test' }),
    features.map((f) => serverXml('feature', { var: f }))), 'sha-1')!;
  c.xmpp.iqCallee.get(NS_DISCO_INFO, 'query', (ctx: { element: XmppElement }) => xml('query', { xmlns: NS_DISCO_INFO, node: ctx.element.attrs.node },
    xml('identity', { category: 'client', type: 'pc', name: 'Test' }),
    features.map((f) => xml('feature', { var: f }))));
  return xml('c', { xmlns: NS_CAPS, hash: 'sha-1', node, ver });
}

const bare = (c: LiveClient) => c.jid.split('/')[0]!;
const isPresenceFrom = (from: LiveClient, type?: string) => (s: XmppElement) => s.is('presence') && s.attrs.from === from.jid && s.attrs.type === type;

/** The RFC 6121 handshake both ways, as the two users' clients do it. */
async function befriend(a: LiveClient, b: LiveClient): Promise<void> {
  for (const [asker, approver] of [[a, b], [b, a]] as const) {
    await asker.xmpp.send(xml('presence', { to: bare(approver), type: 'subscribe' }));
    await approver.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === bare(asker), 'subscription request');
    await approver.xmpp.send(xml('presence', { to: bare(asker), type: 'subscribed' }));
    // The approver's presence reaches the asker once the subscription is stored on both sides.
    await asker.waitFor(isPresenceFrom(approver), `presence of ${approver.jid}`);
  }
}

const publish = (node: string, id: string, payload: XmppElement, options?: Record<string, string>) => xml('iq', { type: 'set', id: `pub-${id}` },
  xml('pubsub', { xmlns: NS_PUBSUB },
    xml('publish', { node }, xml('item', { id }, payload)),
    options && xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, `${NS_PUBSUB}#publish-options`)),
      Object.entries(options).map(([name, value]) => xml('field', { var: name }, xml('value', {}, value)))))));

const tune = (title: string) => xml('tune', { xmlns: NS_TUNE }, xml('title', {}, title));

/** Item ids of the PEP events from `owner` for `node` received so far (and removed from the queue). */
function eventsFrom(c: LiveClient, owner: string, node: string): string[] {
  const matching = c.received.filter((s) => s.is('message') && s.attrs.from === owner && s.getChild('event', NS_EVENT)?.getChild('items')?.attrs.node === node);
  for (const m of matching) c.received.splice(c.received.indexOf(m), 1);
  return matching.flatMap((m) => m.getChild('event', NS_EVENT)!.getChild('items')!.getChildren('item').map((i) => i.attrs.id as string));
}

const waitForEvent = (c: LiveClient, owner: string, node: string, id: string) => c.waitFor((s) => s.is('message') && s.attrs.from === owner
  && s.getChild('event', NS_EVENT)?.getChild('items')?.attrs.node === node
  && s.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')?.attrs.id === id, `event ${node}/${id} from ${owner} at ${c.jid}`);

/** A round trip to the server: whatever it sent this client before is in by then. */
async function sync(c: LiveClient): Promise<void> {
  await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
}

async function requestError(c: LiveClient, iq: XmppElement): Promise<{ condition: string; application?: string }> {
  try {
    await c.xmpp.iqCaller.request(iq);
  } catch (e) {
    const err = e as { condition: string; application?: XmppElement };
    return { condition: err.condition, application: err.application?.name };
  }
  assert.fail(`expected an error for ${iq}`);
}

describe('PEP (XEP-0163)', () => {
  let t: TestServer;
  const open: LiveClient[] = [];
  const connect = async (user: string, resource: string) => {
    const c = await startClient(t.port, user, { resource });
    open.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer();
    for (const u of ['juliet', 'romeo', 'nurse', 'benvolio', 'mercutio', 'balthasar']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of open) await c.xmpp.stop().catch(() => {});
    await t.stop(true);
  });

  it('notifies contacts whose caps say +notify, the owner\'s interested resources, nobody else; retrieval follows the access model', async () => {
    const juliet = await connect('juliet', 'balcony');
    const romeo = await connect('romeo', 'orchard');
    const nurse = await connect('nurse', 'kitchen');
    const benvolio = await connect('benvolio', 'street');
    const romeoCaps = announce(romeo, [NS_DISCO_INFO, `${NS_TUNE}+notify`]);
    const nurseCaps = announce(nurse, [NS_DISCO_INFO, `${NS_GEOLOC}+notify`]);
    const benvolioCaps = announce(benvolio, [NS_DISCO_INFO, `${NS_TUNE}+notify`]);
    await juliet.xmpp.send(xml('presence'));
    await romeo.xmpp.send(xml('presence'));
    await nurse.xmpp.send(xml('presence', {}, nurseCaps));
    await benvolio.xmpp.send(xml('presence', {}, benvolioCaps));
    await befriend(juliet, romeo);
    await befriend(juliet, nurse);

    // The first publish creates the node (auto-create); romeo has not said what he wants yet.
    const reply = await juliet.xmpp.iqCaller.request(publish(NS_TUNE, 'song1', tune('Rosaline')));
    assert.equal(reply.getChild('pubsub')?.getChild('publish')?.getChild('item')?.attrs.id, 'song1');
    await sync(romeo);
    assert.deepEqual(eventsFrom(romeo, 'juliet@localhost', NS_TUNE), []);

    // Caps with tune+notify: the server asks romeo's client what the caps mean, then sends the last item.
    await romeo.xmpp.send(xml('presence', {}, romeoCaps));
    const last = await waitForEvent(romeo, 'juliet@localhost', NS_TUNE, 'song1');
    assert.equal(last.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('tune', NS_TUNE)?.getChildText('title'), 'Rosaline');

    // Juliet's second resource wants tunes too; her publishing resource announced nothing.
    const chamber = await connect('juliet', 'chamber');
    await chamber.xmpp.send(xml('presence', {}, announce(chamber, [NS_DISCO_INFO, `${NS_TUNE}+notify`])));
    await waitForEvent(chamber, 'juliet@localhost', NS_TUNE, 'song1');

    await juliet.xmpp.iqCaller.request(publish(NS_TUNE, 'song2', tune('Wherefore')));
    await waitForEvent(romeo, 'juliet@localhost', NS_TUNE, 'song2');
    await waitForEvent(chamber, 'juliet@localhost', NS_TUNE, 'song2');
    // The nurse is a contact but wants geoloc only; benvolio wants tunes but has no subscription; the publishing resource asked for nothing.
    for (const c of [nurse, benvolio, juliet]) await sync(c);
    assert.ok(nurse.received.some((s) => s.is('iq') && s.getChild('query', NS_DISCO_INFO)), 'the server resolved the nurse\'s caps');
    assert.deepEqual(eventsFrom(nurse, 'juliet@localhost', NS_TUNE), []);
    assert.deepEqual(eventsFrom(benvolio, 'juliet@localhost', NS_TUNE), []);
    assert.deepEqual(eventsFrom(juliet, 'juliet@localhost', NS_TUNE), []);

    // Retrieval: presence access model, so contacts may, strangers may not.
    const items = await nurse.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
    assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['song2'], 'a singleton node by default');
    const refused = await requestError(benvolio, xml('iq', { type: 'get', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
    assert.deepEqual(refused, { condition: 'not-authorized', application: 'presence-subscription-required' });

    // Only the account publishes to its PEP service.
    const foreign = await requestError(romeo, xml('iq', { type: 'set', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: NS_TUNE }, xml('item', { id: 'x' }, tune('Intruder'))))));
    assert.equal(foreign.condition, 'forbidden');
  });

  it('follows presence subscriptions: a new contact gets the last item, one who loses the subscription loses its node subscriptions', async () => {
    const juliet = await connect('juliet', 'garden');
    const mercutio = await connect('mercutio', 'square');
    await juliet.xmpp.send(xml('presence'));
    await mercutio.xmpp.send(xml('presence', {}, announce(mercutio, [NS_DISCO_INFO, `${NS_TUNE}+notify`, 'http://jabber.org/protocol/mood+notify'])));
    // Caps of their own (the server caches caps by hash, so known ones are not asked again): known once
    // the server has his answer, which it handles before the ping that follows.
    await mercutio.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && !!s.getChild('query', NS_DISCO_INFO), 'the caps query');
    await sync(mercutio);
    assert.deepEqual(eventsFrom(mercutio, 'juliet@localhost', NS_TUNE), []);

    await befriend(juliet, mercutio);
    await waitForEvent(mercutio, 'juliet@localhost', NS_TUNE, 'song2');

    await mercutio.xmpp.iqCaller.request(xml('iq', { type: 'set', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: NS_TUNE, jid: 'mercutio@localhost' }))));
    await juliet.xmpp.send(xml('presence', { to: 'mercutio@localhost', type: 'unsubscribed' }));
    const cancelled = await mercutio.waitFor((s) => s.is('message') && s.attrs.from === 'juliet@localhost'
      && s.getChild('event', NS_EVENT)?.getChild('subscription')?.attrs.subscription === 'none', 'the cancelled subscription');
    assert.equal(cancelled.getChild('event', NS_EVENT)!.getChild('subscription')!.attrs.node, NS_TUNE);
    const subscribers = await juliet.xmpp.iqCaller.request(xml('iq', { type: 'get' },
      xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('subscriptions', { node: NS_TUNE }))));
    assert.deepEqual(subscribers.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.jid), []);
    const refused = await requestError(mercutio, xml('iq', { type: 'get', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
    assert.equal(refused.condition, 'not-authorized');
  });

  it('understands legacy caps (no hash): the features of ver and of each ext bundle together', async () => {
    const juliet = await connect('juliet', 'tomb');
    const balthasar = await connect('balthasar', 'mantua');
    await juliet.xmpp.send(xml('presence'));
    await balthasar.xmpp.send(xml('presence'));
    await befriend(juliet, balthasar);
    const node = 'https://switchboard.test/legacy';
    const asked: string[] = [];
    balthasar.xmpp.iqCallee.get(NS_DISCO_INFO, 'query', (ctx: { element: XmppElement }) => {
      const which = ctx.element.attrs.node as string;
      asked.push(which);
      const features = which === `${node}#music` ? [`${NS_TUNE}+notify`] : [NS_DISCO_INFO];
      return xml('query', { xmlns: NS_DISCO_INFO, node: which }, features.map((f) => xml('feature', { var: f })));
    });
    await balthasar.xmpp.send(xml('presence', {}, xml('c', { xmlns: NS_CAPS, node, ver: '0.9', ext: 'music' })));
    await waitForEvent(balthasar, 'juliet@localhost', NS_TUNE, 'song2');
    assert.deepEqual(asked.sort(), [`${node}#0.9`, `${node}#music`]);
  });

  it('does not let one client poison the caps cache: an answer that does not match its hash stays that client\'s', async () => {
    const wanted = [NS_DISCO_INFO, `${NS_TUNE}+notify`, 'urn:xmpp:test:poison'];
    const nurse = await connect('nurse', 'ward');
    const honestCaps = announce(nurse, wanted);
    // Benvolio claims the same caps but answers without tune+notify, before anyone else is asked.
    const liar = await connect('benvolio', 'mask');
    liar.xmpp.iqCallee.get(NS_DISCO_INFO, 'query', (ctx: { element: XmppElement }) => xml('query', { xmlns: NS_DISCO_INFO, node: ctx.element.attrs.node },
      xml('feature', { var: NS_DISCO_INFO })));
    await liar.xmpp.send(xml('presence', {}, honestCaps));
    await liar.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && !!s.getChild('query', NS_DISCO_INFO), 'the caps query to the liar');
    await sync(liar);
    await nurse.xmpp.send(xml('presence', {}, honestCaps));
    await nurse.waitFor((s) => s.is('iq') && s.attrs.type === 'get' && !!s.getChild('query', NS_DISCO_INFO), 'the caps query, asked again');
    await waitForEvent(nurse, 'juliet@localhost', NS_TUNE, 'song2');
  });

  it('advertises PEP: the pubsub/pep identity on accounts, the PubSub features on the host, the nodes a contact may see', async () => {
    const nurse = await connect('nurse', 'disco');
    const info = await nurse.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    const identities = info.getChild('query')!.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`);
    assert.ok(identities.includes('pubsub/pep') && identities.includes('account/registered'), identities.join(' '));
    const host = await nurse.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
    const features = host.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['publish', 'publish-options', 'auto-create', 'filtered-notifications', 'last-published']) assert.ok(features.includes(`${NS_PUBSUB}#${f}`), f);
    const nodes = await nurse.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: NS_DISCO_ITEMS })));
    assert.ok(nodes.getChild('query')!.getChildren('item').some((i) => i.attrs.node === NS_TUNE && i.attrs.jid === 'juliet@localhost'));
  });

  it('takes publish-options as preconditions, and as the configuration of a node it creates', async () => {
    const juliet = await connect('juliet', 'options');
    const benvolio = await connect('benvolio', 'options');
    // A new node gets the options as its configuration: open to anyone.
    await juliet.xmpp.iqCaller.request(publish('urn:xmpp:test:public', 'p1', xml('note', { xmlns: 'urn:xmpp:test:public' }, 'hello'), {
      'pubsub#access_model': 'open', 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max',
    }));
    const open = await benvolio.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'juliet@localhost' },
      xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: 'urn:xmpp:test:public' }))));
    assert.equal(open.getChild('pubsub')!.getChild('items')!.getChildren('item').length, 1);
    // The same options again are met ('true' and 'max' as the node shows them: '1' and the limit).
    await juliet.xmpp.iqCaller.request(publish('urn:xmpp:test:public', 'p2', xml('note', { xmlns: 'urn:xmpp:test:public' }, 'again'), {
      'pubsub#access_model': 'open', 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max',
    }));
    // The tune node has the presence model: an open precondition is not met, and nothing is published.
    const conflict = await requestError(juliet, publish(NS_TUNE, 'song3', tune('Not met'), { 'pubsub#access_model': 'open' }));
    assert.deepEqual(conflict, { condition: 'conflict', application: 'precondition-not-met' });
    const items = await juliet.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
    assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['song2']);
  });
});

describe('PEP and PubSub for anonymous users', () => {
  it('keeps their PEP items in memory only, and refuses them nodes on the PubSub service', async () => {
    const t = await startTestServer({ 'virtual-hosts': ['localhost', 'guest.localhost'], 'vhost-options': { 'guest.localhost': { 'anonymous-login': true } } });
    const open: LiveClient[] = [];
    try {
      await t.addUser('romeo@localhost');
      const guest = await startClient(t.port, undefined, { domain: 'guest.localhost' });
      const romeo = await startClient(t.port, 'romeo');
      open.push(guest, romeo);
      await guest.xmpp.iqCaller.request(publish(NS_TUNE, 'g1', tune('Passing through')));
      const items = await guest.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
      assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['g1']);
      const database = new Database(join(t.dataDir, 'switchboard.sqlite'), { readonly: true });
      try {
        const rows = (table: string) => database.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE service = ?`).get(bare(guest)) as { n: number };
        assert.equal(rows('pubsub_nodes').n, 0);
        assert.equal(rows('pubsub_items').n, 0);
      } finally {
        database.close();
      }
      const create = (node: string) => xml('iq', { type: 'set', to: 'pubsub.guest.localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('create', { node })));
      assert.deepEqual(await requestError(guest, create('guest-node')), { condition: 'forbidden', application: undefined });
      const autoCreate = await requestError(guest, xml('iq', { type: 'set', to: 'pubsub.guest.localhost' },
        xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node: 'guest-node' }, xml('item', {}, tune('x'))))));
      assert.equal(autoCreate.condition, 'item-not-found', 'no node was created');
      await romeo.xmpp.iqCaller.request(create('romeo-node'));
    } finally {
      for (const c of open) await c.xmpp.stop().catch(() => {});
      await t.stop(true);
    }
  });
});

describe('PEP of a deleted account', () => {
  it('goes with the account', async () => {
    const t = await startTestServer({ admins: ['admin@localhost'] });
    const open: LiveClient[] = [];
    try {
      for (const u of ['admin', 'tybalt', 'paris']) await t.addUser(`${u}@localhost`);
      const tybalt = await startClient(t.port, 'tybalt');
      open.push(tybalt);
      await tybalt.xmpp.iqCaller.request(publish(NS_TUNE, 'duel', tune('Prince of cats'), { 'pubsub#access_model': 'open' }));
      await tybalt.xmpp.stop();
      const admin = await connectClient(t.port, 'admin');
      open.push(admin);
      const deleted = await admin.command('localhost', `${NS_ADMIN}#delete-user`, { fields: { accountjids: ['tybalt@localhost'] } });
      assert.match(deleted.notes[0]!.text, /Deleted: tybalt@localhost/);
      // A new account of the same name starts without the old one's PEP data.
      await t.addUser('tybalt@localhost');
      const paris = await connectClient(t.port, 'paris');
      open.push(paris);
      assert.deepEqual(await paris.items('tybalt@localhost'), []);
      const gone = await paris.requestError(xml('iq', { type: 'get', to: 'tybalt@localhost' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_TUNE }))));
      assert.equal(gone.condition, 'item-not-found');
    } finally {
      for (const c of open) await c.xmpp.stop().catch(() => {});
      await t.stop(true);
    }
  });
});

for (const backend of backends()) {
  describe(`PEP across a restart (${backend.name})`, () => {
    after(() => backend.cleanup());

    it('keeps nodes and items: a contact coming online after the restart gets the last item', async () => {
      let t = await startTestServer({ storage: await backend.storage() });
      const open: LiveClient[] = [];
      try {
        for (const u of ['juliet', 'romeo']) await t.addUser(`${u}@localhost`);
        let juliet = await startClient(t.port, 'juliet', { resource: 'balcony' });
        let romeo = await startClient(t.port, 'romeo', { resource: 'orchard' });
        open.push(juliet, romeo);
        await juliet.xmpp.send(xml('presence'));
        await romeo.xmpp.send(xml('presence'));
        await befriend(juliet, romeo);
        const geoloc = xml('geoloc', { xmlns: NS_GEOLOC }, xml('locality', {}, 'Verona'));
        await juliet.xmpp.iqCaller.request(publish(NS_GEOLOC, 'here', geoloc));
        for (const c of open.splice(0)) await c.xmpp.stop();

        t = await t.restart();
        romeo = await startClient(t.port, 'romeo', { resource: 'orchard' });
        juliet = await startClient(t.port, 'juliet', { resource: 'balcony' });
        open.push(juliet, romeo);
        await romeo.xmpp.send(xml('presence', {}, announce(romeo, [NS_DISCO_INFO, `${NS_GEOLOC}+notify`])));
        const last = await waitForEvent(romeo, 'juliet@localhost', NS_GEOLOC, 'here');
        assert.equal(last.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('geoloc', NS_GEOLOC)?.getChildText('locality'), 'Verona');
        const items = await juliet.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: NS_GEOLOC }))));
        assert.deepEqual(items.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id), ['here']);
      } finally {
        for (const c of open) await c.xmpp.stop().catch(() => {});
        await t.stop(true);
      }
    });
  });
}
