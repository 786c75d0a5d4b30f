// Anonymous users (seed 001 section 11.13) over real sockets: SASL ANONYMOUS only where the
// virtual host allows it, a new JID per login, nothing of theirs in the database (roster, offline
// messages), no other servers, and the per-user traffic limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from './support/server.js';
import { connectClient, errorInfo, type Connected } from './support/adhoc-client.js';
import { openStorage } from '../src/storage/index.js';
import type { Storage } from '../src/storage/types.js';
import { waitUntil } from './support/wait.js';

describe('anonymous users', () => {
  let t: TestServer;
  let database: Storage;
  const open: Connected[] = [];
  const login = async (user: string | undefined, domain = 'guest.localhost') => {
    const c = await connectClient(t.port, user, { domain });
    open.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer({
      'virtual-hosts': ['localhost', 'guest.localhost'],
      'vhost-options': { 'guest.localhost': { 'anonymous-login': true } },
      anonymous: { 'max-stanzas': 8, period: 60 },
    });
    await t.addUser('alice@localhost');
    // The database itself, beside the server's view of it (which includes what is kept in memory).
    database = await openStorage(t.config.storage, t.dataDir);
  });
  after(async () => {
    for (const c of open) await c.stop();
    await database.close();
    await t.stop(true);
  });

  it('is refused where the virtual host does not allow it', async () => {
    await assert.rejects(connectClient(t.port, undefined, { domain: 'localhost' }));
  });

  it('gives a new JID per login and stores nothing: roster in memory only, no offline messages once gone', async () => {
    const anon = await login(undefined);
    const bare = anon.jid.split('/')[0]!;
    assert.match(bare, /^[0-9a-f]{16}@guest\.localhost$/);
    const again = await login(undefined);
    assert.notEqual(again.jid.split('/')[0], bare);
    await again.stop();

    await anon.request(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'alice@localhost', name: 'Alice' }))));
    const roster = await anon.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(roster.getChild('query')!.getChildren('item').length, 1, 'the session sees its roster');
    assert.deepEqual((await database.roster.get(bare)).items, [], 'but the database has none of it');
    assert.equal(t.server.ephemeral.has(bare), true);

    const alice = await login('alice', 'localhost');
    await anon.xmpp.send(xml('presence'));
    await alice.xmpp.send(xml('message', { to: bare, type: 'chat', id: 'hi' }, xml('body', {}, 'hello guest')));
    const got = await anon.waitFor((s) => s.is('message') && s.attrs.id === 'hi', 'message to the anonymous user');
    assert.equal(got.getChildText('body'), 'hello guest');

    await anon.stop();
    await waitUntil(() => t.server.sessions.resources(bare).length === 0, 'logged out', 5000);
    await alice.xmpp.send(xml('message', { to: bare, type: 'chat', id: 'gone' }, xml('body', {}, 'still there?')));
    const bounced = await alice.waitFor((s) => s.is('message') && s.attrs.id === 'gone', 'bounce');
    assert.equal(bounced.attrs.type, 'error');
    assert.equal(errorInfo(bounced).condition, 'service-unavailable');
    assert.deepEqual(await database.offline.list(bare), []);
    assert.deepEqual((await t.server.storage.roster.get(bare)).items, [], 'forgotten at logout');
  });

  it('cannot reach other servers', async () => {
    // (A fresh session: the traffic limit test below counts from zero.)
    const anon = await login(undefined);
    await anon.xmpp.send(xml('message', { to: 'someone@elsewhere.example', id: 'far' }, xml('body', {}, 'x')));
    const bounced = await anon.waitFor((s) => s.is('message') && s.attrs.id === 'far', 'bounce');
    assert.equal(errorInfo(bounced).condition, 'remote-server-not-found');
  });

  it('limits the traffic of each anonymous user, and disconnects one that keeps going', async () => {
    const anon = await login(undefined);
    const ping = () => xml('iq', { type: 'get', to: 'guest.localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    // Every stanza counts, wherever it goes (here half to another server, which refuses them).
    for (let i = 0; i < 4; i++) await anon.request(ping());
    for (let i = 0; i < 4; i++) {
      await anon.xmpp.send(xml('message', { to: 'x@elsewhere.example', id: `far${i}` }, xml('body', {}, 'x')));
      await anon.waitFor((s) => s.is('message') && s.attrs.id === `far${i}`, 'bounce');
    }
    const refused = await anon.requestError(ping());
    assert.equal(refused.condition, 'policy-violation');
    assert.match(refused.text ?? '', /8 stanzas/);
    // A registered user is not limited.
    const alice = await login('alice', 'localhost');
    for (let i = 0; i < 12; i++) await alice.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    for (let i = 0; i < 8; i++) await anon.xmpp.send(ping()).catch(() => undefined);
    await waitUntil(() => t.server.sessions.resources(anon.jid.split('/')[0]!).length === 0, 'disconnected', 5000);
  });
});
