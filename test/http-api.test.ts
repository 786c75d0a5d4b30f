// The HTTP management API over real HTTP: tokens (missing, wrong, expired, read-only, of someone
// no longer an administrator), the JSON error replies, each endpoint with its effect seen from
// XMPP, tokens made by the ad-hoc command, configuration reload (valid, invalid: nothing changed),
// and the PubSub module's resources (the same bodies as its own /api/device-states).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startFromFile, apiClient, type FileServer } from './support/http-api.js';
import { TokenStore } from '../src/modules/http-api/tokens.js';
import { canLogIn, connectClient, type Connected } from './support/adhoc-client.js';
import { startTestServer, type TestServer } from './support/server.js';
import type { RawClient } from './support/raw-client.js';
import { assertResult, asteriskState, connect, iq, pubsub } from './support/pubsub.js';

describe('HTTP management API', () => {
  let s: FileServer;
  let adminToken: string;
  let readToken: string;
  let api: ReturnType<typeof apiClient>;
  const open: Connected[] = [];
  const options = { admins: ['admin@localhost'], 'http-api': { enabled: true, 'max-body-size': 2048 } };

  before(async () => {
    s = await startFromFile(options);
    await s.addUser('admin@localhost');
    await s.addUser('alice@localhost');
    const tokens = new TokenStore(s.server.storage);
    adminToken = (await tokens.create({ admin: 'admin@localhost', scope: 'admin', days: 1, name: 'tests' })).token;
    readToken = (await tokens.create({ admin: 'admin@localhost', scope: 'read', days: 1 })).token;
    api = apiClient(s.httpPort, adminToken);
  });
  after(async () => {
    for (const c of open) await c.stop();
    await s.stop();
  });

  describe('authentication', () => {
    it('refuses a request without a token: 401 with WWW-Authenticate', async () => {
      const r = await apiClient(s.httpPort, undefined)('GET', '/vhosts');
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'unauthorized');
      assert.match(r.body.message, /Bearer/);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="Switchboard"/);
    });

    it('refuses a wrong token and a token with a wrong secret', async () => {
      for (const token of ['nonsense', adminToken.slice(0, -2) + (adminToken.endsWith('AA') ? 'BB' : 'AA')]) {
        const r = await apiClient(s.httpPort, token)('GET', '/vhosts');
        assert.equal(r.status, 401);
        assert.equal(r.body.error, 'invalid-token');
        assert.equal(r.body.message, 'the API token is not valid');
      }
    });

    it('refuses an expired token', async () => {
      const past = new TokenStore(s.server.storage, () => new Date(Date.now() - 3 * 86_400_000));
      const { token } = await past.create({ admin: 'admin@localhost', scope: 'admin', days: 2 });
      const r = await apiClient(s.httpPort, token)('GET', '/vhosts');
      assert.equal(r.status, 401);
      assert.equal(r.body.message, 'the API token has expired');
      const listed = (await new TokenStore(s.server.storage).list()).find((t) => token.includes(t.id));
      assert.equal(listed?.expired, true);
    });

    it('lets a read token read and refuses it changes (403), changing nothing', async () => {
      const read = apiClient(s.httpPort, readToken);
      assert.equal((await read('GET', '/users')).status, 200);
      const r = await read('POST', '/users', { jid: 'sneaky@localhost', password: 'pw' });
      assert.equal(r.status, 403);
      assert.equal(r.body.error, 'insufficient-scope');
      assert.equal(await s.server.storage.users.exists('localhost', 'sneaky'), false);
    });

    it("refuses the token of someone who is not (or no longer) an administrator (403)", async () => {
      const { token } = await new TokenStore(s.server.storage).create({ admin: 'alice@localhost', scope: 'admin', days: 1 });
      const r = await apiClient(s.httpPort, token)('GET', '/users');
      assert.equal(r.status, 403);
      assert.match(r.body.message, /alice@localhost is no longer a server administrator/);
    });

    it('stores only a SHA-256 hash of the secret', async () => {
      const stored = JSON.stringify(await s.server.storage.keyValue('api-tokens').get('', 'tokens'));
      // The secret is base64url, which may itself hold '_': everything after sbt_<id>_.
      const secret = /^sbt_[0-9a-f]{12}_(.+)$/.exec(adminToken)![1]!;
      assert.ok(!stored.includes(secret), 'the secret is not stored');
      assert.ok(stored.includes(createHash('sha256').update(secret).digest('hex')));
    });

    it('stops accepting a revoked token at once', async () => {
      const store = new TokenStore(s.server.storage);
      const { token, info } = await store.create({ admin: 'admin@localhost', scope: 'read', days: 1 });
      assert.equal((await apiClient(s.httpPort, token)('GET', '/vhosts')).status, 200);
      assert.equal(await store.revoke(info.id), true);
      assert.equal((await apiClient(s.httpPort, token)('GET', '/vhosts')).status, 401);
    });

    it('revokes nothing for an id no token has, even one every object answers to', async () => {
      const store = new TokenStore(s.server.storage);
      assert.equal(await store.revoke('constructor'), false);
      assert.equal(await store.revoke('000000000000'), false);
    });
  });

  describe('request errors', () => {
    it('answers malformed JSON with 400', async () => {
      const r = await api('POST', '/users', '{"jid": "x@localhost",');
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'malformed-json');
      assert.match(r.body.message, /not valid JSON/);
    });

    it('answers a body that is not JSON with 415', async () => {
      const r = await api('POST', '/users', 'jid=x@localhost', { contentType: 'application/x-www-form-urlencoded' });
      assert.equal(r.status, 415);
      assert.equal(r.body.error, 'unsupported-media-type');
    });

    it('answers a body over max-body-size with 413', async () => {
      const r = await api('POST', '/users', { jid: 'big@localhost', password: 'x'.repeat(4096) });
      assert.equal(r.status, 413);
      assert.equal(r.body.error, 'payload-too-large');
      assert.equal(await s.server.storage.users.exists('localhost', 'big'), false);
    });

    it('answers wrong fields with 422 naming the field', async () => {
      const r = await api('POST', '/users', { jid: 'x@localhost', password: 7 });
      assert.equal(r.status, 422);
      assert.match(r.body.message, /^password: /);
      const unknown = await api('POST', '/vhosts', { domain: 'a.example', colour: 'blue' });
      assert.equal(unknown.status, 422);
      assert.match(unknown.body.message, /colour/);
    });

    it('answers an unknown endpoint with 404 and a wrong method with 405 and Allow', async () => {
      const r = await api('GET', '/nothing-here');
      assert.equal(r.status, 404);
      assert.equal(r.body.error, 'no-such-endpoint');
      const bad = await api('GET', '/users/%E0%A4%A/locate');
      assert.equal(bad.status, 400);
      assert.match(bad.body.message, /percent-encoding/);
      const m = await api('PUT', '/users');
      assert.equal(m.status, 405);
      assert.equal(m.body.error, 'method-not-allowed');
      assert.equal(m.headers.get('allow'), 'GET, POST');
    });
  });

  describe('users', () => {
    it('creates an account that can log in, refuses a duplicate (409), lists it, deletes it', async () => {
      const created = await api('POST', '/users', { jid: 'Carol@LocalHost', password: 'pass-1' });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body, { jid: 'carol@localhost' });
      assert.equal(await canLogIn(s.port, 'carol', 'localhost', 'pass-1'), true);
      const again = await api('POST', '/users', { jid: 'carol@localhost', password: 'pass-2' });
      assert.equal(again.status, 409);
      assert.match(again.body.message, /already exists/);
      const list = await api('GET', '/users?domain=localhost');
      assert.ok(list.body.users.includes('carol@localhost'));
      assert.equal((await api('GET', '/users?domain=nowhere.example')).status, 404);
      const deleted = await api('DELETE', `/users/${encodeURIComponent('carol@localhost')}`);
      assert.equal(deleted.status, 204);
      assert.equal(await canLogIn(s.port, 'carol', 'localhost', 'pass-1'), false);
      assert.equal((await api('DELETE', '/users/carol@localhost')).status, 404);
      assert.equal((await api('DELETE', '/users/not%20a%20jid@')).status, 422);
    });

    it('refuses a user on a host that is not served (404) and a reserved component name (409)', async () => {
      assert.equal((await api('POST', '/users', { jid: 'x@elsewhere.example', password: 'p' })).status, 404);
      const reserved = await api('POST', '/users', { jid: 'sess-man@localhost', password: 'p' });
      assert.equal(reserved.status, 409);
    });
  });

  describe('locate and sessions', () => {
    it('locates a user: resources, address and since when; 404 for nobody', async () => {
      const before = Date.now();
      const c = await connectClient(s.port, 'alice', { resource: 'desk' });
      open.push(c);
      const r = await api('GET', '/users/alice@localhost/locate');
      assert.equal(r.status, 200);
      assert.equal(r.body.online, true);
      assert.equal(r.body.resources.length, 1);
      const [where] = r.body.resources;
      assert.equal(where.jid, 'alice@localhost/desk');
      assert.equal(where.address, '127.0.0.1');
      assert.ok(Date.parse(where.since) >= before - 1000, where.since);
      assert.equal(typeof where.node, 'string');
      const offline = await api('GET', '/users/admin@localhost/locate');
      assert.deepEqual({ online: offline.body.online, resources: offline.body.resources }, { online: false, resources: [] });
      assert.equal((await api('GET', '/users/ghost@localhost/locate')).status, 404);
    });

    it('lists sessions and ends one; the client is disconnected', async () => {
      const c = await connectClient(s.port, 'alice', { resource: 'phone' });
      open.push(c);
      const closed = new Promise<void>((resolve) => c.xmpp.on('status', (status: string) => { if (status === 'disconnect') resolve(); }));
      const list = await api('GET', '/sessions');
      assert.ok(list.body.sessions.some((x: { jid: string }) => x.jid === 'alice@localhost/phone'));
      const r = await api('DELETE', `/sessions/${encodeURIComponent('alice@localhost/phone')}`);
      assert.equal(r.status, 204);
      await closed;
      assert.ok(!s.server.sessions.get('alice@localhost', 'phone'));
      assert.ok(s.server.sessions.get('alice@localhost', 'desk'), 'the other resource stays');
      assert.equal((await api('DELETE', `/sessions/${encodeURIComponent('alice@localhost/phone')}`)).status, 404);
    });
  });

  describe('virtual hosts', () => {
    it('adds, reads, changes and removes a host with the VHost Manager rules', async () => {
      const added = await api('POST', '/vhosts', { domain: 'Shop.Example', 'max-users': 1, 'anonymous-login': true, other: { note: 'api' } });
      assert.equal(added.status, 201);
      assert.equal(added.body.domain, 'shop.example');
      assert.equal(added.body['max-users'], 1);
      assert.equal(s.server.vhosts.has('shop.example'), true);
      assert.equal((await api('POST', '/vhosts', { domain: 'shop.example' })).status, 409);
      const one = await api('GET', '/vhosts/shop.example');
      assert.deepEqual(one.body.other, { note: 'api' });
      const changed = await api('PATCH', '/vhosts/shop.example', { enabled: false, owner: 'alice@localhost' });
      assert.equal(changed.status, 200);
      assert.equal(changed.body.enabled, false);
      assert.equal(changed.body['max-users'], 1, 'left-out settings keep their value');
      assert.equal(s.server.vhosts.has('shop.example'), false);
      const bad = await api('PATCH', '/vhosts/shop.example', { owner: 'not a jid@@' });
      assert.equal(bad.status, 422);
      assert.equal(s.server.vhosts.get('shop.example')!.owner, 'alice@localhost');
      assert.equal((await api('DELETE', '/vhosts/shop.example')).status, 204);
      assert.equal(s.server.vhosts.get('shop.example'), undefined);
      assert.equal((await api('GET', '/vhosts/shop.example')).status, 404);
      const configured = await api('DELETE', '/vhosts/localhost');
      assert.equal(configured.status, 409);
      assert.match(configured.body.message, /configuration file/);
      const list = await api('GET', '/vhosts');
      assert.deepEqual(list.body.vhosts.map((v: { domain: string }) => v.domain), ['localhost']);
    });

    it('applies max-users of a host to accounts created through the API', async () => {
      await api('POST', '/vhosts', { domain: 'tiny.example', 'max-users': 1 });
      assert.equal((await api('POST', '/users', { jid: 'one@tiny.example', password: 'p' })).status, 201);
      const full = await api('POST', '/users', { jid: 'two@tiny.example', password: 'p' });
      assert.equal(full.status, 409);
      assert.match(full.body.message, /maximum of 1 users/);
    });
  });

  describe('statistics', () => {
    it('gives the metrics snapshot and a summary', async () => {
      const r = await api('GET', '/statistics');
      assert.equal(r.status, 200);
      assert.ok(r.body.sessions >= 1);
      assert.ok(r.body.registeredUsers.localhost >= 2);
      assert.ok(Array.isArray(r.body.metrics) && r.body.metrics.length > 0);
      // NaN (a gauge never set) is null in JSON.
      assert.ok(r.body.metrics.every((m: { name: string; value: number | null }) => typeof m.name === 'string' && (typeof m.value === 'number' || m.value === null)));
      assert.ok(r.body.metrics.some((m: { name: string }) => m.name.startsWith('switchboard_')));
    });
  });

  describe('tokens through the ad-hoc command', () => {
    it('lets an administrator create a token over XMPP that the API accepts, list it and revoke it', async () => {
      const admin = await connectClient(s.port, 'admin');
      open.push(admin);
      const form = await admin.command('sess-man@localhost', 'api-token-create');
      assert.equal(form.status, 'executing');
      const done = await admin.command('sess-man@localhost', 'api-token-create', { sessionid: form.sessionid, fields: { name: 'monitoring', scope: 'read', days: '7' } });
      assert.equal(done.status, 'completed');
      const token = done.values.token![0]!;
      assert.match(token, /^sbt_/);
      const r = await apiClient(s.httpPort, token)('GET', '/statistics');
      assert.equal(r.status, 200);
      const listed = await admin.command('sess-man@localhost', 'api-token-list');
      assert.ok(listed.command.toString().includes('monitoring'));
      const id = done.values.id![0]!;
      const revokeForm = await admin.command('sess-man@localhost', 'api-token-revoke');
      await admin.command('sess-man@localhost', 'api-token-revoke', { sessionid: revokeForm.sessionid, fields: { id } });
      assert.equal((await apiClient(s.httpPort, token)('GET', '/statistics')).status, 401);
      const alice = await connectClient(s.port, 'alice', { resource: 'adhoc' });
      open.push(alice);
      const refused = await alice.commandError('sess-man@localhost', 'api-token-create');
      assert.equal(refused.condition, 'forbidden');
    });
  });

  describe('configuration reload', () => {
    it('applies log level and admins, reports what needs a restart', async () => {
      assert.equal(s.server.log.level, 'silent');
      s.rewrite({ ...options, admins: ['admin@localhost', 'alice@localhost'], log: { level: 'error' }, c2s: { host: '127.0.0.1', port: s.port, 'tls-port': 0 } });
      const r = await api('POST', '/config/reload');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.applied.sort(), ['admins', 'log.level']);
      assert.deepEqual(r.body.restartRequired, ['c2s.tls-port']);
      assert.equal(s.server.log.level, 'error');
      // Module loggers follow the root's level.
      assert.equal(s.server.log.child({ module: 'x' }).isLevelEnabled('error'), true);
      // alice is an administrator now: her token works.
      const { token } = await new TokenStore(s.server.storage).create({ admin: 'alice@localhost', scope: 'read', days: 1 });
      assert.equal((await apiClient(s.httpPort, token)('GET', '/vhosts')).status, 200);
      assert.equal(s.server.config.c2s['tls-port'] !== 0, true, 'the running listener is kept');
    });

    it('refuses an invalid file with 422 and the validation message, changing nothing', async () => {
      const levelBefore = s.server.log.level;
      s.rewrite({ ...options, admins: ['admin@localhost'], log: { level: 'loud' } });
      const r = await api('POST', '/config/reload');
      assert.equal(r.status, 422);
      assert.equal(r.body.error, 'invalid-configuration');
      assert.match(r.body.message, /log\.level: expected one of/);
      assert.equal(s.server.log.level, levelBefore);
      const { token } = await new TokenStore(s.server.storage).create({ admin: 'alice@localhost', scope: 'read', days: 1 });
      assert.equal((await apiClient(s.httpPort, token)('GET', '/vhosts')).status, 200, 'alice is still an administrator');
      s.rewrite('admins: [unclosed\n');
      const yaml = await api('POST', '/config/reload');
      assert.equal(yaml.status, 422);
      assert.match(yaml.body.message, /YAML syntax error/);
    });
  });
});

