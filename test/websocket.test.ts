// XMPP over WebSocket (RFC 7395): @xmpp/client's WebSocket transport against the dedicated
// plain and TLS ports and the shared HTTP port, talking to a client on TCP; and raw `ws`
// connections for the framing rules and the stream errors (the same as over TCP).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { startClient, type LiveClient } from './support/xmpp-client.js';
import { createStreamParser } from '../src/xml/parser.js';
import type { Element } from '../src/xml/element.js';

// Node 20 has no global WebSocket; @xmpp/websocket uses the global one, as in a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = (to = 'localhost') => `<open xmlns='${FRAMING}' to='${to}' version='1.0'/>`;


/** A raw WebSocket client: every message as text, and each parsed on its own as one XML document. */
class RawWs {
  readonly messages: string[] = [];
  readonly elements: Element[] = [];
  closed: Promise<{ code: number }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code) => { this.notify(); resolve({ code }); }));
    ws.on('message', (data) => {
      const text = data.toString();
      this.messages.push(text);
      this.elements.push(parseAlone(text));
      this.notify();
    });
  }

  static open(url: string, protocols: string[] = ['xmpp']): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { rejectUnauthorized: false });
      ws.once('open', () => {
        assert.equal(ws.protocol, 'xmpp');
        resolve(new RawWs(ws));
      });
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }

  async waitFor(match: (el: Element) => boolean, what: string): Promise<Element> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const found = this.elements.find(match);
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`closed while waiting for ${what}; got ${this.messages.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.messages.join('\n')}`);
      await new Promise<void>((r) => { const t = setTimeout(r, 100); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Waits for the server to close; returns the stream error condition it sent, if any. */
  async streamError(): Promise<string | undefined> {
    const { code } = await Promise.race([this.closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`not closed; got ${this.messages.join('\n')}`)), 5000))]);
    assert.equal(code, 1000, 'a clean WebSocket close');
    assert.match(this.messages.at(-1)!, /^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/, 'the last message is <close/>');
    return this.elements.find((e) => e.name === 'error')?.firstElement()?.name;
  }
}

/** Parses one message as a standalone document: it must be complete and fully namespaced. */
function parseAlone(text: string): Element {
  const found: Element[] = [];
  let failure: string | undefined;
  // The parser wants a stream: a root with no default namespace, so unqualified elements show up.
  const p = createStreamParser({
    streamStart: () => {},
    stanza: (el) => found.push(el),
    streamEnd: () => {},
    error: (c, t) => { failure = `${c}: ${t}`; },
  }, { maxStanzaSize: 1e7, maxDepth: 100 });
  p.write(`<root xmlns='urn:test:none'>${text}</root>`);
  assert.equal(failure, undefined, `message parses alone: ${text}`);
  assert.equal(found.length, 1, `one element per message: ${text}`);
  const el = found[0]!;
  assert.notEqual(el.attrs.xmlns, undefined, `the message's element is namespaced: ${text}`);
  if (el.name === 'features') assert.equal(el.attrs.xmlns, 'http://etherx.jabber.org/streams');
  return el;
}

