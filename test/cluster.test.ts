// Routing across a cluster of three nodes on loopback (test/support/cluster.ts: one PostgreSQL
// schema, one nats-server, node3 in a child process): users on different nodes chat, subscribe
// to each other's presence, get roster pushes, probes and PubSub device state, over TCP and
// WebSocket, anonymous or not; a node killed with SIGKILL takes its users offline cluster-wide
// (to their contacts and to whom they sent directed presence) and messages to them are stored; a restarted NATS is survived.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml as xmlElement } from '@xmpp/client';
import { WebSocket } from 'ws';
import { startTestServer } from './support/server.js';
import { clusterTestsUnavailable } from './support/nats.js';
import { ClusterFixture, presenceFrom, waitUntil } from './support/cluster.js';
import { asteriskState, assertResult, form, iq, nodeConfig, owner, pubsub, NS_EVENT } from './support/pubsub.js';
import { connectClient } from './support/adhoc-client.js';
import { startClient } from './support/xmpp-client.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { capsHash } from '../src/modules/pubsub/caps.js';
import { xml as serverXml } from '../src/xml/element.js';

const skip = clusterTestsUnavailable();
// Node 20 has no global WebSocket; @xmpp/websocket uses the global one, as in a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

describe('cluster: routing between three nodes over NATS and PostgreSQL', { skip }, () => {
  const c = new ClusterFixture(['alice', 'bob', 'carol', 'erin', 'frank', 'gina', 'hank', 'admin']);
  before(async () => { if (!skip) await c.start(); });
  after(async () => { if (!skip) await c.stop(); });

  it('users on different nodes chat, subscribe to presence, and get roster pushes and probes', async () => {
    const alice = await c.login(c.node1, 'alice', 'a');
    const bob = await c.login(c.node2, 'bob', 'b');
    await c.befriend(alice, 'alice@localhost', bob, 'bob@localhost');

    alice.send("<message to='bob@localhost' type='chat' id='m1'><body>hello from node1</body></message>");
    const m1 = await bob.waitForName('message', { id: 'm1' });
    assert.equal(m1.attrs.from, 'alice@localhost/a');
    assert.equal(m1.getChildText('body'), 'hello from node1');
    bob.send("<message to='alice@localhost/a' type='chat' id='m2'><body>hello from node2</body></message>");
    assert.equal((await alice.waitForName('message', { id: 'm2' })).getChildText('body'), 'hello from node2');

    // Presence broadcast across nodes.
    bob.send('<presence><show>away</show></presence>');
    const away = await alice.waitFor((s) => presenceFrom('bob@localhost/b')(s) && s.getChildText('show') === 'away', 10_000, "bob's away");
    assert.equal(away.attrs.to, 'alice@localhost');

    // A roster change on node1 is pushed to alice's resource on node2.
    const alice2 = await c.login(c.node2, 'alice', 'a2', false);
    alice.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'/></query></iq>");
    await alice.waitForName('iq', { id: 'r1' });
    const push = await alice2.waitFor((s) => s.name === 'iq' && s.attrs.type === 'set' && s.getChild('query')?.getChild('item')?.attrs.jid === 'carol@localhost', 10_000, 'the roster push');
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.name, 'Carol');

    // A new resource of bob on node1 probes alice: her resource on node1 and, once available, on node2.
    alice2.send('<presence><status>second</status></presence>');
    await waitUntil(() => c.node1.server.sessions.get('alice@localhost', 'a2')?.presence !== undefined, 'node1 knows alice/a2 is available');
    const bob2 = await c.login(c.node1, 'bob', 'b2');
    const probed = await bob2.waitFor((s) => presenceFrom('alice@localhost/a2')(s) && s.getChildText('status') === 'second', 10_000, "alice/a2's presence");
    assert.equal(probed.attrs.to, 'bob@localhost/b2');
    await bob2.waitFor(presenceFrom('alice@localhost/a'), 10_000, "alice/a's presence");

    // A message to the bare JID reaches the resources on both nodes with the top priority.
    bob.send("<message to='alice@localhost' type='headline' id='m3'><body>to every resource</body></message>");
    await alice.waitForName('message', { id: 'm3' });
    await alice2.waitForName('message', { id: 'm3' });

    // An IQ to a full JID on another node, and its result back.
    alice.send("<iq type='get' to='bob@localhost/b' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    const request = await bob.waitForName('iq', { id: 'v1' });
    assert.equal(request.attrs.from, 'alice@localhost/a');
    bob.send("<iq type='result' to='alice@localhost/a' id='v1'><query xmlns='jabber:iq:version'><name>bob's client</name></query></iq>");
    assert.equal((await alice.waitForName('iq', { id: 'v1' })).attrs.type, 'result');
  });
  it('WebSocket and anonymous users on one node reach users on another; the admin sees online users of every node', async () => {
    const alice = await c.login(c.node1, 'alice', 'w');
    const ws = await startClient(0, 'bob', { service: `ws://127.0.0.1:${c.node2.httpPort}/xmpp-websocket`, resource: 'ws' });
    const anonymous = await startClient(c.node2.port, undefined);
    try {
      await waitUntil(() => c.node1.server.sessions.get('bob@localhost', 'ws') !== undefined && c.node1.server.sessions.resources(anonymous.jid.split('/')[0]!).length === 1, 'node1 knows the WebSocket and anonymous sessions');
      alice.send("<message to='bob@localhost/ws' type='chat' id='w1'><body>to WebSocket</body></message>");
      await ws.waitFor((m) => m.is('message') && m.attrs.id === 'w1', 'the message over WebSocket', 10_000);
      alice.send(`<message to='${anonymous.jid}' type='chat' id='w2'><body>to anonymous</body></message>`);
      await anonymous.waitFor((m) => m.is('message') && m.attrs.id === 'w2', 'the message to the anonymous user', 10_000);

      // The anonymous account's roster lives in node2's memory: alice's answer on node1 reaches it there.
      const anonymousBare = anonymous.jid.split('/')[0]!;
      await anonymous.xmpp.send(xmlElement('presence'));
      await waitUntil(() => c.node1.server.sessions.available(anonymousBare).length === 1, 'node1 knows the anonymous user is available');
      await anonymous.xmpp.send(xmlElement('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await alice.waitFor((p) => p.name === 'presence' && p.attrs.type === 'subscribe' && p.attrs.from === anonymousBare, 10_000, 'the anonymous subscription request');
      alice.send(`<presence to='${anonymousBare}' type='subscribed'/>`);
      await anonymous.waitFor((p) => p.is('presence') && p.attrs.from === 'alice@localhost/w', "alice's presence for the anonymous user", 10_000);

      const admin = await connectClient(c.node1.port, 'admin');
      try {
        const list = await admin.command('localhost', 'http://jabber.org/protocol/admin#get-online-users-list', { fields: { max_items: 'none' } });
        for (const jid of ['alice@localhost', 'bob@localhost', anonymousBare]) assert.ok(list.values.onlineuserjids!.includes(jid), `${jid} online: ${list.values.onlineuserjids}`);
      } finally {
        await admin.stop();
      }
    } finally {
      await ws.xmpp.stop();
      await anonymous.xmpp.stop();
    }
  });
  it('PEP: a contact on another node gets notifications its caps ask for, and reads what was published elsewhere', async () => {
    const NS_TUNE = 'http://jabber.org/protocol/tune';
    const features = ['http://jabber.org/protocol/disco#info', `${NS_TUNE}+notify`];
    const ver = capsHash(serverXml('query', null, serverXml('identity', { category: 'client', type: 'pc', name: 'Test' }),
      features.map((f) => serverXml('feature', { var: f }))), 'sha-1')!;
    const alice = await startClient(c.node1.port, 'alice', { resource: 'pep' });
    const bob = await startClient(c.node2.port, 'bob', { resource: 'pep' });
    try {
      alice.xmpp.iqCallee.get('http://jabber.org/protocol/disco#info', 'query', (q: { element: { attrs: { node?: string } } }) => xmlElement('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: q.element.attrs.node },
        xmlElement('identity', { category: 'client', type: 'pc', name: 'Test' }), features.map((f) => xmlElement('feature', { var: f }))));
      // alice and bob are contacts since the first test; alice's caps are learnt on node1 and shared.
      await alice.xmpp.send(xmlElement('presence', {}, xmlElement('c', { xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1', node: 'https://switchboard.test/client', ver })));
      await bob.xmpp.send(xmlElement('presence'));
      await waitUntil(() => c.node2.server.sessions.get('alice@localhost', 'pep')?.presence !== undefined, 'node2 knows alice/pep is available');
      const publish = (id: string, title: string) => bob.xmpp.iqCaller.request(xmlElement('iq', { type: 'set' },
        xmlElement('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xmlElement('publish', { node: NS_TUNE }, xmlElement('item', { id }, xmlElement('tune', { xmlns: NS_TUNE }, xmlElement('title', {}, title)))))));
      const isEvent = (id: string) => (m: { is(n: string): boolean; attrs: Record<string, string>; getChild(n: string, ns?: string): any }) => m.is('message') && m.attrs.from === 'bob@localhost'
        && m.getChild('event', 'http://jabber.org/protocol/pubsub#event')?.getChild('items')?.getChild('item')?.attrs.id === id;
      // Until node2 has learnt alice's caps, a publish may not reach her; then every one does.
      const deadline = Date.now() + 15_000;
      for (let n = 1; ; n++) {
        await publish(`t${n}`, `song ${n}`);
        try {
          await alice.waitFor(isEvent(`t${n}`) as never, 'the tune event', 1000);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw e;
        }
      }
      // node1 reads bob's PEP as published on node2, also after reading it once (its copy is renewed).
      const newest = async () => (await alice.xmpp.iqCaller.request(xmlElement('iq', { type: 'get', to: 'bob@localhost' },
        xmlElement('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xmlElement('items', { node: NS_TUNE, max_items: '1' })))))
        .getChild('pubsub')?.getChild('items')?.getChild('item')?.attrs.id;
      assert.match(await newest(), /^t\d+$/);
      await publish('last', 'the last song');
      await alice.waitFor(isEvent('last') as never, 'the last tune event', 10_000);
      const readBy = Date.now() + 10_000;
      while ((await newest()) !== 'last') assert.ok(Date.now() < readBy, 'node1 reads the newest item');
    } finally {
      await alice.xmpp.stop();
      await bob.xmpp.stop();
    }
  });

  it('PubSub device state published on one node reaches subscribers on others, flat and through collections', async () => {
    const erin = await c.login(c.node2, 'erin', 'astvoip2');
    const carol = await c.login(c.node3Ports, 'carol', 'astvoip3');
    assertResult(await iq(erin, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('NOT_INUSE')}</item></publish>`)));
    assertResult(await iq(carol, pubsub("<subscribe node='device_state' jid='carol@localhost/astvoip3'/>")));
    assertResult(await iq(erin, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('INUSE')}</item></publish>`)));
    const event = await carol.waitFor((s) => s.name === 'message' && s.getChild('event', NS_EVENT)?.getChild('items')?.getChild('item')?.attrs.id === 'SIP/100'
      && s.toString().includes('INUSE') && !s.toString().includes('NOT_INUSE'), 10_000, 'the device state event');
    assert.equal(event.attrs.to, 'carol@localhost/astvoip3');
    // The device-state view is the same whichever node is asked.
    for (const t of [c.node1, c.node2]) {
      const response = await fetch(`http://127.0.0.1:${t.httpPort}/api/device-states`, { headers: { Authorization: `Basic ${Buffer.from('admin@localhost:secret').toString('base64')}` } });
      assert.equal(response.status, 200);
      const body = await response.json() as { devices: { device: string; state: string }[] };
      assert.equal(body.devices.find((d) => d.device === 'SIP/100')?.state, 'INUSE', `node ${t.config.cluster['node-name']}`);
    }

    // Collections (XEP-0248): a leaf published on node2 reaches the collection's subscriber on node3.
    assertResult(await iq(erin, pubsub(`<create node='site'/><configure>${nodeConfig({ 'pubsub#node_type': 'collection' })}</configure>`)));
    assertResult(await iq(erin, pubsub(`<create node='site/desk'/><configure>${nodeConfig({ 'pubsub#collection': 'site' })}</configure>`)));
    assertResult(await iq(carol, pubsub("<subscribe node='site' jid='carol@localhost/astvoip3'/>")));
    assertResult(await iq(erin, pubsub(`<publish node='site/desk'><item id='desk1'>${asteriskState('RINGING')}</item></publish>`)));
    await carol.waitFor((s) => s.name === 'message' && s.getChild('event', NS_EVENT)?.getChild('items')?.attrs.node === 'site/desk'
      && s.getChild('event', NS_EVENT)!.getChild('items')!.getChild('item')?.attrs.id === 'desk1', 10_000, 'the collection event');
    carol.destroy();
    await waitUntil(() => c.node1.server.sessions.get('carol@localhost', 'astvoip3') === undefined, 'carol is gone');
  });
  it('expire=presence subscriptions end with the session on whichever node it was, and survive another node starting', async () => {
    const presenceOptions = `<options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#expire': 'presence' })}</options>`;
    const erin = await c.login(c.node2, 'erin', 'owner');
    const subscriptions = async () => {
      const reply = await iq(erin, owner("<subscriptions node='live'/>"), 'get');
      assertResult(reply);
      return reply.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((x) => x.attrs.jid).sort();
    };
    assertResult(await iq(erin, pubsub("<create node='live'/>")));
    const carol = await c.login(c.node3Ports, 'carol', 'p');
    const bob = await c.login(c.node2, 'bob', 'p');
    assertResult(await iq(carol, pubsub(`<subscribe node='live' jid='carol@localhost/p'/>${presenceOptions}`)));
    assertResult(await iq(bob, pubsub(`<subscribe node='live' jid='bob@localhost/p'/>${presenceOptions}`)));
    assert.deepEqual(await subscriptions(), ['bob@localhost/p', 'carol@localhost/p']);

    // Asterisk stops with a bare TCP close on node3; the serving node ends the subscription.
    carol.destroy();
    const deadline = Date.now() + 10_000;
    while ((await subscriptions()).includes('carol@localhost/p')) {
      assert.ok(Date.now() < deadline, 'carol\'s subscription ended');
      await new Promise((r) => setTimeout(r, 100));
    }

    // An account deleted on node2 loses its subscriptions on the serving node too.
    const gina = await c.login(c.node2, 'gina', 'g');
    assertResult(await iq(gina, pubsub("<subscribe node='live' jid='gina@localhost'/>")));
    assert.ok((await subscriptions()).includes('gina@localhost'));
    const admin = await connectClient(c.node2.port, 'admin');
    try {
      await admin.command('localhost', 'http://jabber.org/protocol/admin#delete-user', { fields: { accountjids: ['gina@localhost'] } });
    } finally {
      await admin.stop();
    }
    const deletedBy = Date.now() + 10_000;
    while ((await subscriptions()).includes('gina@localhost')) {
      assert.ok(Date.now() < deletedBy, 'the deleted account\'s subscription ended');
      await new Promise((r) => setTimeout(r, 100));
    }

    // A node starting drops only the presence subscriptions of subscribers unavailable everywhere.
    const node4 = await startTestServer(c.overrides('node4'));
    try {
      assert.deepEqual(await subscriptions(), ['bob@localhost/p']);
      assert.ok(node4.server.sessions.get('bob@localhost', 'p')?.presence, 'node4 knew bob when its modules started');
    } finally {
      await node4.stop(true);
    }
    await waitUntil(() => c.node1.server.cluster.nodes().find((n) => n.name === 'node4')?.state === 'disconnected', 'node4 left');
    assertResult(await iq(erin, pubsub(`<publish node='live'><item id='x'>${asteriskState('BUSY')}</item></publish>`)));
    await bob.waitFor((m) => m.name === 'message' && !!m.getChild('event', NS_EVENT), 10_000, 'the event for bob');
    bob.destroy();
  });
  it('a node killed with SIGKILL: its users go unavailable everywhere, messages to them are stored; restarted, it serves them again', async () => {
    const alice = await c.login(c.node1, 'alice', 'k');
    const frank = await c.login(c.node3Ports, 'frank', 'f');
    await c.befriend(alice, 'alice@localhost', frank, 'frank@localhost');
    await alice.waitFor(presenceFrom('frank@localhost/f'), 10_000, "frank's presence");
    // Directed presence to a non-contact on another node (RFC 6121 4.6) ends with the node too.
    const hank = await c.login(c.node2, 'hank', 'd');
    frank.send("<presence to='hank@localhost/d'><status>directed</status></presence>");
    await hank.waitFor(presenceFrom('frank@localhost/f'), 10_000, "frank's directed presence");
    await waitUntil(() => c.node1.server.sessions.get('frank@localhost', 'f')?.directedPresence.has('hank@localhost/d') === true, 'node1 knows whom frank sent directed presence to');

    c.killNode3();
    const gone = await alice.waitFor(presenceFrom('frank@localhost/f', 'unavailable'), 15_000, "frank's unavailable presence");
    assert.equal(gone.attrs.to, 'alice@localhost');
    await hank.waitFor(presenceFrom('frank@localhost/f', 'unavailable'), 15_000, "frank's unavailable presence after his directed presence");
    await waitUntil(() => c.node2.server.sessions.get('frank@localhost', 'f') === undefined, 'node2 drops the session too');
    assert.equal(c.node1.server.cluster.nodes().find((n) => n.name === 'node3')?.state, 'disconnected');

    alice.send("<message to='frank@localhost' type='chat' id='off1'><body>while you were down</body></message>");
    await alice.expectNothing((s) => s.name === 'message' && s.attrs.id === 'off1' && s.attrs.type === 'error', 500);

    await c.startNode3();
    const back = await c.login(c.node3Ports, 'frank', 'f');
    const stored = await back.waitForName('message', { id: 'off1' });
    assert.equal(stored.getChildText('body'), 'while you were down');
    await alice.waitFor(presenceFrom('frank@localhost/f'), 10_000, "frank's presence after the restart");
  });
  it('a node cut off from NATS is taken for dead; back, its users are announced again', async () => {
    const proxy = await TcpProxy.start(c.nats.port);
    const node5 = await startTestServer({ ...c.overrides('node5'), cluster: { ...(c.overrides('node5').cluster as object), 'nats-url': `nats://127.0.0.1:${proxy.port}` } });
    try {
      await waitUntil(() => c.node1.server.cluster.nodes().some((n) => n.name === 'node5' && n.state === 'connected'), 'node1 sees node5');
      const alice = await c.login(c.node1, 'alice', 'p');
      const hank = await c.login(node5, 'hank', 'h');
      await c.befriend(alice, 'alice@localhost', hank, 'hank@localhost');
      await alice.waitFor(presenceFrom('hank@localhost/h'), 10_000, "hank's presence");

      await proxy.pause();
      await alice.waitFor(presenceFrom('hank@localhost/h', 'unavailable'), 15_000, "hank's unavailable presence while node5 is cut off");
      // The partition lasts a while longer, as real ones do.
      await new Promise((r) => setTimeout(r, 1000));
      await proxy.resume();
      await alice.waitFor(presenceFrom('hank@localhost/h'), 15_000, "hank's presence once node5 is back");
      await waitUntil(() => c.node1.server.sessions.get('hank@localhost', 'h')?.presence !== undefined, 'node1 knows hank again');
      hank.destroy();
    } finally {
      await node5.stop(true);
      await proxy.pause();
    }
  });

  it('NATS restarted: nodes reconnect, nobody is taken for dead, sessions bound meanwhile are learnt', async () => {
    const alice = await c.login(c.node1, 'alice', 'n');
    const bob = await c.login(c.node2, 'bob', 'n');
    await alice.waitFor(presenceFrom('bob@localhost/n'), 10_000, "bob's presence");

    await c.nats.stop();
    const late = await c.login(c.node2, 'bob', 'during-outage', '<presence/>', false);
    await c.nats.start();

    await waitUntil(() => c.node1.server.sessions.get('bob@localhost', 'during-outage') !== undefined, 'node1 learns the session bound during the outage', 20_000);
    alice.send("<message to='bob@localhost/during-outage' type='chat' id='n1'><body>after the restart</body></message>");
    assert.equal((await late.waitForName('message', { id: 'n1' })).getChildText('body'), 'after the restart');
    alice.send("<message to='bob@localhost/n' type='chat' id='n2'><body>still there?</body></message>");
    await bob.waitForName('message', { id: 'n2' });
    assert.ok(!alice.stanzas.some(presenceFrom('bob@localhost/n', 'unavailable')), 'bob was never taken for gone');
    for (const t of [c.node1, c.node2]) {
      assert.deepEqual(t.server.cluster.nodes().map((n) => [n.name, n.state]), [['node1', 'connected'], ['node2', 'connected'], ['node3', 'connected'], ['node4', 'disconnected'], ['node5', 'disconnected']]);
    }
  });
});
