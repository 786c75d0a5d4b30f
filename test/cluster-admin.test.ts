// Cluster administration on three nodes (test/support/cluster.ts): the Cluster Connection
// Manager and `switchboard cluster status`, locating a user, shared attacker bans, custom events
// between admin scripts, and the BOSH host attribute naming the node.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectTcp } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterTestsUnavailable } from './support/nats.js';
import { ClusterFixture } from './support/cluster.js';
import { connectClient } from './support/adhoc-client.js';
import { BoshClient } from './support/bosh-client.js';
import { main } from '../src/main.js';
import { AdminWebClient } from './support/admin-web-client.js';
import { RawClient } from './support/raw-client.js';

const skip = clusterTestsUnavailable();

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
      } else if (tried < attempts && received.endsWith('</failure>') && (received.match(/<\/failure>/g) ?? []).length === tried) {
        attempt();
      }
    });
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    setTimeout(() => { socket.destroy(); }, 10_000).unref();
  });
}

describe('cluster: administration of three nodes', { skip }, () => {
  const c = new ClusterFixture(['alice', 'carol', 'admin']);
  before(async () => { if (!skip) await c.start(); });
  after(async () => { if (!skip) await c.stop(); });

  it('administrators see the nodes (cl-comp disco items, status command) and locate a user cluster-wide', async () => {
    const alice = await c.login(c.node1, 'alice', 'located');
    const admin = await connectClient(c.node2.port, 'admin');
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
  it('the admin web UI lists the nodes on its Cluster page', async () => {
    const web = new AdminWebClient(c.node2.httpPort, '127.0.0.9');
    assert.equal((await web.login('admin@localhost', 'secret')).status, 303);
    const page = await web.get('/admin/cluster');
    assert.equal(page.status, 200);
    assert.match(page.text, /3 of 3 node\(s\) connected/);
    for (const name of ['node1', 'node2 (this node)', 'node3']) assert.ok(page.text.includes(`<td>${name}</td><td>connected</td>`), `${name} connected in ${page.text}`);
  });

  it('a virtual host added, changed and removed on one node takes effect on every node', async () => {
    const admin = await connectClient(c.node1.port, 'admin');
    try {
      const form = await admin.command('vhost-man@localhost', 'comp-repo-item-add');
      await admin.command('vhost-man@localhost', 'comp-repo-item-add', { sessionid: form.sessionid, fields: { domain: 'branch.example', enabled: '1', owner: 'admin@localhost' } });
      await c.node1.addUser('dave@branch.example');
      for (const node of [c.node2, c.node3Ports]) {
        let client: RawClient | undefined;
        const deadline = Date.now() + 10_000;
        for (;;) {
          client = await RawClient.connect(node.port);
          try {
            await client.login('dave', 'secret', 'branch.example', 'r');
            break;
          } catch (e) {
            client.destroy();
            if (Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        client.destroy();
      }
      await admin.command('vhost-man@localhost', 'comp-repo-item-remove', { fields: { domain: 'branch.example' } });
      const waitGone = Date.now() + 10_000;
      while (c.node2.server.vhosts.has('branch.example')) {
        assert.ok(Date.now() < waitGone, 'node2 no longer serves branch.example');
        await new Promise((r) => setTimeout(r, 50));
      }
      const refused = await RawClient.connect(c.node2.port);
      refused.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='branch.example' version='1.0'>`);
      assert.equal(await refused.waitForClose(), 'host-unknown');
    } finally {
      await admin.stop();
    }
  });

  it('an address failing to authenticate on one node is banned on every node; an administrator lifts and sets bans', async () => {
    const tries = await wrongPasswords(c.node2.port, '127.0.0.2', 3);
    assert.equal((tries.match(/<not-authorized\/>/g) ?? []).length, 3, tries);
    for (const port of [c.node1.port, c.node3Ports.port, c.node2.port]) {
      let refused = '';
      const deadline = Date.now() + 10_000;
      while (!refused.includes('banned')) {
        assert.ok(Date.now() < deadline, `refused on ${port}: ${refused}`);
        refused = await wrongPasswords(port, '127.0.0.2', 0);
      }
      assert.match(refused, /<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>your address is banned until /);
    }
    // Other addresses are not affected.
    assert.ok((await wrongPasswords(c.node1.port, '127.0.0.3', 1)).includes('<not-authorized/>'));

    const admin = await connectClient(c.node1.port, 'admin');
    try {
      const listed = await admin.command('sess-man@localhost', 'urn:switchboard:bans#list');
      assert.ok(listed.values.bans!.some((b) => b.startsWith('127.0.0.2 until ')), listed.values.bans!.join(' | '));
      const lifted = await admin.command('sess-man@localhost', 'urn:switchboard:bans#unban', { fields: { address: '127.0.0.2' } });
      assert.match(lifted.notes[0]!.text, /lifted on 3 node\(s\)/);
      assert.ok((await wrongPasswords(c.node3Ports.port, '127.0.0.2', 1)).includes('<not-authorized/>'), 'node3 accepts 127.0.0.2 again');
      const banned = await admin.command('sess-man@localhost', 'urn:switchboard:bans#ban', { fields: { address: '127.0.0.4', seconds: '300' } });
      assert.match(banned.notes[0]!.text, /banned until .* on 3 node\(s\)/);
      assert.match(await wrongPasswords(c.node2.port, '127.0.0.4', 0), /your address is banned/);
      const bad = await admin.commandError('sess-man@localhost', 'urn:switchboard:bans#ban', { fields: { address: 'not-an-address' } });
      assert.equal(bad.condition, 'bad-request');
      await admin.command('sess-man@localhost', 'urn:switchboard:bans#unban', { fields: { address: '127.0.0.4' } });
    } finally {
      await admin.stop();
    }
  });
  it('BOSH names the node serving the session in the host attribute (seed 11.10.2), and its sessions reach other nodes', async () => {
    for (const [t, name] of [[c.node1, 'node1'], [c.node2, 'node2']] as const) {
      const created = await new BoshClient(t.boshPort).create();
      assert.equal(created.attrs.host, name);
    }
    const bosh = new BoshClient(c.node2.boshPort);
    const jid = await bosh.login('carol', 'secret', 'web');
    assert.equal(bosh.created.attrs.host, 'node2');
    const alice = await c.login(c.node1, 'alice', 'to-bosh');
    alice.send(`<message to='${jid}' type='chat' id='b1'><body>to a BOSH session on node2</body></message>`);
    const got = await bosh.waitFor((e) => e.name === 'message' && e.attrs.id === 'b1', 'the message over BOSH', 10_000);
    assert.equal(got.attrs.from, 'alice@localhost/to-bosh');
    await bosh.send("<message xmlns='jabber:client' to='alice@localhost/to-bosh' type='chat' id='b2'><body>back from BOSH</body></message>");
    assert.equal((await alice.waitForName('message', { id: 'b2' })).getChildText('body'), 'back from BOSH');
  });
  it('switchboard cluster status lists the nodes as the running nodes see them', async () => {
    const file = join(c.node3Data, 'status.yaml');
    writeFileSync(file, JSON.stringify({ 'data-dir': c.node3Data, storage: c.storage, 'cluster-mode': true, cluster: { 'nats-url': c.nats.url, 'request-timeout': 1 } }));
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
    const admins = [];
    for (const port of [c.node1.port, c.node2.port, c.node3Ports.port]) admins.push(await connectClient(port, 'admin'));
    try {
      for (const admin of admins.slice(1)) assert.equal((await addScript(admin, 'whoami-answer', answer)).status, 'completed');
      await addScript(admins[0]!, 'ask-whoami', "return Cluster.request('whoami', { x: 7 }).then((replies) => replies.map((r) => r.node + '=' + (r.value ?? r.error)).join('; '));");
      const asked = await admins[0]!.command('sess-man@localhost', 'http://jabber.org/protocol/admin#ask-whoami');
      assert.equal(asked.notes[0]!.text, 'node2=asked by node1 for 7; node3=asked by node1 for 7');
    } finally {
      for (const admin of admins) await admin.stop();
    }
  });
});