describe('HTTP management API: PubSub nodes, device states and mailboxes', () => {
  let t: TestServer;
  let alice: RawClient;
  let api: ReturnType<typeof apiClient>;
  const basic = { Authorization: `Basic ${Buffer.from('admin@localhost:pw').toString('base64')}` };

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'], 'http-api': { enabled: true } });
    for (const user of ['alice', 'admin']) await t.addUser(`${user}@localhost`, 'pw');
    alice = await connect(t, 'alice', 'astvoip1');
    api = apiClient(t.httpPort, (await new TokenStore(t.server.storage).create({ admin: 'admin@localhost', scope: 'read', days: 1 })).token);
  });
  after(async () => {
    alice.destroy();
    await t.stop(true);
  });

  it('serves the device-state view with the same bodies as /api/device-states and /api/mailboxes', async () => {
    assertResult(await iq(alice, pubsub(`<publish node='device_state'><item id='SIP/200'>${asteriskState('INUSE', '02:00:00:00:00:09')}</item></publish>`)));
    assertResult(await iq(alice, pubsub(`<publish node='message_waiting'><item id='200@default'><mailbox xmlns='http://asterisk.org' eid='02:00:00:00:00:09'><NEWMSGS>4</NEWMSGS><OLDMSGS>1</OLDMSGS></mailbox></item></publish>`)));
    for (const path of ['/device-states', '/mailboxes']) {
      const v1 = await api('GET', path);
      assert.equal(v1.status, 200);
      const legacy = await (await fetch(`http://127.0.0.1:${t.httpPort}/api${path}`, { headers: basic })).json();
      assert.deepEqual(v1.body, legacy);
    }
    const devices = (await api('GET', '/device-states')).body.devices;
    assert.deepEqual(devices.map((d: { device: string; state: string }) => [d.device, d.state]), [['SIP/200', 'INUSE']]);
    assert.equal((await api('GET', '/mailboxes')).body.mailboxes[0].new, 4);
  });

  it('lists the nodes of the PubSub services, one service on request', async () => {
    assertResult(await iq(alice, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='api-test'/></pubsub>`));
    const all = await api('GET', '/pubsub/nodes');
    assert.equal(all.status, 200);
    const created = all.body.nodes.find((n: { node: string }) => n.node === 'api-test');
    assert.equal(created.service, 'pubsub.localhost');
    assert.equal(created.type, 'leaf');
    assert.equal(created.creator, 'alice@localhost');
    assert.ok(all.body.nodes.some((n: { node: string }) => n.node === 'device_state'));
    assert.equal((await api('GET', '/pubsub/nodes?service=pubsub.localhost')).body.nodes.length, all.body.nodes.length);
    const unknown = await api('GET', '/pubsub/nodes?service=pubsub.nowhere');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'not-found');
  });
});
