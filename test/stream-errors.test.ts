// Every stream-level error path, driven with raw XML over a real socket; after each one the
// server must still serve other clients.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';

const NS_STREAMS = 'http://etherx.jabber.org/streams';

describe('stream errors', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ c2s: { 'max-stanza-size': 4096, 'max-depth': 8 } });
    await t.addUser('alice@localhost');
  });
  after(() => t.stop(true));

  async function expectStreamError(input: string | string[], condition: string): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    for (const part of Array.isArray(input) ? input : [input]) c.send(part);
    assert.equal(await c.waitForClose(), condition, `expected ${condition}; received: ${c.received}`);
    assert.match(c.received, /<\/stream:stream>$/, 'the stream is closed cleanly');
    return c;
  }

  async function stillServing(): Promise<void> {
    const c = await RawClient.connect(t.port);
    const jid = await c.login('alice', 'secret');
    assert.match(jid, /^alice@localhost\//);
    c.end();
  }

  it('rejects a root element outside the streams namespace', async () => {
    await expectStreamError(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>`, 'invalid-namespace');
  });

  it('rejects a default namespace other than jabber:client', async () => {
    await expectStreamError(`<stream:stream xmlns='jabber:server' xmlns:stream='${NS_STREAMS}' to='localhost' version='1.0'>`, 'invalid-namespace');
  });

  it('rejects an unknown host, with a stream header sent first', async () => {
    const c = await expectStreamError(STREAM_OPEN('elsewhere.example'), 'host-unknown');
    assert.match(c.received, /^<\?xml version='1.0'\?><stream:stream /);
  });

  it('rejects a missing or unsupported version', async () => {
    await expectStreamError(STREAM_OPEN('localhost', ''), 'unsupported-version');
    await expectStreamError(STREAM_OPEN('localhost', "version='2.0'"), 'unsupported-version');
  });

  it('ends a stream with malformed XML and keeps serving others', async () => {
    await expectStreamError([STREAM_OPEN(), `<message><body>hi</message>`], 'not-well-formed');
    await expectStreamError([STREAM_OPEN(), `<message to='a@b' to='c@d'/>`], 'not-well-formed');
    await expectStreamError([STREAM_OPEN(), Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x61, 0x3e])], 'not-well-formed');
    await stillServing();
  });

  it('rejects a DTD (billion laughs) with restricted-xml and keeps serving', async () => {
    const lol = `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('') + `]>`;
    await expectStreamError(lol + STREAM_OPEN() + '<message>&lol9;</message>', 'restricted-xml');
    await stillServing();
  });

  it('rejects comments, processing instructions and undeclared entities with restricted-xml', async () => {
    await expectStreamError([STREAM_OPEN(), '<!-- hello -->'], 'restricted-xml');
    await expectStreamError([STREAM_OPEN(), "<?php echo 1; ?>"], 'restricted-xml');
    await expectStreamError([STREAM_OPEN(), '<message><body>&nbsp;</body></message>'], 'restricted-xml');
  });

  it('enforces the stanza size limit, whole or trickled, and keeps serving', async () => {
    await expectStreamError([STREAM_OPEN(), `<message><body>${'x'.repeat(5000)}</body></message>`], 'policy-violation');
    const c = await RawClient.connect(t.port);
    c.send(STREAM_OPEN());
    c.send('<message><body>');
    for (let i = 0; i < 10; i++) c.send('y'.repeat(500));
    assert.equal(await c.waitForClose(), 'policy-violation');
    await stillServing();
  });

  it('enforces the nesting depth limit', async () => {
    await expectStreamError([STREAM_OPEN(), '<a>'.repeat(20)], 'policy-violation');
  });

  it('refuses stanzas before authentication', async () => {
    await expectStreamError([STREAM_OPEN(), "<message to='alice@localhost'><body>hi</body></message>"], 'not-authorized');
  });

  it('refuses a from that is not the session', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('alice', 'secret');
    c.send("<message from='bob@localhost/x' to='alice@localhost'><body>spoof</body></message>");
    assert.equal(await c.waitForClose(), 'invalid-from');
  });

  it('refuses elements in an unknown namespace at stanza level', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('alice', 'secret');
    c.send("<foo xmlns='urn:example:unknown'/>");
    assert.equal(await c.waitForClose(), 'invalid-namespace');
  });

  it('closes its side when the client closes the stream', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('alice', 'secret');
    c.send('</stream:stream>');
    await c.waitForClose();
    assert.match(c.received, /<\/stream:stream>$/);
  });
});

describe('connection limits', () => {
  it('caps unauthenticated connections per address and times out slow negotiation', async () => {
    const t = await startTestServer({ c2s: { 'max-unauthenticated-per-ip': 3, 'negotiation-timeout': 1 } });
    try {
      await t.addUser('alice@localhost');
      const idle = await Promise.all([1, 2, 3].map(() => RawClient.connect(t.port)));
      const refused = await RawClient.connect(t.port);
      assert.equal(await refused.waitForClose(), 'policy-violation');
      // The idle ones are cut by the negotiation timeout, which frees the slots.
      for (const c of idle) assert.equal(await c.waitForClose(3000), 'connection-timeout');
      const c = await RawClient.connect(t.port);
      await c.login('alice', 'secret');
      c.end();
    } finally {
      await t.stop(true);
    }
  });

  it('survives hundreds of connections that never authenticate', async () => {
    const t = await startTestServer({ c2s: { 'max-unauthenticated-per-ip': 50, 'negotiation-timeout': 2 } });
    try {
      await t.addUser('alice@localhost');
      const sockets = await Promise.all(Array.from({ length: 300 }, () => RawClient.connect(t.port)));
      for (const s of sockets) s.send(STREAM_OPEN());
      const refusedCount = (await Promise.all(sockets.slice(50).map((s) => s.waitForClose(5000)))).filter((c) => c === 'policy-violation').length;
      assert.equal(refusedCount, 250);
      for (const s of sockets) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const c = await RawClient.connect(t.port);
      await c.login('alice', 'secret');
      c.end();
    } finally {
      await t.stop(true);
    }
  });
});
