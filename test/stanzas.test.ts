// Stanza routing and stanza errors over a real socket (RFC 6120 section 8, RFC 6121 section 8):
// every error carries the XEP-0086 code and echoes the request.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import type { Element } from '../src/xml/element.js';

function errorOf(stanza: Element): { condition: string | undefined; code: string | undefined; type: string | undefined } {
  const e = stanza.getChild('error');
  return { condition: e?.elements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name, code: e?.attrs.code, type: e?.attrs.type };
}

describe('stanza routing and errors', () => {
  let t: TestServer;
  const clients: RawClient[] = [];
  async function login(user: string, resource = 'r1', presence = true): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    if (presence) c.send('<presence/>');
    return c;
  }
  before(async () => {
    // Offline storage off: messages nobody can take are bounced (RFC 6121 8.5.2), not stored (test/offline.test.ts).
    t = await startTestServer({ amp: { msgoffline: { active: false } } });
    for (const u of ['alice', 'bob', 'carol']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await t.stop(true);
  });

  it('answers an unknown IQ namespace with service-unavailable, code 503, payload echoed', async () => {
    const c = await login('alice');
    c.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:nothing'><x a='1'/></query></iq>");
    const reply = await c.waitForName('iq', { id: 'u1' });
    assert.equal(reply.attrs.type, 'error');
    assert.deepEqual(errorOf(reply), { condition: 'service-unavailable', code: '503', type: 'cancel' });
    assert.equal(reply.getChild('query', 'urn:example:nothing')?.getChild('x')?.attrs.a, '1', 'payload echoed');
    assert.equal(reply.attrs.from, 'localhost');
  });

  it('answers a malformed JID with jid-malformed (400)', async () => {
    const c = await login('alice', 'jm');
    c.send("<message type='chat' id='m1' to='a@b@c'><body>x</body></message>");
    const reply = await c.waitForName('message', { id: 'm1' });
    assert.deepEqual(errorOf(reply), { condition: 'jid-malformed', code: '400', type: 'modify' });
    assert.equal(reply.getChildText('body'), 'x');
  });

  it('answers messages to unknown users with service-unavailable and to other domains with remote-server-not-found', async () => {
    const c = await login('alice', 'unk');
    c.send("<message type='chat' id='m2' to='nobody@localhost'><body>x</body></message>");
    assert.deepEqual(errorOf(await c.waitForName('message', { id: 'm2' })), { condition: 'service-unavailable', code: '503', type: 'cancel' });
    c.send("<iq type='get' id='r1' to='someone@elsewhere.example'><query xmlns='jabber:iq:version'/></iq>");
    assert.deepEqual(errorOf(await c.waitForName('iq', { id: 'r1' })), { condition: 'remote-server-not-found', code: '404', type: 'cancel' });
  });

  it('rejects an IQ get with no payload as bad-request', async () => {
    const c = await login('alice', 'br');
    c.send("<iq type='get' id='b1' to='localhost'/>");
    assert.deepEqual(errorOf(await c.waitForName('iq', { id: 'b1' })), { condition: 'bad-request', code: '400', type: 'modify' });
  });

  it('routes messages to a full JID, and to the bare JID by priority', async () => {
    const high = await login('bob', 'high', false);
    const low = await login('bob', 'low', false);
    high.send('<presence><priority>5</priority></presence>');
    low.send('<presence><priority>1</priority></presence>');
    const a = await login('alice', 'sender');
    await new Promise((r) => setTimeout(r, 100));
    a.send("<message type='chat' id='x1' to='bob@localhost'><body>to bare</body></message>");
    assert.equal((await high.waitForName('message', { id: 'x1' })).getChildText('body'), 'to bare');
    await low.expectNothing((s) => s.attrs.id === 'x1');
    a.send("<message type='chat' id='x2' to='bob@localhost/low'><body>to full</body></message>");
    const got = await low.waitForName('message', { id: 'x2' });
    assert.equal(got.attrs.from, 'alice@localhost/sender');
    low.send('<presence><priority>-1</priority></presence>');
    high.send("<presence type='unavailable'/>");
    await new Promise((r) => setTimeout(r, 100));
    a.send("<message type='chat' id='x3' to='bob@localhost'><body>nobody eligible</body></message>");
    assert.equal(errorOf(await a.waitForName('message', { id: 'x3' })).condition, 'service-unavailable');
  });

  it('routes IQs to a full JID and back', async () => {
    const b = await login('bob', 'iq');
    const a = await login('alice', 'iq');
    a.send("<iq type='get' id='v1' to='bob@localhost/iq'><query xmlns='jabber:iq:version'/></iq>");
    const req = await b.waitForName('iq', { id: 'v1' });
    assert.equal(req.attrs.from, 'alice@localhost/iq');
    b.send("<iq type='result' id='v1' to='alice@localhost/iq'><query xmlns='jabber:iq:version'><name>x</name></query></iq>");
    assert.equal((await a.waitForName('iq', { id: 'v1' })).attrs.type, 'result');
    a.send("<iq type='get' id='v2' to='bob@localhost/gone'><query xmlns='jabber:iq:version'/></iq>");
    assert.equal(errorOf(await a.waitForName('iq', { id: 'v2' })).condition, 'service-unavailable');
  });

  it('answers disco, version, ping and time on the host', async () => {
    const c = await login('carol', 'svc');
    c.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    const info = (await c.waitForName('iq', { id: 'd1' })).getChild('query')!;
    assert.equal(info.getChild('identity')?.attrs.category, 'server');
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['jabber:iq:version', 'urn:xmpp:ping', 'urn:xmpp:time', 'http://jabber.org/protocol/disco#info']) assert.ok(features.includes(f), f);
    c.send("<iq type='get' id='d2' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
    assert.equal((await c.waitForName('iq', { id: 'd2' })).getChild('query')?.getChildText('name'), 'Switchboard');
    c.send("<iq type='get' id='d3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal((await c.waitForName('iq', { id: 'd3' })).attrs.type, 'result');
    c.send("<iq type='get' id='d4' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
    assert.match((await c.waitForName('iq', { id: 'd4' })).getChild('time')?.getChildText('utc') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('replaces a session bound to the same resource with a conflict stream error', async () => {
    const first = await login('carol', 'same');
    const second = await login('carol', 'same');
    assert.equal(await first.waitForClose(), 'conflict');
    second.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal((await second.waitForName('iq', { id: 'p1' })).attrs.type, 'result');
  });

  it('generates a resource when none is asked for', async () => {
    const c = await RawClient.connect(t.port);
    clients.push(c);
    const jid = await c.login('carol', 'secret', 'localhost', '');
    assert.match(jid, /^carol@localhost\/.+/);
  });
});
