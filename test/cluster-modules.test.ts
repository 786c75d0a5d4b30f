// Modules whose answers depend on where a user is, on two cluster nodes (test/support/cluster.ts
// without node3): each case has the user and the one asking (or sending) on different nodes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clusterTestsUnavailable } from './support/nats.js';
import { ClusterFixture, waitUntil } from './support/cluster.js';
import type { RawClient } from './support/raw-client.js';
import { connectClient } from './support/adhoc-client.js';
import type { Element } from '../src/xml/element.js';

const skip = clusterTestsUnavailable();

describe('cluster: per-user module state across two nodes', { skip }, () => {
  const c = new ClusterFixture(['alice', 'bob', 'admin'], {
    node3: false,
    modules: { 'last-activity': { 'jabber:iq:last-marker': { active: true, 'jabber:iq:last': { active: true } } } },
  });
  before(async () => { if (!skip) await c.start(); });
  after(async () => { if (!skip) await c.stop(); });

  let queries = 0;
  const lastActivityOf = async (asker: RawClient, jid: string): Promise<Element> => {
    const id = `last${++queries}`;
    asker.send(`<iq type='get' id='${id}' to='${jid}'><query xmlns='jabber:iq:last'/></iq>`);
    return asker.waitForName('iq', { id }, 10_000);
  };

  it('last activity (XEP-0012) of a user online on another node, then gone from both nodes, is the newest', async () => {
    const bob = await c.login(c.node1, 'bob', 'asker');
    const alice1 = await c.login(c.node1, 'alice', 'one');
    await c.befriend(bob, 'bob@localhost', alice1, 'alice@localhost');
    const alice2 = await c.login(c.node2, 'alice', 'two');

    // Alice leaves node1 but stays online on node2: asked on node1, she is online.
    alice1.send("<presence type='unavailable'><status>left node1</status></presence>");
    alice1.end();
    await waitUntil(() => c.node2.server.sessions.get('alice@localhost', 'one') === undefined, 'node2 knows alice/one is gone');
    const online = await lastActivityOf(bob, 'alice@localhost');
    assert.equal(online.attrs.type, 'result');
    assert.equal(online.getChild('query')!.attrs.seconds, '0');

    // Then she leaves node2 too: node1 must answer with what she said last, on node2, not with
    // what it remembers of her session on node1.
    alice2.send("<presence type='unavailable'><status>left node2</status></presence>");
    alice2.end();
    await waitUntil(() => c.node1.server.sessions.resources('alice@localhost').length === 0, 'node1 knows alice is offline');
    let answer = await lastActivityOf(bob, 'alice@localhost');
    // Node2 stores it as her session ends there, a moment after node1 learns she is gone.
    for (let tries = 0; tries < 50 && answer.getChild('query')?.text() !== 'left node2'; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await lastActivityOf(bob, 'alice@localhost');
    }
    assert.equal(answer.attrs.type, 'result');
    assert.equal(answer.getChild('query')!.text(), 'left node2');
  });

  it('a message stored offline by a node that has not yet learnt its recipient came online on another node is delivered at once', async () => {
    const bob = await c.login(c.node1, 'bob', 'sender');
    const alice = await c.login(c.node2, 'alice', 'late');
    // Stands in for the directory's propagation delay (a few milliseconds, too short to hit on
    // purpose): node1 forgets alice's session on node2 while bob's message is routed.
    const known = c.node1.server.sessions.get('alice@localhost', 'late')!;
    c.node1.server.sessions.remove(known);
    try {
      bob.send("<message to='alice@localhost' type='chat' id='late1'><body>while node1 lags</body></message>");
      const got = await alice.waitForName('message', { id: 'late1' }, 10_000);
      assert.equal(got.getChildText('body'), 'while node1 lags');
      assert.ok(got.getChild('delay', 'urn:xmpp:delay'), 'it went through offline storage');
    } finally {
      c.node1.server.sessions.add(known);
    }
  });

  it('service administration (XEP-0133) run on one node reaches users on another: announce, end a session', async () => {
    const bob = await c.login(c.node2, 'bob', 'far');
    const admin = await connectClient(c.node1.port, 'admin');
    try {
      await admin.command('localhost', 'http://jabber.org/protocol/admin#announce', { fields: { subject: 'Maintenance', announcement: ['down at noon'] } });
      const announced = await bob.waitFor((s) => s.name === 'message' && s.attrs.type === 'headline' && s.attrs.from === 'localhost', 10_000, 'the announcement');
      assert.equal(announced.getChildText('body'), 'down at noon');
      await admin.command('localhost', 'http://jabber.org/protocol/admin#end-user-session', { fields: { accountjids: ['bob@localhost/far'] } });
      assert.equal(await bob.waitForClose(10_000), 'not-authorized');
    } finally {
      await admin.stop();
    }
  });
});
