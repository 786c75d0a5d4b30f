// PubSub Server Information (XEP-0485), opt-in: off by default (nothing announced, no node); on,
// the host announces the feature and the node's address, the node 'serverinfo' holds the domains
// served, readable by anyone and writable by nobody, and is published again when a virtual host
// is added; switched off again, the node is withdrawn.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, type Connected } from './support/adhoc-client.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
const NS_SERVERINFO = 'urn:xmpp:serverinfo:0';
const SERVICE = 'pubsub.localhost';

const hostInfo = (c: Connected) => c.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })));
const features = (info: XmppElement) => info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);
const getItems = (c: Connected) => c.request(xml('iq', { type: 'get', to: SERVICE }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: 'serverinfo' }))));
const domainsIn = (serverinfo: XmppElement | undefined) => serverinfo!.getChildren('domain').map((d) => d.attrs.name as string);

describe('PubSub server information (XEP-0485)', () => {
  const servers: TestServer[] = [];
  const clients: Connected[] = [];
  after(async () => {
    for (const c of clients) await c.stop();
    for (const t of servers) await t.stop(true);
  });

  it('is off by default: not announced, no node', async () => {
    const t = await startTestServer();
    servers.push(t);
    await t.addUser('reader@localhost');
    const reader = await connectClient(t.port, 'reader');
    clients.push(reader);
    const info = await hostInfo(reader);
    assert.ok(!features(info).includes(NS_SERVERINFO));
    assert.equal(info.getChild('query')!.getChildren('x').length, 0);
    const missing = await reader.requestError(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS_DISCO_INFO, node: 'serverinfo' })));
    assert.equal(missing.condition, 'item-not-found');
  });

  it('when on, announces the node, publishes the domains served, republishes on change, and withdraws when turned off', async () => {
    let t = await startTestServer({ admins: ['admin@localhost'], pubsub: { serverinfo: true } });
    servers.push(t);
    for (const u of ['admin', 'reader']) await t.addUser(`${u}@localhost`);
    let reader = await connectClient(t.port, 'reader', { resource: 'one' });
    const admin = await connectClient(t.port, 'admin');
    clients.push(reader, admin);

    // Discovery (XEP-0485 section 3): the feature, and the node's coordinates in an XEP-0128 form.
    const info = await hostInfo(reader);
    assert.ok(features(info).includes(NS_SERVERINFO));
    const form = info.getChild('query')!.getChildren('x').find((x) => x.getChildren('field').some((f) => f.attrs.var === 'FORM_TYPE' && f.getChildText('value') === 'http://jabber.org/network/serverinfo'));
    assert.ok(form, `the serverinfo form in ${info}`);
    assert.equal(form!.getChildren('field').find((f) => f.attrs.var === 'serverinfo-pubsub-node')?.getChildText('value'), 'xmpp:pubsub.localhost?;node=serverinfo');
    const nodeInfo = await reader.request(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS_DISCO_INFO, node: 'serverinfo' })));
    assert.deepEqual(nodeInfo.getChild('query')!.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`), ['pubsub/leaf']);
    const meta = nodeInfo.getChild('query')!.getChild('x')!.getChildren('field');
    assert.equal(meta.find((f) => f.attrs.var === 'pubsub#access_model')?.getChildText('value'), 'open');
    const top = await reader.items(SERVICE);
    assert.ok(top.some((i) => i.node === 'serverinfo'), 'a first-level node');

    // The item (section 4): the domains served and the software.
    const items = (await getItems(reader)).getChild('pubsub')!.getChild('items')!.getChildren('item');
    assert.deepEqual(items.map((i) => i.attrs.id), ['current']);
    const serverinfo = items[0]!.getChild('serverinfo', NS_SERVERINFO);
    assert.deepEqual(domainsIn(serverinfo), ['localhost']);
    assert.equal(serverinfo!.getChild('query', 'jabber:iq:version')?.getChildText('name'), 'Switchboard');

    // Nobody else writes it.
    const refused = await reader.requestError(xml('iq', { type: 'set', to: SERVICE }, xml('pubsub', { xmlns: NS_PUBSUB },
      xml('publish', { node: 'serverinfo' }, xml('item', { id: 'current' }, xml('serverinfo', { xmlns: NS_SERVERINFO }, xml('domain', { name: 'forged.example' })))))));
    assert.equal(refused.condition, 'forbidden');

    // A subscriber hears of a virtual host added at runtime (VHost Manager).
    await reader.request(xml('iq', { type: 'set', to: SERVICE }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node: 'serverinfo', jid: 'reader@localhost/one' }))));
    await reader.xmpp.send(xml('presence'));
    const form1 = await admin.command('vhost-man@localhost', 'comp-repo-item-add');
    const added = await admin.command('vhost-man@localhost', 'comp-repo-item-add', {
      sessionid: form1.sessionid,
      fields: { domain: 'verona.example', enabled: '1', 'anonymous-login': '0', 'in-band-registration': '0', 'tls-required': '0', 'max-users': '0',
        owner: 'admin@localhost', administrators: '', 'presence-forward': '', 'message-forward': '', other: '' },
    });
    assert.equal(added.status, 'completed');
    const event = await reader.waitFor((s) => s.is('message') && s.attrs.from === SERVICE
      && domainsIn(s.getChild('event', NS_EVENT)?.getChild('items')?.getChild('item')?.getChild('serverinfo', NS_SERVERINFO) ?? xml('none')).includes('verona.example'),
    'the new serverinfo item', 10_000);
    assert.deepEqual(domainsIn(event.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')!.getChild('serverinfo', NS_SERVERINFO)), ['localhost', 'verona.example']);
    const replaced = (await getItems(reader)).getChild('pubsub')!.getChild('items')!.getChildren('item');
    assert.equal(replaced.length, 1, 'one item, replaced');

    // Opting out again: the node goes.
    await reader.stop();
    await admin.stop();
    servers.pop();
    t = await t.restart();
    servers.push(t);
    assert.ok(domainsIn((await getItems((reader = await connectClient(t.port, 'reader')))).getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('serverinfo', NS_SERVERINFO)).includes('verona.example'), 'kept across a restart');
    clients.push(reader);
    await reader.stop();
    servers.pop();
    const dataDir = t.dataDir;
    await t.stop(false);
    t = await startTestServer({ admins: ['admin@localhost'], pubsub: { serverinfo: false } }, dataDir);
    servers.push(t);
    reader = await connectClient(t.port, 'reader');
    clients.push(reader);
    assert.ok(!features(await hostInfo(reader)).includes(NS_SERVERINFO));
    assert.equal((await reader.requestError(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS_DISCO_INFO, node: 'serverinfo' })))).condition, 'item-not-found');
  });
});
