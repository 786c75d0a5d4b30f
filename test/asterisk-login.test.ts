// The Asterisk login flow of seed 000, replayed byte for byte from the wire captures of two
// real Asterisk servers (res_xmpp): plaintext SASL PLAIN, bind with the configured resource,
// session, pipelined PubSub requests, roster fetch, presence with caps, and a subscription
// handshake between the two servers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { readTranscript } from './support/transcript.js';
import type { Element } from '../src/xml/element.js';

/** Waits until the server has been quiet for `quietMs`. */
async function settle(c: RawClient, quietMs = 60): Promise<void> {
  let last = -1;
  while (c.received.length !== last) {
    last = c.received.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

function pubsubErrors(stanzas: Element[]): Element[] {
  return stanzas.filter((s) => s.name === 'iq' && s.attrs.type === 'error' && s.getChild('pubsub', 'http://jabber.org/protocol/pubsub'));
}

describe('Asterisk res_xmpp login (wire capture replay)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await t.addUser('alice@localhost', 'pw');
    await t.addUser('bob@localhost', 'pw');
  });
  after(() => t.stop(true));

  it('carries the first connection of both servers in flat.log', async () => {
    const records = readTranscript('flat.log').filter((r) => r.conn === 1);
    const clients = new Map<string, RawClient>();
    const seen = new Map<string, Element[]>();
    const collect = async () => {
      for (const c of clients.values()) await settle(c);
      for (const [agent, c] of clients) seen.get(agent)!.push(...c.stanzas.splice(0));
    };
    for (const r of records) {
      if (r.kind === 'OPEN') {
        clients.set(r.agent, await RawClient.connect(t.port));
        seen.set(r.agent, []);
      } else if (r.kind === 'C>S EOF') {
        // Asterisk stops with a bare TCP close: no </stream:stream>, no unavailable presence.
        await collect();
        clients.get(r.agent)!.destroy();
        clients.delete(r.agent);
      } else if (r.kind === 'C>S') {
        const c = clients.get(r.agent)!;
        if (r.data.startsWith('<?xml')) c.restartParser();
        c.send(r.data);
        await collect();
      }
    }
    assert.equal(clients.size, 0, 'both servers closed their connections as in the capture');
    for (const agent of ['a1', 'a2']) {
      assert.ok(!seen.get(agent)!.some((s) => s.name === 'error' && s.attrs.xmlns === 'http://etherx.jabber.org/streams'), `${agent} got no stream error`);
    }
    const a1 = seen.get('a1')!;
    const a2 = seen.get('a2')!;
    const byId = (list: Element[], id: string) => list.find((s) => s.name === 'iq' && s.attrs.id === id);
    // Bind with the configured resource, then the RFC 3921 session IQ (id 'auth').
    assert.equal(byId(a1, 'aaaaa')?.getChild('bind')?.getChildText('jid'), 'alice@localhost/astvoip1');
    assert.equal(byId(a2, 'aaaaa')?.getChild('bind')?.getChildText('jid'), 'bob@localhost/astvoip2');
    assert.equal(byId(a1, 'auth')?.attrs.type, 'result');
    assert.equal(byId(a1, 'roster')?.attrs.type, 'result');
    // Every PubSub error carries the legacy code and echoes the request (Asterisk needs both).
    const errors = [...pubsubErrors(a1), ...pubsubErrors(a2)];
    assert.ok(errors.length >= 4, 'the pipelined PubSub requests were answered');
    for (const e of errors) assert.match(e.getChild('error')?.attrs.code ?? '', /^\d{3}$/, `code on ${e}`);
    // The subscription handshake ends with 'both' on each side and each sees the other online.
    const lastSubscription = (list: Element[], contact: string) => list
      .filter((s) => s.name === 'iq' && s.attrs.type === 'set')
      .map((s) => s.getChild('query', 'jabber:iq:roster')?.getChild('item'))
      .filter((i) => i?.attrs.jid === contact).pop()?.attrs.subscription;
    assert.equal(lastSubscription(a1, 'bob@localhost'), 'both');
    assert.equal(lastSubscription(a2, 'alice@localhost'), 'both');
    assert.ok(a1.some((s) => s.name === 'presence' && s.attrs.from === 'bob@localhost/astvoip2' && s.attrs.type === undefined), 'alice sees bob available');
    assert.ok(a2.some((s) => s.name === 'presence' && s.attrs.from === 'alice@localhost/astvoip1' && s.attrs.type === undefined), 'bob sees alice available');
    assert.ok(a2.some((s) => s.name === 'presence' && s.attrs.from === 'alice@localhost/astvoip1' && s.attrs.type === 'unavailable'),
      "alice's bare TCP close reaches bob as unavailable presence");
  });

  it('applies a subscription sent to a full JID to the bare JID (buddy given as server2@example.com/astvoip2)', async () => {
    await t.addUser('server1@localhost', 'pw');
    await t.addUser('server2@localhost', 'pw');
    const s1 = await RawClient.connect(t.port);
    const s2 = await RawClient.connect(t.port);
    await s1.login('server1', 'pw', 'localhost', 'astvoip1');
    await s2.login('server2', 'pw', 'localhost', 'astvoip2');
    for (const c of [s1, s2]) c.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq><presence><priority>1</priority></presence>");
    await s1.waitForName('iq', { id: 'roster' });
    await s2.waitForName('iq', { id: 'roster' });
    s1.send("<presence type='subscribe' to='server2@localhost/astvoip2'/>");
    const request = await s2.waitForName('presence', { type: 'subscribe' });
    assert.equal(request.attrs.from, 'server1@localhost', 'the request comes from the bare JID');
    assert.equal(request.attrs.to, 'server2@localhost', 'and is addressed to the bare JID');
    s2.send("<presence type='subscribed' to='server1@localhost/astvoip1'/>");
    const push = await s1.waitFor((s) => s.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.subscription === 'to');
    assert.equal(push.getChild('query')!.getChild('item')!.attrs.jid, 'server2@localhost');
    await s1.waitFor((s) => s.name === 'presence' && s.attrs.from === 'server2@localhost/astvoip2' && s.attrs.type === undefined);
    s1.destroy();
    s2.destroy();
  });
});
