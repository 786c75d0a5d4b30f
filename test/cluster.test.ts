// A cluster of three nodes on loopback sharing one PostgreSQL schema and one nats-server:
// two in-process nodes and one child process that the test can kill (SIGKILL, a crash).
// Users on different nodes chat, subscribe to each other's presence, get roster pushes and
// PubSub device state; a killed node's users go offline cluster-wide and get their messages
// stored; a restarted NATS is survived.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, startTestServer, type TestServer } from './support/server.js';
import type { ServerProcessSpec } from './support/server-process.js';
import { RawClient } from './support/raw-client.js';
import { backends } from './support/postgres.js';
import { clusterTestsUnavailable, NatsServer } from './support/nats.js';
import { asteriskState, assertResult, form, iq, owner, pubsub, NS_EVENT } from './support/pubsub.js';
import type { Element } from '../src/xml/element.js';
import { xml as xmlElement } from '@xmpp/client';
import { WebSocket } from 'ws';
import { connectClient } from './support/adhoc-client.js';
import { main } from '../src/main.js';
import { BoshClient } from './support/bosh-client.js';
import { startClient } from './support/xmpp-client.js';

const skip = clusterTestsUnavailable();
// Node 20 has no global WebSocket; @xmpp/websocket uses the global one, as in a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/** Polls until `check` holds; the machine may be loaded, so the wait is generous. */
async function waitUntil(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Opens a stream from a given loopback source address (127.0.0.x: banning it leaves the other
 * tests' 127.0.0.1 alone) and tries `attempts` wrong passwords; resolves to everything received.
 */
function wrongPasswords(port: number, from: string, attempts: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ port, host: '127.0.0.1', localAddress: from });
    let received = '';
    let tried = 0;
    const attempt = () => {
      tried++;
      socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0wrong').toString('base64')}</auth>`);
    };
    socket.on('connect', () => socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`));
    socket.on('data', (d) => {
      const before = received;
      received += d.toString();
      if (!before.includes('</stream:features>') && received.includes('</stream:features>')) {
        if (attempts > 0) attempt();
        else socket.end();
      }
      else if ((received.match(/<\/failure>/g) ?? []).length === tried && tried < attempts && received.length > before.length && received.endsWith('</failure>')) attempt();
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    setTimeout(() => { socket.destroy(); }, 10_000).unref();
  });
}

const presenceFrom = (jid: string, type?: string) => (s: Element) =>
  s.name === 'presence' && s.attrs.from === jid && s.attrs.type === type;

describe('cluster: three nodes over NATS and PostgreSQL', { skip }, () => {
  const postgres = skip ? undefined : backends().find((b) => b.name === 'postgres')!;
  let nats: NatsServer;
  let storage: Record<string, unknown>;
  let node1: TestServer;
  let node2: TestServer;
  let node3: ChildProcess | undefined;
  let node3Ports: { port: number; tlsPort: number };
  const node3Data = mkdtempSync(join(tmpdir(), 'switchboard-node3-'));
  const clients: RawClient[] = [];

  const overrides = (name: string) => ({
    storage,
    admins: ['admin@localhost'],
    'vhost-options': { localhost: { 'anonymous-login': true } },
    bans: { 'auth-failures': 3, 'ban-time': 600 },
    'cluster-mode': true,
    cluster: { 'nats-url': nats.url, 'node-name': name, 'heartbeat-interval': 0.3, 'max-inactivity-time': 2.5, 'request-timeout': 3 },
  });

  async function startNode3(): Promise<void> {
    const spec: ServerProcessSpec = { overrides: overrides('node3'), dataDir: node3Data, ...node3Ports, users: [] };
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'server-process.ts'), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`node3 exited (${code}) before it was ready`)));
    });
    node3 = child;
    await waitUntil(() => node1.server.cluster.nodes().some((n) => n.name === 'node3' && n.state === 'connected'), 'node1 sees node3');
  }

  async function login(node: { port: number }, user: string, resource: string, presence: string | false = '<presence/>', waitForNodes = true): Promise<RawClient> {
    const c = await RawClient.connect(node.port);
    clients.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    c.send(`<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>`);
    await c.waitForName('iq', { id: 'roster' });
    if (presence) {
      c.send(presence);
      if (!waitForNodes) return c;
      // Other nodes learn of it a moment later (the directory); stanzas routed before then see the user unavailable.
      await waitUntil(() => [node1, node2].every((t) => t.server.sessions.get(`${user}@localhost`, resource)?.presence !== undefined), `every node knows ${user}/${resource} is available`);
    }
    return c;
  }

  /** Mutual presence subscription between two logged-in users, each answering on its own node. */
  async function befriend(a: RawClient, aJid: string, b: RawClient, bJid: string): Promise<void> {
    for (const [asker, askerJid, approver, approverJid] of [[a, aJid, b, bJid], [b, bJid, a, aJid]] as const) {
      asker.send(`<presence to='${approverJid}' type='subscribe'/>`);
      await approver.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === askerJid, 10_000, 'a subscription request');
      approver.send(`<presence to='${askerJid}' type='subscribed'/>`);
      await asker.waitFor((s) => s.name === 'iq' && s.getChild('query')?.getChild('item')?.attrs.jid === approverJid
        && ['to', 'both'].includes(s.getChild('query')!.getChild('item')!.attrs.subscription!), 10_000, 'the roster push of the approval');
    }
  }

  before(async () => {
    if (skip) return;
    nats = await NatsServer.start();
    storage = await postgres!.storage();
    const [port, tlsPort] = await freePorts(2);
    node3Ports = { port: port!, tlsPort: tlsPort! };
    node1 = await startTestServer(overrides('node1'));
    node2 = await startTestServer(overrides('node2'));
    for (const u of ['alice', 'bob', 'carol', 'erin', 'frank', 'admin']) await node1.addUser(`${u}@localhost`);
    await startNode3();
    await waitUntil(() => node2.server.cluster.nodes().filter((n) => n.state === 'connected').length === 3, 'node2 sees three nodes');
  });

  after(async () => {
    if (skip) return;
    for (const c of clients) c.destroy();
    node3?.kill('SIGKILL');
    await node1?.stop(true);
    await node2?.stop(true);
    await nats?.stop();
    await postgres!.cleanup();
    rmSync(node3Data, { recursive: true, force: true });
  });

  it('users on different nodes chat, subscribe to presence, and get roster pushes and probes', async () => {
    const alice = await login(node1, 'alice', 'a');
    const bob = await login(node2, 'bob', 'b');
    await befriend(alice, 'alice@localhost', bob, 'bob@localhost');

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
    const alice2 = await login(node2, 'alice', 'a2', false);
    alice.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'/></query></iq>");
    await alice.waitForName('iq', { id: 'r1' });
    const push = await alice2.waitFor((s) => s.name === 'iq' && s.attrs.type === 'set' && s.getChild('query')?.getChild('item')?.attrs.jid === 'carol@localhost', 10_000, 'the roster push');
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.name, 'Carol');

    // A new resource of bob on node1 probes alice: her resource on node1 and, once available, on node2.
    alice2.send('<presence><status>second</status></presence>');
    await waitUntil(() => node1.server.sessions.get('alice@localhost', 'a2')?.presence !== undefined, 'node1 knows alice/a2 is available');
    const bob2 = await login(node1, 'bob', 'b2');
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
    const alice = await login(node1, 'alice', 'w');
    const ws = await startClient(0, 'bob', { service: `ws://127.0.0.1:${node2.httpPort}/xmpp-websocket`, resource: 'ws' });
    const anonymous = await startClient(node2.port, undefined);
    try {
      await waitUntil(() => node1.server.sessions.get('bob@localhost', 'ws') !== undefined && node1.server.sessions.resources(anonymous.jid.split('/')[0]!).length === 1, 'node1 knows the WebSocket and anonymous sessions');
      alice.send("<message to='bob@localhost/ws' type='chat' id='w1'><body>to WebSocket</body></message>");
      await ws.waitFor((m) => m.is('message') && m.attrs.id === 'w1', 'the message over WebSocket', 10_000);
      alice.send(`<message to='${anonymous.jid}' type='chat' id='w2'><body>to anonymous</body></message>`);
      await anonymous.waitFor((m) => m.is('message') && m.attrs.id === 'w2', 'the message to the anonymous user', 10_000);

      // The anonymous account's roster lives in node2's memory: alice's answer on node1 reaches it there.
      const anonymousBare = anonymous.jid.split('/')[0]!;
      await anonymous.xmpp.send(xmlElement('presence'));
      await waitUntil(() => node1.server.sessions.available(anonymousBare).length === 1, 'node1 knows the anonymous user is available');
      await anonymous.xmpp.send(xmlElement('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await alice.waitFor((p) => p.name === 'presence' && p.attrs.type === 'subscribe' && p.attrs.from === anonymousBare, 10_000, 'the anonymous subscription request');
      alice.send(`<presence to='${anonymousBare}' type='subscribed'/>`);
      await anonymous.waitFor((p) => p.is('presence') && p.attrs.from === 'alice@localhost/w', "alice's presence for the anonymous user", 10_000);

      const admin = await connectClient(node1.port, 'admin');
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

  it('administrators see the nodes (cl-comp disco items, status command) and locate a user cluster-wide', async () => {
    const alice = await login(node1, 'alice', 'located');
    const admin = await connectClient(node2.port, 'admin');
    try {
      const items = await admin.items('cl-comp@localhost');
      assert.deepEqual(items.filter((i) => i.node?.startsWith('node/')).map((i) => i.name), ['node1 (connected)', 'node2 (connected)', 'node3 (connected)']);
      const status = await admin.command('cl-comp@localhost', 'urn:switchboard:cluster#status');
      assert.equal(status.status, 'completed');
      assert.equal(status.values.nodes!.length, 3);
      const located = await admin.command('cl-comp@localhost', 'urn:switchboard:cluster#locate-user', { fields: { accountjid: 'alice@localhost' } });
      const lines = located.values.locations!;
      const line = lines.find((l) => l.includes('alice@localhost/located'));
      assert.ok(line?.startsWith('node1: alice@localhost/located from 127.0.0.1 since '), `located: ${lines.join(' | ')}`);
      const nobody = await admin.command('cl-comp@localhost', 'urn:switchboard:cluster#locate-user', { fields: { accountjid: 'carol@localhost' } });
      assert.deepEqual(nobody.values.locations ?? [], []);
      assert.match(nobody.notes[0]!.text, /not connected/);
      // Not for ordinary users.
      alice.send("<iq type='get' to='cl-comp@localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
      assert.equal((await alice.waitForName('iq', { id: 'd1' })).attrs.type, 'error');
    } finally {
      await admin.stop();
    }
  });

  it('an address failing to authenticate on one node is banned on every node; an administrator lifts and sets bans', async () => {
    const tries = await wrongPasswords(node2.port, '127.0.0.2', 3);
    assert.equal((tries.match(/<not-authorized\/>/g) ?? []).length, 3, tries);
    for (const port of [node1.port, node3Ports.port, node2.port]) {
      let refused = '';
      const deadline = Date.now() + 10_000;
      while (!refused.includes('banned')) {
        assert.ok(Date.now() < deadline, `refused on ${port}: ${refused}`);
        refused = await wrongPasswords(port, '127.0.0.2', 0);
      }
      assert.match(refused, /<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>your address is banned until /);
    }
    // Other addresses are not affected.
    assert.ok((await wrongPasswords(node1.port, '127.0.0.3', 1)).includes('<not-authorized/>'));

    const admin = await connectClient(node1.port, 'admin');
    try {
      const listed = await admin.command('sess-man@localhost', 'urn:switchboard:bans#list');
      assert.ok(listed.values.bans!.some((b) => b.startsWith('127.0.0.2 until ')), listed.values.bans!.join(' | '));
      const lifted = await admin.command('sess-man@localhost', 'urn:switchboard:bans#unban', { fields: { address: '127.0.0.2' } });
      assert.match(lifted.notes[0]!.text, /lifted on 3 node\(s\)/);
      assert.ok((await wrongPasswords(node3Ports.port, '127.0.0.2', 1)).includes('<not-authorized/>'), 'node3 accepts 127.0.0.2 again');
      const banned = await admin.command('sess-man@localhost', 'urn:switchboard:bans#ban', { fields: { address: '127.0.0.4', seconds: '300' } });
      assert.match(banned.notes[0]!.text, /banned until .* on 3 node\(s\)/);
      assert.match(await wrongPasswords(node2.port, '127.0.0.4', 0), /your address is banned/);
      const bad = await admin.commandError('sess-man@localhost', 'urn:switchboard:bans#ban', { fields: { address: 'not-an-address' } });
      assert.equal(bad.condition, 'bad-request');
      await admin.command('sess-man@localhost', 'urn:switchboard:bans#unban', { fields: { address: '127.0.0.4' } });
    } finally {
      await admin.stop();
    }
  });

  it('BOSH names the node serving the session in the host attribute (seed 11.10.2)', async () => {
    for (const [t, name] of [[node1, 'node1'], [node2, 'node2']] as const) {
      const created = await new BoshClient(t.boshPort).create();
      assert.equal(created.attrs.host, name);
    }
  });

  it('switchboard cluster status lists the nodes as the running nodes see them', async () => {
    const file = join(node3Data, 'status.yaml');
    writeFileSync(file, JSON.stringify({ 'data-dir': node3Data, storage, 'cluster-mode': true, cluster: { 'nats-url': nats.url, 'request-timeout': 1 } }));
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => { printed.push(line); };
    let code: number;
    try {
      code = await main(['cluster', 'status', '-c', file]);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0, printed.join('\n'));
    assert.match(printed[0]!, /^NODE\s+STATE\s+SESSIONS\s+SINCE$/);
    assert.deepEqual(printed.slice(1).map((l) => l.split(/\s+/).slice(0, 2)), [['node1', 'connected'], ['node2', 'connected'], ['node3', 'connected']]);
  });

  it('a custom event raised by an admin script on one node is answered by the scripts of the other nodes', async () => {
    const addScript = (admin: Awaited<ReturnType<typeof connectClient>>, id: string, text: string) =>
      admin.command('sess-man@localhost', 'add-script', { fields: { description: `Script ${id}`, 'command-id': id, language: 'js', 'script-text': text.split('\n'), 'save-to-disk': '0' } });
    const answer = "// AS:ClusterEvent: whoami\nif (packet.event) return 'asked by ' + packet.fromNode + ' for ' + packet.payload.x;\nreturn 'not an event';";
    const admins = await Promise.all([node1.port, node2.port, node3Ports.port].map((port) => connectClient(port, 'admin')));
    try {
      for (const admin of admins.slice(1)) assert.equal((await addScript(admin, 'whoami-answer', answer)).status, 'completed');
      await addScript(admins[0]!, 'ask-whoami', "return Cluster.request('whoami', { x: 7 }).then((replies) => replies.map((r) => r.node + '=' + (r.value ?? r.error)).join('; '));");
      const asked = await admins[0]!.command('sess-man@localhost', 'http://jabber.org/protocol/admin#ask-whoami');
      assert.equal(asked.notes[0]!.text, 'node2=asked by node1 for 7; node3=asked by node1 for 7');
    } finally {
      for (const admin of admins) await admin.stop();
    }
  });

  it('PubSub device state published on one node reaches subscribers on others', async () => {
    const erin = await login(node2, 'erin', 'astvoip2');
    const carol = await login(node3Ports, 'carol', 'astvoip3');
    assertResult(await iq(erin, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('NOT_INUSE')}</item></publish>`)));
    assertResult(await iq(carol, pubsub("<subscribe node='device_state' jid='carol@localhost/astvoip3'/>")));
    assertResult(await iq(erin, pubsub(`<publish node='device_state'><item id='SIP/100'>${asteriskState('INUSE')}</item></publish>`)));
    const event = await carol.waitFor((s) => s.name === 'message' && s.getChild('event', NS_EVENT)?.getChild('items')?.getChild('item')?.attrs.id === 'SIP/100'
      && s.toString().includes('INUSE') && !s.toString().includes('NOT_INUSE'), 10_000, 'the device state event');
    assert.equal(event.attrs.to, 'carol@localhost/astvoip3');
    // The device-state view is the same whichever node is asked.
    for (const t of [node1, node2]) {
      const response = await fetch(`http://127.0.0.1:${t.httpPort}/api/device-states`, { headers: { Authorization: `Basic ${Buffer.from('admin@localhost:secret').toString('base64')}` } });
      assert.equal(response.status, 200);
      const body = await response.json() as { devices: { device: string; state: string }[] };
      assert.equal(body.devices.find((d) => d.device === 'SIP/100')?.state, 'INUSE', `node ${t.config.cluster['node-name']}`);
    }
    carol.destroy();
    await waitUntil(() => node1.server.sessions.get('carol@localhost', 'astvoip3') === undefined, 'carol is gone');
  });

  it('expire=presence subscriptions end with the session on whichever node it was, and survive another node starting', async () => {
    const presenceOptions = `<options>${form('http://jabber.org/protocol/pubsub#subscribe_options', { 'pubsub#expire': 'presence' })}</options>`;
    const erin = await login(node2, 'erin', 'owner');
    const subscriptions = async () => {
      const reply = await iq(erin, owner("<subscriptions node='live'/>"), 'get');
      assertResult(reply);
      return reply.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((x) => x.attrs.jid).sort();
    };
    assertResult(await iq(erin, pubsub("<create node='live'/>")));
    const carol = await login(node3Ports, 'carol', 'p');
    const bob = await login(node2, 'bob', 'p');
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

    // A node starting drops only the presence subscriptions of subscribers unavailable everywhere.
    const node4 = await startTestServer(overrides('node4'));
    try {
      assert.deepEqual(await subscriptions(), ['bob@localhost/p']);
      assert.ok(node4.server.sessions.get('bob@localhost', 'p')?.presence, 'node4 knew bob when its modules started');
    } finally {
      await node4.stop(true);
    }
    await waitUntil(() => node1.server.cluster.nodes().find((n) => n.name === 'node4')?.state === 'disconnected', 'node4 left');
    assertResult(await iq(erin, pubsub(`<publish node='live'><item id='x'>${asteriskState('BUSY')}</item></publish>`)));
    await bob.waitFor((m) => m.name === 'message' && !!m.getChild('event', NS_EVENT), 10_000, 'the event for bob');
    bob.destroy();
  });

  it('a node killed with SIGKILL: its users go unavailable everywhere, messages to them are stored; restarted, it serves them again', async () => {
    const alice = await login(node1, 'alice', 'k');
    const frank = await login(node3Ports, 'frank', 'f');
    await befriend(alice, 'alice@localhost', frank, 'frank@localhost');
    await alice.waitFor(presenceFrom('frank@localhost/f'), 10_000, "frank's presence");

    node3!.kill('SIGKILL');
    node3 = undefined;
    const gone = await alice.waitFor(presenceFrom('frank@localhost/f', 'unavailable'), 15_000, "frank's unavailable presence");
    assert.equal(gone.attrs.to, 'alice@localhost');
    await waitUntil(() => node2.server.sessions.get('frank@localhost', 'f') === undefined, 'node2 drops the session too');
    assert.equal(node1.server.cluster.nodes().find((n) => n.name === 'node3')?.state, 'disconnected');

    alice.send("<message to='frank@localhost' type='chat' id='off1'><body>while you were down</body></message>");
    await alice.expectNothing((s) => s.name === 'message' && s.attrs.id === 'off1' && s.attrs.type === 'error', 500);

    await startNode3();
    const back = await login(node3Ports, 'frank', 'f');
    const stored = await back.waitForName('message', { id: 'off1' });
    assert.equal(stored.getChildText('body'), 'while you were down');
    await alice.waitFor(presenceFrom('frank@localhost/f'), 10_000, "frank's presence after the restart");
  });

  it('NATS restarted: nodes reconnect, nobody is taken for dead, sessions bound meanwhile are learnt', async () => {
    const alice = await login(node1, 'alice', 'n');
    const bob = await login(node2, 'bob', 'n');
    await alice.waitFor(presenceFrom('bob@localhost/n'), 10_000, "bob's presence");

    await nats.stop();
    const late = await login(node2, 'bob', 'during-outage', '<presence/>', false);
    await nats.start();

    await waitUntil(() => node1.server.sessions.get('bob@localhost', 'during-outage') !== undefined, 'node1 learns the session bound during the outage', 20_000);
    alice.send("<message to='bob@localhost/during-outage' type='chat' id='n1'><body>after the restart</body></message>");
    assert.equal((await late.waitForName('message', { id: 'n1' })).getChildText('body'), 'after the restart');
    alice.send("<message to='bob@localhost/n' type='chat' id='n2'><body>still there?</body></message>");
    await bob.waitForName('message', { id: 'n2' });
    assert.ok(!alice.stanzas.some(presenceFrom('bob@localhost/n', 'unavailable')), 'bob was never taken for gone');
    for (const t of [node1, node2]) {
      assert.deepEqual(t.server.cluster.nodes().map((n) => [n.name, n.state]), [['node1', 'connected'], ['node2', 'connected'], ['node3', 'connected'], ['node4', 'disconnected']]);
    }
  });
});