describe('XMPP over WebSocket', () => {
  let t: TestServer;
  const open: LiveClient[] = [];

  async function connect(service: string, username: string, resource: string, mechanism: string): Promise<LiveClient> {
    const c = await startClient(t.port, username, { service, resource, mechanism });
    open.push(c);
    return c;
  }

  before(async () => {
    t = await startTestServer({ c2s: { 'max-stanza-size': 4096 } });
    for (const u of ['alice', 'bob']) await t.addUser(`${u}@localhost`, 'secret');
  });
  after(async () => {
    for (const c of open) await c.xmpp.stop().catch(() => {});
    await t.stop(true);
  });

  for (const [label, url, mechanism, secure] of [
    ['the dedicated port, SCRAM-SHA-1', () => `ws://127.0.0.1:${t.wsPort}/`, 'SCRAM-SHA-1', false],
    ['the main HTTP port at /xmpp-websocket, PLAIN on loopback', () => `ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, 'PLAIN', false],
    ['the TLS port (wss:), PLAIN', () => `wss://localhost:${t.wssPort}/`, 'PLAIN', true],
    ['the BOSH port at /xmpp-websocket', () => `ws://127.0.0.1:${t.boshPort}/xmpp-websocket`, 'PLAIN', false],
  ] as const) {
    it(`@xmpp/client logs in over ${label}, exchanges messages and presence with a TCP client`, async () => {
      const resource = `ws-${t.wsPort}-${label.length}`;
      const alice = await connect(url(), 'alice', resource, mechanism);
      assert.equal(alice.xmpp.jid?.toString(), `alice@localhost/${resource}`);
      const session = t.server.sessions.get('alice@localhost', resource)!;
      assert.equal(session.secure, secure);

      const bob = await RawClient.connect(t.port);
      const bobJid = await bob.login('bob', 'secret', 'localhost', `tcp-${label.length}`);
      bob.send(`<message to='alice@localhost/${resource}' type='chat' id='b1'><body>over TCP</body></message>`);
      const fromBob = await alice.waitFor((s) => s.is('message') && s.attrs.id === 'b1', 'message from TCP');
      assert.equal(fromBob.getChildText('body'), 'over TCP');
      assert.equal(fromBob.attrs.from, bobJid);

      await alice.xmpp.send(xml('message', { to: bobJid, type: 'chat', id: 'a1' }, xml('body', {}, 'over WebSocket & back <ok>')));
      const fromAlice = await bob.waitForName('message', { id: 'a1' });
      assert.equal(fromAlice.getChildText('body'), 'over WebSocket & back <ok>');
      assert.equal(fromAlice.attrs.from, `alice@localhost/${resource}`);

      // Directed presence both ways, and the unavailable presence when the WebSocket goes away.
      await alice.xmpp.send(xml('presence', { to: bobJid }, xml('status', {}, 'on the web')));
      const p = await bob.waitFor((s) => s.name === 'presence' && s.attrs.from === `alice@localhost/${resource}`, 5000, 'presence');
      assert.equal(p.getChildText('status'), 'on the web');
      bob.send(`<presence to='alice@localhost/${resource}'><show>dnd</show></presence>`);
      const pb = await alice.waitFor((s) => s.is('presence') && s.attrs.from === bobJid, 'presence from TCP');
      assert.equal(pb.getChildText('show'), 'dnd');
      const ping = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(ping.attrs.type, 'result');

      await alice.xmpp.stop();
      const gone = await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable', 5000, 'unavailable');
      assert.equal(gone.attrs.from, `alice@localhost/${resource}`);
      bob.end();
    });
  }

  it('frames the stream with <open/> and <close/>, one namespaced element per message', async () => {
    const c = await RawWs.open(`ws://127.0.0.1:${t.wsPort}/`);
    c.send(OPEN());
    const opened = await c.waitFor((e) => e.name === 'open', 'open');
    assert.equal(opened.attrs.xmlns, FRAMING);
    assert.equal(opened.attrs.from, 'localhost');
    assert.equal(opened.attrs.version, '1.0');
    assert.ok(opened.attrs.id);
    const features = await c.waitFor((e) => e.name === 'features', 'features');
    assert.equal(features.getChild('starttls'), undefined, 'no STARTTLS over WebSocket');
    assert.ok(features.getChild('mechanisms'));
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
    await c.waitFor((e) => e.name === 'success', 'success');
    c.send(OPEN());
    await c.waitFor((e) => e.name === 'features' && !!e.getChild('bind'), 'features after SASL');
    c.send(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>`);
    const bound = await c.waitFor((e) => e.name === 'iq' && e.attrs.id === 'b', 'bind result');
    assert.equal(bound.attrs.xmlns, 'jabber:client');
    // A stanza without xmlns still counts as jabber:client (inherited, as over TCP).
    c.send(`<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await c.waitFor((e) => e.name === 'iq' && e.attrs.id === 'p' && e.attrs.type === 'result', 'ping result');
    c.send(`<close xmlns='${FRAMING}'/>`);
    assert.equal(await c.streamError(), undefined);
  });

  it('refuses a handshake without the xmpp subprotocol', async () => {
    await assert.rejects(RawWs.open(`ws://127.0.0.1:${t.wsPort}/`, []), (e: Error & { status?: number }) => e.status === 400);
    await assert.rejects(RawWs.open(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, ['chat']), (e: Error & { status?: number }) => e.status === 400);
  });

  it('answers upgrades on other paths of the shared HTTP port with 404', async () => {
    await assert.rejects(RawWs.open(`ws://127.0.0.1:${t.httpPort}/elsewhere`), (e: Error & { status?: number }) => e.status === 404);
  });

  const errorCases: [string, (c: RawWs) => void, string][] = [
    ['an unknown host', (c) => c.send(OPEN('elsewhere.example')), 'host-unknown'],
    ['a stanza before <open/>', (c) => c.send(`<message xmlns='jabber:client' to='bob@localhost'/>`), 'not-well-formed'],
    ['a message holding half an element', (c) => { c.send(OPEN()); c.send(`<message xmlns='jabber:client' to='bob@localhost'>`); }, 'not-well-formed'],
    ['a binary message', (c) => { c.send(OPEN()); c.send(Buffer.from(`<presence xmlns='jabber:client'/>`), true); }, 'not-well-formed'],
    ['a comment', (c) => { c.send(OPEN()); c.send(`<!-- hi -->`); }, 'restricted-xml'],
    ['a stanza over max-stanza-size', (c) => { c.send(OPEN()); c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(5000)}</body></message>`); }, 'policy-violation'],
    ['a second <open/> without a restart', (c) => { c.send(OPEN()); c.send(OPEN()); }, 'not-well-formed'],
    ['a stanza before authentication', (c) => { c.send(OPEN()); c.send(`<message xmlns='jabber:client' to='bob@localhost'/>`); }, 'not-authorized'],
    ['a wrong framing namespace', (c) => c.send(`<open xmlns='jabber:client' to='localhost' version='1.0'/>`), 'not-well-formed'],
  ];
  for (const [what, act, condition] of errorCases) {
    it(`ends the stream with ${condition} on ${what}`, async () => {
      const c = await RawWs.open(`ws://127.0.0.1:${t.wsPort}/`);
      act(c);
      assert.equal(await c.streamError(), condition);
      const opened = c.elements.filter((e) => e.name === 'open');
      assert.equal(opened.length, 1, 'one <open/> from the server, even before the error');
    });
  }

  it('caps unauthenticated connections per address as TCP does', async () => {
    const t2 = await startTestServer({ c2s: { 'max-unauthenticated-per-ip': 1 } });
    try {
      const first = await RawWs.open(`ws://127.0.0.1:${t2.wsPort}/`);
      const second = await RawWs.open(`ws://127.0.0.1:${t2.wsPort}/`);
      assert.equal(await second.streamError(), 'policy-violation');
      first.ws.close();
      await first.closed;
      // Released: a new connection is admitted.
      await new Promise((r) => setTimeout(r, 50));
      const third = await RawWs.open(`ws://127.0.0.1:${t2.wsPort}/`);
      third.send(OPEN());
      await third.waitFor((e) => e.name === 'features', 'features');
      third.ws.close();
    } finally {
      await t2.stop(true);
    }
  });
});
