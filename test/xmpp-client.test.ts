// End to end with a real client library (@xmpp/client), as a user's client drives the
// server: every SASL mechanism it has, roster pushes, a subscription handshake, messages,
// presence broadcast, and an abruptly closed socket turning into unavailable presence.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, xml } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';
import { startTestServer, type TestServer } from './support/server.js';
import { startClient, type ClientOptions, type LiveClient } from './support/xmpp-client.js';

describe('@xmpp/client end to end', () => {
  let t: TestServer;
  const open: LiveClient[] = [];

  async function connect(username: string | undefined, options: ClientOptions = {}): Promise<LiveClient> {
    const c = await startClient(t.port, username, options);
    open.push(c);
    return c;
  }

  before(async () => {
    t = await startTestServer({ 'virtual-hosts': ['localhost', 'guest.localhost'], 'vhost-options': { 'guest.localhost': { 'anonymous-login': true } } });
    for (const u of ['alice', 'bob', 'carol']) await t.addUser(`${u}@localhost`, 'secret');
  });
  after(async () => {
    for (const c of open) await c.xmpp.stop().catch(() => {});
    await t.stop(true);
  });

  for (const mechanism of ['SCRAM-SHA-1', 'PLAIN']) {
    it(`logs in with ${mechanism} after STARTTLS and binds`, async () => {
      const c = await connect('alice', { mechanism, resource: `m-${mechanism}` });
      assert.equal(c.xmpp.jid?.toString(), `alice@localhost/m-${mechanism}`);
      assert.equal(c.xmpp.entity.isSecure(), true);
      const pong = await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(pong.attrs.type, 'result');
      await c.xmpp.stop();
    });
  }

  it('logs in anonymously where the virtual host allows it', async () => {
    const c = await connect(undefined, { domain: 'guest.localhost' });
    assert.match(c.xmpp.jid?.toString() ?? '', /@guest\.localhost\//);
    await c.xmpp.stop();
  });

  it('refuses a wrong password', async () => {
    await assert.rejects(async () => {
      const xmpp = client({ service: `xmpp://127.0.0.1:${t.port}`, domain: 'localhost', username: 'alice', password: 'wrong' });
      xmpp.reconnect.stop();
      xmpp.on('error', () => {});
      try { await xmpp.start(); } finally { await xmpp.stop().catch(() => {}); }
    }, /not-authorized/);
  });

  it('pushes roster changes, subscribes both ways, exchanges messages and broadcasts presence', async () => {
    const alice = await connect('alice', { resource: 'home' });
    const alice2 = await connect('alice', { resource: 'desk' });
    const bob = await connect('bob', { resource: 'phone' });
    for (const c of [alice, alice2, bob]) {
      await c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      await c.xmpp.send(xml('presence'));
    }
    const rosterPush = (jid: string, subscription?: string) => (s: XmppElement) => s.is('iq') && s.attrs.type === 'set' &&
      s.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.jid === jid &&
      (subscription === undefined || s.getChild('query')!.getChild('item')!.attrs.subscription === subscription);

    await alice.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost', name: 'Bob' }))));
    await alice2.waitFor(rosterPush('bob@localhost', 'none'), 'push to the other resource');

    await alice.xmpp.send(xml('presence', { type: 'subscribe', to: 'bob@localhost' }));
    await bob.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'alice@localhost', 'subscription request');
    await bob.xmpp.send(xml('presence', { type: 'subscribed', to: 'alice@localhost' }));
    await bob.xmpp.send(xml('presence', { type: 'subscribe', to: 'alice@localhost' }));
    await alice.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost', 'request back');
    await alice.xmpp.send(xml('presence', { type: 'subscribed', to: 'bob@localhost' }));
    await alice.waitFor(rosterPush('bob@localhost', 'both'), 'alice: both');
    await alice2.waitFor(rosterPush('bob@localhost', 'both'), 'alice2: both');
    await bob.waitFor(rosterPush('alice@localhost', 'both'), 'bob: both');
    await alice.waitFor((s) => s.is('presence') && s.attrs.from === 'bob@localhost/phone' && !s.attrs.type, 'bob online');

    await bob.xmpp.send(xml('message', { type: 'chat', to: 'alice@localhost/home', id: 'm1' }, xml('body', {}, 'ring ring')));
    const msg = await alice.waitFor((s) => s.is('message') && s.attrs.id === 'm1', 'message');
    assert.equal(msg.getChildText('body'), 'ring ring');
    assert.equal(msg.attrs.from, 'bob@localhost/phone');

    await bob.xmpp.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'on the phone')));
    const update = await alice2.waitFor((s) => s.is('presence') && s.getChildText('status') === 'on the phone', 'status broadcast');
    assert.equal(update.getChildText('show'), 'dnd');

    // An abruptly closed socket: no closing stream, no unavailable presence from the client.
    (bob.xmpp as unknown as { socket: { socket: import('node:net').Socket } }).socket.socket.destroy();
    await alice.waitFor((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'bob@localhost/phone', 'unavailable after the socket died');
  });
});
