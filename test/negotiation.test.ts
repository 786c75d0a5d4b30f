// Stream negotiation over real sockets: STARTTLS and direct TLS with the generated
// certificate, the plaintext PLAIN policy, failed logins, legacy jabber:iq:auth (Asterisk
// with usesasl=no), in-band registration and ANONYMOUS per virtual host.
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const plain = (user: string, pw: string) => `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString('base64')}</auth>`;
const mechanisms = (features: { getChild(n: string, ns?: string): any }) =>
  (features.getChild('mechanisms', NS_SASL)?.getChildren('mechanism') ?? []).map((m: { text(): string }) => m.text());

describe('stream negotiation', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      'virtual-hosts': ['localhost', 'anon.localhost', 'open.localhost'],
      'vhost-options': { 'anon.localhost': { 'anonymous-login': true }, 'open.localhost': { 'in-band-registration': true } },
      c2s: { 'legacy-auth': true },
    });
    await t.addUser('alice@localhost', 'secret');
  });
  after(() => t.stop(true));

  it('upgrades with STARTTLS, then authenticates and binds', async () => {
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN());
    const features = await c.waitForName('features');
    assert.ok(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls'));
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await c.waitForName('proceed');
    const raw = (c as unknown as { socket: import('node:net').Socket }).socket;
    raw.removeAllListeners('data');
    const tls: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    assert.equal(tls.getPeerCertificate().subject.CN, 'localhost', 'the generated self-signed certificate is served');
    const secured = RawClient.wrap(tls);
    secured.send(STREAM_OPEN());
    const after = await secured.waitForName('features');
    assert.equal(after.getChild('starttls'), undefined, 'no STARTTLS twice');
    assert.ok(mechanisms(after).includes('PLAIN'));
    secured.send(plain('alice', 'secret'));
    await secured.waitForName('success');
    secured.destroy();
  });

  it('offers TLS directly on the TLS port', async () => {
    const c = await RawClient.connect(t.tlsPort, { tls: true });
    const jid = await c.login('alice', 'secret');
    assert.match(jid, /^alice@localhost\//);
    c.destroy();
  });

  it('fails wrong passwords and unknown users alike, then ends the stream after three failures', async () => {
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN());
    await c.waitForName('features');
    c.send(plain('alice', 'wrong'));
    const wrongPassword = await c.waitForName('failure');
    c.send(plain('nosuchuser', 'secret'));
    const unknownUser = await c.waitForName('failure');
    assert.equal(wrongPassword.firstElement()?.name, 'not-authorized');
    assert.equal(unknownUser.toString(), wrongPassword.toString(), 'indistinguishable');
    c.send(plain('alice', 'wrong-again'));
    await c.waitForName('failure');
    assert.equal(await c.waitForClose(), 'policy-violation');
  });

  it('refuses an unknown or malformed mechanism exchange cleanly', async () => {
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN());
    await c.waitForName('features');
    c.send(`<auth xmlns='${NS_SASL}' mechanism='X-NOPE'/>`);
    assert.equal((await c.waitForName('failure')).firstElement()?.name, 'invalid-mechanism');
    c.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>!!!not base64!!!</auth>`);
    assert.equal((await c.waitForName('failure')).firstElement()?.name, 'incorrect-encoding');
    c.send(plain('alice', 'secret'));
    await c.waitForName('success');
    c.destroy();
  });

  it('logs in with legacy jabber:iq:auth when enabled', async () => {
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN());
    const features = await c.waitForName('features');
    assert.ok(features.getChild('auth', 'http://jabber.org/features/iq-auth'));
    c.send("<iq type='get' id='a1'><query xmlns='jabber:iq:auth'><username>alice</username></query></iq>");
    const fields = (await c.waitForName('iq', { id: 'a1' })).getChild('query')!;
    assert.ok(fields.getChild('password') && fields.getChild('resource'));
    c.send("<iq type='set' id='a2'><query xmlns='jabber:iq:auth'><username>alice</username><password>wrong</password><resource>astvoip1</resource></query></iq>");
    assert.equal((await c.waitForName('iq', { id: 'a2' })).getChild('error')?.attrs.code, '401');
    c.send("<iq type='set' id='a3'><query xmlns='jabber:iq:auth'><username>alice</username><password>secret</password><resource>astvoip1</resource></query></iq>");
    assert.equal((await c.waitForName('iq', { id: 'a3' })).attrs.type, 'result');
    c.send("<iq type='get' id='a4' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert.equal((await c.waitForName('iq', { id: 'a4' })).attrs.to, 'alice@localhost/astvoip1');
    c.destroy();
  });

  it('does not offer legacy auth unless enabled', async () => {
    const plainServer = await startTestServer();
    try {
      const c = await RawClient.connect(plainServer.port);
      c.send(STREAM_OPEN());
      assert.equal((await c.waitForName('features')).getChild('auth', 'http://jabber.org/features/iq-auth'), undefined);
      c.send("<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>alice</username><password>secret</password><resource>r</resource></query></iq>");
      assert.equal(await c.waitForClose(), 'not-authorized');
    } finally {
      await plainServer.stop(true);
    }
  });

  it('refuses PLAIN on plaintext when plaintext-auth is never', async () => {
    const strict = await startTestServer({ c2s: { 'plaintext-auth': 'never' } });
    try {
      await strict.addUser('alice@localhost', 'secret');
      const c = await RawClient.connect(strict.port);
      c.send(STREAM_OPEN());
      assert.ok(!mechanisms(await c.waitForName('features')).includes('PLAIN'));
      c.send(plain('alice', 'secret'));
      assert.equal((await c.waitForName('failure')).firstElement()?.name, 'encryption-required');
      c.destroy();
      const secure = await RawClient.connect(strict.tlsPort, { tls: true });
      await secure.login('alice', 'secret');
      secure.destroy();
    } finally {
      await strict.stop(true);
    }
  });

  it('registers accounts in-band only where the virtual host allows it', async () => {
    const open = await RawClient.connect(t.port);
    open.send(STREAM_OPEN('open.localhost'));
    assert.ok((await open.waitForName('features')).getChild('register', 'http://jabber.org/features/iq-register'));
    open.send("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
    assert.ok((await open.waitForName('iq', { id: 'r1' })).getChild('query')?.getChild('username'));
    open.send("<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>newbie</username><password>pw</password></query></iq>");
    assert.equal((await open.waitForName('iq', { id: 'r2' })).attrs.type, 'result');
    open.send("<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>newbie</username><password>pw</password></query></iq>");
    assert.equal((await open.waitForName('iq', { id: 'r3' })).getChild('error')?.attrs.code, '409');
    open.send(plain('newbie', 'pw'));
    await open.waitForName('success');
    open.destroy();
    const closed = await RawClient.connect(t.port);
    closed.send(STREAM_OPEN());
    assert.equal((await closed.waitForName('features')).getChild('register'), undefined);
    closed.send("<iq type='set' id='r4'><query xmlns='jabber:iq:register'><username>x</username><password>pw</password></query></iq>");
    assert.equal((await closed.waitForName('iq', { id: 'r4' })).getChild('error')?.attrs.code, '503');
    closed.destroy();
  });

  it('offers ANONYMOUS only on virtual hosts that enable it', async () => {
    const anon = await RawClient.connect(t.port);
    anon.send(STREAM_OPEN('anon.localhost'));
    assert.ok(mechanisms(await anon.waitForName('features')).includes('ANONYMOUS'));
    anon.send(`<auth xmlns='${NS_SASL}' mechanism='ANONYMOUS'/>`);
    await anon.waitForName('success');
    anon.restartParser();
    anon.send(STREAM_OPEN('anon.localhost'));
    await anon.waitForName('features');
    anon.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert.match((await anon.waitForName('iq', { id: 'b' })).getChild('bind')!.getChildText('jid')!, /^[0-9a-f]+@anon\.localhost\/.+/);
    anon.destroy();
    const normal = await RawClient.connect(t.port);
    normal.send(STREAM_OPEN());
    assert.ok(!mechanisms(await normal.waitForName('features')).includes('ANONYMOUS'));
    normal.send(`<auth xmlns='${NS_SASL}' mechanism='ANONYMOUS'/>`);
    assert.equal((await normal.waitForName('failure')).firstElement()?.name, 'invalid-mechanism');
    normal.destroy();
  });
});
