// SCRAM over real connections: SHA-1 and SHA-256 on plaintext loopback, and the -PLUS variants
// on TLS with both channel bindings (RFC 9266 tls-exporter, RFC 5929 tls-server-end-point).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { scramClient } from './support/scram-client.js';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const b64 = (b: Buffer) => b.toString('base64');

async function scramLogin(c: RawClient, mechanism: string, password: string, binding?: { type: string; data: Buffer }): Promise<string> {
  c.send(STREAM_OPEN());
  const features = await c.waitForName('features');
  const offered = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
  assert.ok(offered.includes(mechanism), `${mechanism} offered: ${offered.join(' ')}`);
  const client = scramClient(mechanism.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1', 'alice', password,
    binding ? { flag: `p=${binding.type}`, bindingData: binding.data } : {});
  c.send(`<auth xmlns='${NS_SASL}' mechanism='${mechanism}'>${b64(client.first())}</auth>`);
  const challenge = await c.waitForName('challenge');
  c.send(`<response xmlns='${NS_SASL}'>${b64(client.final(Buffer.from(challenge.text(), 'base64').toString()))}</response>`);
  const outcome = await c.waitFor((s) => s.name === 'success' || s.name === 'failure');
  if (outcome.name === 'failure') return outcome.firstElement()!.name;
  assert.equal(Buffer.from(outcome.text(), 'base64').toString(), client.serverFinal(), 'the server proves it knows the ServerKey');
  return 'success';
}

describe('SCRAM end to end', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await t.addUser('alice@localhost', 'pencil');
  });
  after(() => t.stop(true));

  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
    it(`${mechanism} on a plaintext loopback connection, without -PLUS`, async () => {
      const c = await RawClient.connect(t.port);
      assert.equal(await scramLogin(c, mechanism, 'pencil'), 'success');
      assert.doesNotMatch(c.received, /-PLUS/, 'no channel binding without TLS');
      c.destroy();
      const wrong = await RawClient.connect(t.port);
      assert.equal(await scramLogin(wrong, mechanism, 'wrong'), 'not-authorized');
      wrong.destroy();
    });
  }

  it('SCRAM-SHA-256-PLUS with tls-exporter on TLS 1.3', async () => {
    const c = await RawClient.connect(t.tlsPort, { tls: true });
    assert.equal(c.tls.getProtocol(), 'TLSv1.3');
    const data = c.tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    assert.equal(await scramLogin(c, 'SCRAM-SHA-256-PLUS', 'pencil', { type: 'tls-exporter', data }), 'success');
    assert.match(c.received, /<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'\/>/);
    c.destroy();
  });

  it('SCRAM-SHA-1-PLUS with tls-server-end-point', async () => {
    const c = await RawClient.connect(t.tlsPort, { tls: true });
    const data = createHash('sha256').update(c.tls.getPeerCertificate().raw).digest();
    assert.equal(await scramLogin(c, 'SCRAM-SHA-1-PLUS', 'pencil', { type: 'tls-server-end-point', data }), 'success');
    c.destroy();
  });

  it('refuses -PLUS with binding data from another connection', async () => {
    const other = await RawClient.connect(t.tlsPort, { tls: true });
    const foreign = other.tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    other.destroy();
    const c = await RawClient.connect(t.tlsPort, { tls: true });
    assert.equal(await scramLogin(c, 'SCRAM-SHA-256-PLUS', 'pencil', { type: 'tls-exporter', data: foreign }), 'not-authorized');
    c.destroy();
  });
});
