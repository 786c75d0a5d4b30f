// BOSH (XEP-0124, XEP-0206) from Node without a browser, as a server-side bridge would use it
// (seed 003): session creation attributes, the host attribute, login with restart, messages
// and presence with a TCP client, and the spec's answers to rid misuse, pauses, termination,
// expired sessions, oversized bodies and malformed requests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { request } from 'node:http';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { BoshClient, NS_HTTPBIND, post } from './support/bosh-client.js';

const PLAIN = (user: string, password = 'secret') =>
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BOSH', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ c2s: { 'max-stanza-size': 4096 }, bosh: { 'max-request-size': 16384, 'max-pause': 30, 'max-hold': 2 } });
    for (const u of ['alice', 'bob', 'carol', 'dave']) await t.addUser(`${u}@localhost`, 'secret');
  });
  after(async () => {
    await t.stop(true);
  });

  describe('session creation', () => {
    it('answers with the session attributes, the stream features and the node hostname', async () => {
      const c = new BoshClient(t.boshPort);
      const res = await c.create({ wait: '30', hold: '1', ver: '1.6', ack: '1', 'xml:lang': 'de' });
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/xml; charset=utf-8$/);
      const a = res.attrs;
      assert.match(a.sid!, /^[0-9a-f]{32}$/);
      assert.equal(a.wait, '30');
      assert.equal(a.hold, '1');
      assert.equal(a.requests, '2');
      assert.equal(a.polling, '2');
      assert.equal(a.inactivity, '600', 'max-inactivity-time defaults to 600 s');
      assert.equal(a.maxpause, '30');
      assert.equal(a.ver, '1.6', 'the lower of the two versions');
      assert.equal(a.from, 'localhost');
      assert.ok(a.authid, 'the stream id');
      assert.equal(a['xmpp:version'], '1.0');
      assert.equal(a['xmpp:restartlogic'], 'true');
      assert.equal(a.ack, String(c.rid), 'ack of the creation rid when the client asks for acks');
      assert.equal(a.host, hostname(), 'send-node-hostname is on by default');
      assert.equal(a['xml:lang'], 'en');
      const features = res.children.find((e) => e.name === 'features');
      assert.ok(features, `features in the creation response: ${res.text}`);
      assert.equal(features.attrs.xmlns, 'http://etherx.jabber.org/streams');
      const mechanisms = features.getChild('mechanisms')!.getChildren('mechanism').map((m) => m.text());
      assert.ok(mechanisms.includes('PLAIN') && mechanisms.includes('SCRAM-SHA-1'), mechanisms.join(' '));
      assert.equal(features.getChild('starttls'), undefined, 'no STARTTLS over BOSH');
      assert.match(res.text, /xmlns:stream='http:\/\/etherx\.jabber\.org\/streams'/, 'the stream prefix is declared on the body');
    });

    it('caps wait and hold at the configured maximums', async () => {
      const c = new BoshClient(t.boshPort);
      const res = await c.create({ wait: '3600', hold: '5' });
      assert.equal(res.attrs.wait, '60');
      assert.equal(res.attrs.hold, '2');
      assert.equal(res.attrs.requests, '3');
    });

    it('is served on the main HTTP port as well', async () => {
      const c = new BoshClient(t.httpPort);
      const res = await c.create();
      assert.ok(res.attrs.sid);
      const http = new BoshClient(t.httpPort, undefined, '/http-bind');
      assert.ok((await http.create()).attrs.sid, '/http-bind without the slash');
    });

    it('names the node from node-hostname, or not at all with send-node-hostname: false', async () => {
      const named = await startTestServer({ bosh: { 'node-hostname': 't2.example.com' } });
      const off = await startTestServer({ bosh: { 'send-node-hostname': false } });
      try {
        assert.equal((await new BoshClient(named.boshPort).create()).attrs.host, 't2.example.com');
        const res = await new BoshClient(off.boshPort).create();
        assert.ok(res.attrs.sid);
        assert.equal(res.attrs.host, undefined);
      } finally {
        await named.stop(true);
        await off.stop(true);
      }
    });

    it('reports an unknown host, and a missing to attribute, as terminal binding conditions', async () => {
      const unknown = await new BoshClient(t.boshPort).create({ to: 'elsewhere.example' });
      assert.equal(unknown.attrs.type, 'terminate');
      assert.equal(unknown.attrs.condition, 'host-unknown');
      const c = new BoshClient(t.boshPort);
      const missing = await c.raw({ rid: String(c.rid), wait: '5', hold: '1', ver: '1.6' });
      assert.equal(missing.attrs.type, 'terminate');
      assert.equal(missing.attrs.condition, 'improper-addressing');
    });

    it('answers CORS preflights and sets Access-Control-Allow-Origin', async () => {
      const preflight = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = request({
          host: '127.0.0.1', port: t.boshPort, path: '/http-bind/', method: 'OPTIONS', agent: false,
          headers: { Origin: 'https://web.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
        }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers })); });
        req.on('error', reject);
        req.end();
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], '*');
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
      assert.match(String(preflight.headers['access-control-allow-headers']), /content-type/i);
      const res = await post(t.boshPort, BoshClient.body({ rid: '5', to: 'localhost', ver: '1.6', wait: '5' }), { headers: { Origin: 'https://web.example' } });
      assert.equal(res.headers['access-control-allow-origin'], '*');
    });

    it('allows only the configured origins when cors-origins lists them', async () => {
      const strict = await startTestServer({ http: { 'cors-origins': ['https://ops.example'] } });
      try {
        const ok = await post(strict.boshPort, BoshClient.body({ rid: '5', to: 'localhost', ver: '1.6' }), { headers: { Origin: 'https://ops.example' } });
        assert.equal(ok.headers['access-control-allow-origin'], 'https://ops.example');
        const other = await post(strict.boshPort, BoshClient.body({ rid: '5', to: 'localhost', ver: '1.6' }), { headers: { Origin: 'https://evil.example' } });
        assert.equal(other.headers['access-control-allow-origin'], undefined);
      } finally {
        await strict.stop(true);
      }
    });
  });

  describe('an ordinary XMPP session', () => {
    it('logs in with SASL and xmpp:restart, exchanges messages and presence with a TCP client', async () => {
      const alice = new BoshClient(t.boshPort);
      const jid = await alice.login('alice', 'secret', 'bridge');
      assert.equal(jid, 'alice@localhost/bridge');
      assert.ok(t.server.sessions.get('alice@localhost', 'bridge'));
      const bob = await RawClient.connect(t.port);
      const bobJid = await bob.login('bob', 'secret', 'localhost', 'desk');

      // Roster and subscription both ways, then presence broadcast from BOSH to TCP.
      await alice.send(`<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
      await alice.waitFor((e) => e.name === 'iq' && e.attrs.id === 'r1', 'roster');
      await alice.send(`<presence xmlns='jabber:client'/>`);
      bob.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
      await bob.waitForName('iq', { id: 'r1' });
      bob.send(`<presence/>`);
      await alice.send(`<presence xmlns='jabber:client' type='subscribe' to='bob@localhost'/>`);
      await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe', 5000, 'subscribe');
      bob.send(`<presence type='subscribed' to='alice@localhost'/>`);
      bob.send(`<presence type='subscribe' to='alice@localhost'/>`);
      await alice.waitFor((e) => e.name === 'presence' && e.attrs.type === 'subscribe', 'subscribe back');
      await alice.send(`<presence xmlns='jabber:client' type='subscribed' to='bob@localhost'/>`);
      await alice.send(`<presence xmlns='jabber:client'><show>chat</show></presence>`);
      const p = await bob.waitFor((s) => s.name === 'presence' && s.attrs.from === jid && s.getChildText('show') === 'chat', 5000, 'alice chatty');
      assert.equal(p.attrs.type, undefined);
      await alice.waitFor((e) => e.name === 'presence' && e.attrs.from === bobJid && !e.attrs.type, 'bob available');

      // Messages both ways; several stanzas in one body are all delivered, in order.
      bob.send(`<message to='${jid}' type='chat' id='b1'><body>from TCP</body></message>`);
      const m = await alice.waitFor((e) => e.name === 'message' && e.attrs.id === 'b1', 'message');
      assert.equal(m.getChildText('body'), 'from TCP');
      assert.equal(m.attrs.xmlns, 'jabber:client', 'payloads are namespaced inside the body');
      assert.ok(alice.created.children.every((e) => e.attrs.xmlns !== undefined));
      await alice.send(`<message xmlns='jabber:client' to='${bobJid}' type='chat' id='a1'><body>one</body></message>` +
        `<message xmlns='jabber:client' to='${bobJid}' type='chat' id='a2'><body>two &amp; more</body></message>`);
      const one = await bob.waitForName('message', { id: 'a1' });
      const two = await bob.waitForName('message', { id: 'a2' });
      assert.equal(one.attrs.from, jid);
      assert.equal(two.getChildText('body'), 'two & more');
      // Termination with an unavailable presence in the terminate request.
      const bye = await alice.send(`<presence xmlns='jabber:client' type='unavailable'/>`, { type: 'terminate' });
      assert.equal(bye.attrs.type, 'terminate');
      assert.equal(bye.attrs.condition, undefined);
      const gone = await bob.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === jid, 5000, 'unavailable');
      assert.ok(gone);
      assert.equal(t.server.sessions.get('alice@localhost', 'bridge'), undefined);
      const after = await alice.send();
      assert.equal(after.attrs.type, 'terminate');
      assert.equal(after.attrs.condition, 'item-not-found', 'the session is gone');
      bob.end();
    });

    it('continues across connections and processes, as a bridge that stores sid and rid does', async () => {
      const first = new BoshClient(t.httpPort);
      await first.login('carol', 'secret', 'sip-phone');
      // A later run of the bridge: a new client object with the stored sid and rid.
      const later = new BoshClient(t.httpPort, first.rid);
      later.sid = first.sid;
      const res = await later.send(`<presence xmlns='jabber:client'><show>dnd</show><status>onthephone</status></presence>`);
      assert.equal(res.status, 200);
      assert.notEqual(res.attrs.type, 'terminate');
      const s = t.server.sessions.get('carol@localhost', 'sip-phone');
      assert.equal(s?.presence?.getChildText('status'), 'onthephone');
      await later.send('', { type: 'terminate' });
    });

    it('ends the session with remote-stream-error and the stream error on a stream-level fault', async () => {
      const c = new BoshClient(t.boshPort);
      await c.login('dave', 'secret', 'faulty');
      const res = await c.send(`<nonsense xmlns='jabber:client'/>`);
      let end = res;
      while (end.attrs.type !== 'terminate') end = await c.send();
      assert.equal(end.attrs.condition, 'remote-stream-error');
      const err = end.children.find((e) => e.name === 'error');
      assert.equal(err?.attrs.xmlns, 'http://etherx.jabber.org/streams');
      assert.equal(err?.firstElement()?.name, 'unsupported-stanza-type');
      assert.equal(t.server.sessions.get('dave@localhost', 'faulty'), undefined);
    });

    it('gets offline messages at login and PubSub notifications, as over TCP', async () => {
      const tcp = await RawClient.connect(t.port);
      await tcp.login('bob', 'secret', 'localhost', 'sender');
      tcp.send(`<message to='carol@localhost' type='chat' id='offline-1'><body>while you were out</body></message>`);
      await sleep(200);
      const carol = new BoshClient(t.boshPort);
      const jid = await carol.login('carol', 'secret', 'offline');
      await carol.send(`<presence xmlns='jabber:client'/>`);
      const stored = await carol.waitFor((e) => e.name === 'message' && e.attrs.id === 'offline-1', 'offline message');
      assert.equal(stored.getChildText('body'), 'while you were out');
      assert.ok(stored.getChild('delay', 'urn:xmpp:delay'), 'with its delay stamp');

      const ps = (body: string, id: string) => `<iq xmlns='jabber:client' type='set' to='pubsub.localhost' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>${body}</pubsub></iq>`;
      await carol.send(ps(`<create node='bosh-news'/>`, 'c1'));
      assert.equal((await carol.waitFor((e) => e.attrs.id === 'c1', 'create result')).attrs.type, 'result');
      await carol.send(ps(`<subscribe node='bosh-news' jid='carol@localhost'/>`, 's1'));
      assert.equal((await carol.waitFor((e) => e.attrs.id === 's1', 'subscribe result')).attrs.type, 'result');
      await carol.send(ps(`<publish node='bosh-news'><item id='i1'><entry xmlns='urn:test'>hello</entry></item></publish>`, 'p1'));
      const event = await carol.waitFor((e) => e.name === 'message' && !!e.getChild('event', 'http://jabber.org/protocol/pubsub#event'), 'notification');
      assert.equal(event.attrs.from, 'pubsub.localhost');
      assert.equal(event.attrs.to, jid.split('/')[0]);
      assert.equal(event.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'i1');
      await carol.send('', { type: 'terminate' });
      tcp.end();
    });

    it('refuses xmpp:restart when no restart is due', async () => {
      const c = new BoshClient(t.boshPort);
      await c.create();
      const res = await c.send('', { 'xmpp:restart': 'true' });
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'bad-request');
    });
  });

  describe('request ids', () => {
    async function loggedIn(resource: string) {
      const c = new BoshClient(t.boshPort);
      const jid = await c.login('bob', 'secret', resource);
      const tcp = await RawClient.connect(t.port);
      const tcpJid = await tcp.login('alice', 'secret', 'localhost', `rid-${resource}`);
      return { c, jid, tcp, tcpJid };
    }

    it('processes requests in rid order whatever order they arrive in', async () => {
      const { c, tcp, tcpJid } = await loggedIn('order');
      const base = c.rid;
      const msg = (id: string) => `<message xmlns='jabber:client' to='${tcpJid}' type='chat' id='${id}'><body>${id}</body></message>`;
      // rid+2 first: it waits for rid+1, then both go through in rid order.
      const later = c.raw({ rid: String(base + 2), sid: c.sid }, msg('second'));
      await sleep(200);
      assert.equal(tcp.stanzas.filter((s) => s.name === 'message').length, 0, 'nothing forwarded before the gap is filled');
      const earlier = c.raw({ rid: String(base + 1), sid: c.sid }, msg('first'));
      const [r2, r1] = await Promise.all([later, earlier]);
      assert.equal(r1.status, 200);
      assert.equal(r2.status, 200);
      c.rid = base + 2;
      const first = await tcp.waitForName('message');
      const second = await tcp.waitForName('message');
      assert.deepEqual([first.attrs.id, second.attrs.id], ['first', 'second']);
      await c.send('', { type: 'terminate' });
      tcp.end();
    });

    it('answers a repeated rid with the cached response', async () => {
      const { c, tcp, jid } = await loggedIn('dup');
      const pending = c.send();
      await sleep(100);
      tcp.send(`<message to='${jid}' type='chat' id='cached'><body>once</body></message>`);
      const original = await pending;
      assert.ok(original.children.some((e) => e.attrs.id === 'cached'), original.text);
      const again = await c.raw({ rid: String(c.rid), sid: c.sid });
      assert.equal(again.status, 200);
      assert.equal(again.text, original.text, 'the same response, byte for byte');
      // Still a live session.
      const next = await c.send();
      assert.notEqual(next.attrs.type, 'terminate');
      await c.send('', { type: 'terminate' });
      tcp.end();
    });

    it('terminates with item-not-found on a rid beyond the window, and the session is gone', async () => {
      const { c, tcp } = await loggedIn('window');
      const res = await c.raw({ rid: String(c.rid + 3), sid: c.sid });
      assert.equal(res.status, 200);
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'item-not-found');
      assert.equal(t.server.sessions.get('bob@localhost', 'window'), undefined);
      const after = await c.send();
      assert.equal(after.attrs.condition, 'item-not-found');
      tcp.end();
    });

    it('terminates with item-not-found on a rid older than the responses kept', async () => {
      const { c, tcp } = await loggedIn('old');
      // Answered at once (a ping each), so the responses to older rids fall out of the buffer.
      for (let i = 0; i < 3; i++) await c.send(`<iq xmlns='jabber:client' type='get' id='p${i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      const res = await c.raw({ rid: String(c.rid - 5), sid: c.sid });
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'item-not-found');
      assert.equal(t.server.sessions.get('bob@localhost', 'old'), undefined);
      tcp.end();
    });

    it('terminates with item-not-found for an unknown sid', async () => {
      const res = await post(t.boshPort, BoshClient.body({ rid: '42', sid: 'no-such-session' }));
      assert.equal(res.status, 200);
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'item-not-found');
    });

    it('terminates with policy-violation on more simultaneous requests than `requests`', async () => {
      const c = new BoshClient(t.boshPort);
      const created = await c.create({ wait: '5', hold: '2' });
      assert.equal(created.attrs.requests, '3');
      const base = c.rid;
      const at = (n: number) => c.raw({ rid: String(base + n), sid: c.sid });
      // Two held, one waiting for the missing base+3: the fourth unanswered one is one too many.
      const pending = [at(1), at(2), at(4)];
      await sleep(150);
      const fourth = await at(5);
      assert.equal(fourth.attrs.type, 'terminate');
      assert.equal(fourth.attrs.condition, 'policy-violation');
      for (const r of await Promise.all(pending)) assert.equal(r.attrs.type, 'terminate');
    });

    it('uses HTTP error codes for a client that sent no ver (legacy)', async () => {
      const c = new BoshClient(t.boshPort);
      const created = await c.raw({ rid: String(c.rid), to: 'localhost', wait: '5', hold: '1', 'xmpp:version': '1.0' });
      c.sid = created.attrs.sid!;
      const res = await c.raw({ rid: String(c.rid + 10), sid: c.sid });
      assert.equal(res.status, 404);
    });
  });

  describe('waiting, pausing and inactivity', () => {
    it('holds an empty request for wait seconds, and answers at once when data comes', async () => {
      const c = new BoshClient(t.boshPort);
      const jid = await c.login('alice', 'secret', 'waiter', { wait: '1' });
      let started = Date.now();
      const empty = await c.send();
      assert.ok(Date.now() - started >= 900, 'held about a second');
      assert.equal(empty.children.length, 0);
      const tcp = await RawClient.connect(t.port);
      await tcp.login('bob', 'secret', 'localhost', 'pusher');
      started = Date.now();
      const held = c.send();
      await sleep(100);
      tcp.send(`<message to='${jid}' type='chat' id='push'><body>now</body></message>`);
      const pushed = await held;
      assert.ok(Date.now() - started < 800, 'answered as soon as the message came');
      assert.ok(pushed.children.some((e) => e.attrs.id === 'push'));
      await c.send('', { type: 'terminate' });
      tcp.end();
    });

    it('refuses a pause longer than maxpause with policy-violation', async () => {
      const c = new BoshClient(t.boshPort);
      await c.create();
      const res = await c.send('', { pause: '31' });
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'policy-violation');
    });

    it('answers held requests on pause, and ends the session with unavailable presence once the pause runs out', async () => {
      const c = new BoshClient(t.boshPort);
      const jid = await c.login('carol', 'secret', 'paused');
      const tcp = await RawClient.connect(t.port);
      const tcpJid = await tcp.login('dave', 'secret', 'localhost', 'watcher');
      // Directed presence: dave must be told when carol's session goes.
      await c.send(`<presence xmlns='jabber:client' to='${tcpJid}'/>`);
      await tcp.waitFor((s) => s.name === 'presence' && s.attrs.from === jid, 5000, 'directed presence');
      const held = c.send();
      await sleep(100);
      const pause = await c.send('', { pause: '1' });
      assert.equal(pause.status, 200);
      assert.notEqual(pause.attrs.type, 'terminate');
      assert.equal(pause.children.length, 0, 'a pause response carries no payload');
      const answered = await held;
      assert.equal(answered.status, 200, 'the held request was answered');
      const started = Date.now();
      const gone = await tcp.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === jid, 5000, 'unavailable');
      assert.ok(gone);
      assert.ok(Date.now() - started < 3000, 'after about the one second asked for');
      const after = await c.send();
      assert.equal(after.attrs.condition, 'item-not-found', 'an expired session is unknown');
      tcp.end();
    });

    it('ends an inactive session after max-inactivity-time with unavailable presence', async () => {
      const quick = await startTestServer({ bosh: { 'max-inactivity-time': 1 } });
      try {
        await quick.addUser('alice@localhost');
        await quick.addUser('bob@localhost');
        assert.equal((await new BoshClient(quick.boshPort).create()).attrs.inactivity, '1');
        const fresh = new BoshClient(quick.boshPort);
        const jid = await fresh.login('alice', 'secret', 'idle');
        const tcp = await RawClient.connect(quick.port);
        const tcpJid = await tcp.login('bob', 'secret', 'localhost', 'watcher');
        await fresh.send(`<presence xmlns='jabber:client' to='${tcpJid}'/>`);
        await tcp.waitFor((s) => s.name === 'presence' && s.attrs.from === jid && !s.attrs.type, 5000, 'directed presence');
        // The bridge stops polling.
        const gone = await tcp.waitFor((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === jid, 5000, 'unavailable');
        assert.ok(gone);
        assert.equal(quick.server.sessions.get('alice@localhost', 'idle'), undefined);
        const after = await fresh.send();
        assert.equal(after.attrs.type, 'terminate');
        assert.equal(after.attrs.condition, 'item-not-found');
        tcp.end();
      } finally {
        await quick.stop(true);
      }
    });
  });

  describe('malformed and oversized requests', () => {
    it('ends the session with policy-violation on a body over max-request-size', async () => {
      const c = new BoshClient(t.boshPort);
      await c.login('alice', 'secret', 'big');
      const filler = `<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(2000)}</body></message>`.repeat(10);
      const res = await c.send(filler);
      assert.equal(res.status, 200);
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'policy-violation');
      assert.equal(t.server.sessions.get('alice@localhost', 'big'), undefined);
      const after = await c.send();
      assert.equal(after.attrs.condition, 'item-not-found');
    });

    it('ends the session with policy-violation on a stanza over max-stanza-size', async () => {
      const c = new BoshClient(t.boshPort);
      await c.login('alice', 'secret', 'bigstanza');
      const res = await c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>${'y'.repeat(6000)}</body></message>`);
      assert.equal(res.attrs.type, 'terminate');
      assert.equal(res.attrs.condition, 'policy-violation');
      assert.equal(t.server.sessions.get('alice@localhost', 'bigstanza'), undefined);
    });

    it('answers bad-request to malformed XML, a wrong root element and restricted XML', async () => {
      for (const body of [
        `<body xmlns='${NS_HTTPBIND}' rid='1' to='localhost'`,
        `<body xmlns='${NS_HTTPBIND}' rid='1' to='localhost'><a></b></body>`,
        `<envelope xmlns='${NS_HTTPBIND}' rid='1' to='localhost'/>`,
        `<body xmlns='urn:wrong' rid='1' to='localhost'/>`,
        `<!DOCTYPE body><body xmlns='${NS_HTTPBIND}' rid='1' to='localhost'/>`,
        `<body xmlns='${NS_HTTPBIND}' rid='not-a-number' to='localhost' ver='1.6'/>`,
      ]) {
        const res = await post(t.boshPort, body);
        assert.equal(res.attrs.type, 'terminate', body);
        assert.equal(res.attrs.condition, 'bad-request', body);
      }
      // Within a session, a malformed request ends it.
      const c = new BoshClient(t.boshPort);
      await c.create();
      c.rid++;
      const res = await post(t.boshPort, `<body xmlns='${NS_HTTPBIND}' rid='${c.rid}' sid='${c.sid}'><presence></body>`);
      assert.equal(res.attrs.condition, 'bad-request');
      assert.equal((await c.send()).attrs.condition, 'item-not-found');
    });

    it('answers GET with a short description and other methods with 405', async () => {
      const get = await fetch(`http://127.0.0.1:${t.boshPort}/http-bind/`);
      assert.equal(get.status, 200);
      assert.match(await get.text(), /BOSH/);
      const put = await fetch(`http://127.0.0.1:${t.boshPort}/http-bind/`, { method: 'PUT', body: 'x' });
      assert.equal(put.status, 405);
    });
  });

  it('SASL over BOSH: a wrong password fails, then PLAIN succeeds', async () => {
    const c = new BoshClient(t.boshPort);
    await c.create();
    await c.send(PLAIN('alice', 'wrong'));
    const failure = await c.waitFor((e) => e.name === 'failure', 'failure');
    assert.ok(failure.getChild('not-authorized'));
    await c.send(PLAIN('alice'));
    await c.waitFor((e) => e.name === 'success', 'success');
  });
});
