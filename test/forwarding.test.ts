// Presence and message forwarding (seed 001 section 11.7) over real sockets: a bot collects the
// presence changes of every user of a domain (set at runtime through the VHost Manager, and
// still in force after a restart), message copies arrive wrapped in <forwarded/>, and the global
// option covers hosts that set nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, type Connected } from './support/adhoc-client.js';

describe('presence and message forwarding', () => {
  let t: TestServer;
  const open: Connected[] = [];
  const login = async (user: string, domain = 'localhost', resource?: string) => {
    const c = await connectClient(t.port, user, { domain, resource });
    open.push(c);
    return c;
  };
  const presenceFrom = (jid: string, type?: string) => (s: XmppElement) => s.is('presence') && s.attrs.from === jid && s.attrs.type === type;

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'], 'virtual-hosts': ['localhost', 'other.localhost'], forwarding: { 'presence-forward': 'globalbot@localhost/all' } });
    for (const u of ['admin', 'bot', 'globalbot']) await t.addUser(`${u}@localhost`);
    await t.addUser('alice@corp.example');
    await t.addUser('bob@corp.example');
    await t.addUser('olga@other.localhost');
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop(true);
  });

  it('a bot collects the presence changes of all users of a domain, and copies of their messages', async () => {
    const admin = await login('admin');
    await admin.command('vhost-man@localhost', 'comp-repo-item-add', {
      fields: { domain: 'corp.example', enabled: '1', 'presence-forward': 'bot@localhost/collector', 'message-forward': 'bot@localhost/collector' },
    });
    const bot = await login('bot', 'localhost', 'collector');
    const alice = await login('alice', 'corp.example', 'desk');
    const bob = await login('bob', 'corp.example', 'phone');

    await alice.xmpp.send(xml('presence'));
    await bot.waitFor(presenceFrom('alice@corp.example/desk'), 'alice available');
    await bob.xmpp.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'on a call')));
    const busy = await bot.waitFor(presenceFrom('bob@corp.example/phone'), 'bob busy');
    assert.equal(busy.getChildText('show'), 'dnd');
    assert.equal(busy.getChildText('status'), 'on a call');
    await alice.xmpp.send(xml('presence', { type: 'unavailable' }));
    await bot.waitFor(presenceFrom('alice@corp.example/desk', 'unavailable'), 'alice unavailable');
    // A session that just ends forwards its unavailable presence too.
    (bob.xmpp as unknown as { socket: { socket: import('node:net').Socket } }).socket.socket.destroy();
    await bot.waitFor(presenceFrom('bob@corp.example/phone', 'unavailable'), 'bob gone');

    const bob2 = await login('bob', 'corp.example', 'tablet');
    await bob2.xmpp.send(xml('presence'));
    await bot.waitFor(presenceFrom('bob@corp.example/tablet'), 'bob back');
    await alice.xmpp.send(xml('presence'));
    await bot.waitFor(presenceFrom('alice@corp.example/desk'), 'alice back');
    await alice.xmpp.send(xml('message', { to: 'bob@corp.example', type: 'chat', id: 'm1' }, xml('body', {}, 'lunch?')));
    await bob2.waitFor((s) => s.is('message') && s.attrs.id === 'm1', 'delivered as usual');
    const copy = await bot.waitFor((s) => s.is('message') && s.getChild('forwarded', 'urn:xmpp:forward:0') !== undefined, 'message copy');
    assert.equal(copy.attrs.from, 'corp.example');
    const inner = copy.getChild('forwarded')!.getChild('message')!;
    assert.equal(inner.attrs.from, 'alice@corp.example/desk');
    assert.equal(inner.attrs.to, 'bob@corp.example');
    assert.equal(inner.getChildText('body'), 'lunch?');
    assert.ok(copy.getChild('forwarded')!.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp);
    // The global address does not get what a host forwards elsewhere.
    await new Promise((r) => setTimeout(r, 200));
  });

  it('the global address covers hosts without their own', async () => {
    const globalbot = await login('globalbot', 'localhost', 'all');
    const olga = await login('olga', 'other.localhost', 'pc');
    await olga.xmpp.send(xml('presence', {}, xml('status', {}, 'hi')));
    const p = await globalbot.waitFor(presenceFrom('olga@other.localhost/pc'), 'olga via the global address');
    assert.equal(p.getChildText('status'), 'hi');
    const alice = await login('alice', 'corp.example', 'laptop');
    await alice.xmpp.send(xml('presence'));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!globalbot.received.some(presenceFrom('alice@corp.example/laptop')), 'corp.example forwards to its own bot only');
  });

  it('keeps forwarding after a restart', async () => {
    for (const c of open.splice(0)) await c.stop();
    t = await t.restart();
    const bot = await login('bot', 'localhost', 'collector');
    const alice = await login('alice', 'corp.example', 'desk');
    await alice.xmpp.send(xml('presence', {}, xml('status', {}, 'after restart')));
    const p = await bot.waitFor(presenceFrom('alice@corp.example/desk'), 'forwarded after restart');
    assert.equal(p.getChildText('status'), 'after restart');
  });
});
