// The watchdog (seed 001 section 11.8) over real sockets, with small values: idle clients get
// XMPP or whitespace pings (ping frames on WebSocket), clients that answer stay, and a client
// that stops answering is cut with connection-timeout; its contacts get unavailable presence,
// as for any session that ends. The decision logic itself is src/core/watchdog.test.ts.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient } from './support/raw-client.js';
import { wsLogin } from './support/ws-login.js';
import type { Element } from '../src/xml/element.js';
import type { RosterItem } from '../src/storage/types.js';

const contact = (jid: string): RosterItem => ({ jid, groups: [], subscription: 'both', ask: false, pendingIn: false, approved: false, visible: true });
const isServerPing = (s: Element) => s.name === 'iq' && s.attrs.type === 'get' && s.getChild('ping')?.attrs.xmlns === 'urn:xmpp:ping';
const unavailableFrom = (jid: string) => (s: Element) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === jid;

describe('watchdog', () => {
  let t: TestServer | undefined;
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0)) c();
    await t?.stop(true);
    t = undefined;
  });

  /** Romeo and Juliet, contacts of each other, both online with available presence. */
  async function lovers(c2s: Record<string, unknown>): Promise<{ romeo: RawClient; juliet: RawClient }> {
    t = await startTestServer({ c2s });
    for (const u of ['romeo', 'juliet']) await t.addUser(`${u}@localhost`);
    await t.server.storage.roster.setItem('romeo@localhost', contact('juliet@localhost'));
    await t.server.storage.roster.setItem('juliet@localhost', contact('romeo@localhost'));
    const juliet = await RawClient.connect(t.port);
    cleanups.push(() => juliet.destroy());
    await juliet.login('juliet', 'secret', 'localhost', 'balcony');
    juliet.send('<presence/>');
    const romeo = await RawClient.connect(t.port);
    cleanups.push(() => romeo.destroy());
    await romeo.login('romeo', 'secret', 'localhost', 'garden');
    romeo.send('<presence/>');
    await juliet.waitFor((s) => s.name === 'presence' && s.attrs.from === 'romeo@localhost/garden' && s.attrs.type === undefined);
    await romeo.waitFor((s) => s.name === 'presence' && s.attrs.from === 'juliet@localhost/balcony' && s.attrs.type === undefined);
    await romeo.waitFor((s) => s.name === 'presence' && s.attrs.from === 'romeo@localhost/garden', 5000, 'his own presence');
    return { romeo, juliet };
  }

  /** Sees every XEP-0199 ping the server sends and answers it, until told to stop answering. */
  function answerPings(client: RawClient, onPing?: (ping: Element) => void): () => void {
    let answering = true;
    void (async () => {
      for (;;) {
        const ping = await client.waitFor(isServerPing, 60_000, 'a ping').catch(() => undefined);
        if (!ping) return;
        onPing?.(ping);
        if (answering) client.send(`<iq type='result' id='${ping.attrs.id}' to='${ping.attrs.from}'/>`);
      }
    })();
    return () => { answering = false; };
  }

  it('pings an idle client with XEP-0199, keeps it while it answers, and cuts it when it stops; contacts see it go', async () => {
    const maxInactivity = 3;
    const { romeo, juliet } = await lovers({ 'watchdog-delay': 0.1, 'watchdog-timeout': 0.5, 'max-inactivity-time': maxInactivity });
    answerPings(juliet);
    const started = Date.now();
    const pings: Element[] = [];
    const stop = answerPings(romeo, (ping) => pings.push(ping));
    // Each answer restarts the idle time, so seven pings take at least 7 x 0.5 s: past max-inactivity-time.
    while (pings.length < 7) await new Promise((r) => setTimeout(r, 100));
    stop();
    assert.ok(Date.now() - started > maxInactivity * 1000, 'answered pings kept the connection beyond max-inactivity-time');
    assert.equal(romeo.ended, false);
    const ping = pings[0]!;
    assert.equal(ping.attrs.from, 'localhost');
    assert.equal(ping.attrs.to, 'romeo@localhost/garden');
    assert.ok(ping.attrs.id, 'the ping has an id to answer');
    assert.equal(new Set(pings.map((p) => p.attrs.id)).size, pings.length, 'ids are not reused');

    // Romeo goes silent: pinged once more, then cut, and Juliet learns he is gone.
    const answered = pings.length;
    assert.equal(await romeo.waitForClose(10_000), 'connection-timeout');
    assert.ok(pings.length > answered, 'pinged again before the cut');
    await juliet.waitFor(unavailableFrom('romeo@localhost/garden'), 5000, "Romeo's unavailable presence");
    assert.equal(juliet.ended, false, 'Juliet, who answers, is still connected');
    assert.equal(t!.server.sessions.get('romeo@localhost', 'garden'), undefined, 'the session ended');

    // The statistics count it: one cut on c2s, none on WebSocket, and the pings sent.
    const metrics = await (await fetch(`http://127.0.0.1:${t!.httpPort}/metrics`)).text();
    const counter = (name: string, listener: string) => Number(new RegExp(`^switchboard_watchdog_${name}_total\\{listener="${listener}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    assert.equal(counter('disconnects', 'c2s'), 1);
    assert.equal(counter('disconnects', 'websocket'), 0);
    assert.ok(counter('pings', 'c2s') >= pings.length, `pings counted: ${counter('pings', 'c2s')} of at least ${pings.length}`);
  });

  it('sends whitespace pings when configured so; a client that only sends whitespace stays, a silent one is cut', async () => {
    const { romeo, juliet } = await lovers({ 'watchdog-delay': 0.1, 'watchdog-timeout': 0.3, 'max-inactivity-time': 1.5, 'watchdog-ping-type': 'whitespace' });
    // Juliet's own whitespace is traffic from her: it keeps her connection.
    const keepalive = setInterval(() => juliet.send(' '), 200);
    cleanups.push(() => clearInterval(keepalive));
    const before = romeo.received.length;
    // Romeo sends nothing: he gets spaces between elements, then the cut.
    const error = await romeo.waitForClose(10_000);
    assert.equal(error, 'connection-timeout');
    const afterLogin = romeo.received.slice(before);
    assert.match(afterLogin, /^( +)<(stream:)?error/, `only whitespace pings came before the error: ${JSON.stringify(afterLogin)}`);
    assert.equal(romeo.stanzas.filter(isServerPing).length, 0, 'no XMPP pings in whitespace mode');
    await juliet.waitFor(unavailableFrom('romeo@localhost/garden'), 5000, "Romeo's unavailable presence");
    assert.equal(juliet.ended, false);
  });

  it('takes per-listener settings: WebSocket pings are ping frames; a client that answers with pongs stays, one that does not is cut', async () => {
    t = await startTestServer({ websocket: { 'watchdog-delay': 0.1, 'watchdog-timeout': 0.3, 'max-inactivity-time': 1.5, 'watchdog-ping-type': 'whitespace' } });
    for (const u of ['ada', 'bea']) await t.addUser(`${u}@localhost`);
    const login = async (user: string, autoPong: boolean) => {
      const session = await wsLogin(t!.wsPort, user, { autoPong });
      cleanups.push(() => session.ws.terminate());
      return session;
    };
    const answering = await login('ada', true);
    const silent = await login('bea', false);
    await silent.closed;
    assert.match(silent.messages.join(''), /<connection-timeout/, 'closed with connection-timeout');
    assert.ok(silent.pings() >= 1, 'pinged before being cut');
    // The one answering pongs outlives max-inactivity-time.
    while (Date.now() - answering.started < 2500) await new Promise((r) => setTimeout(r, 100));
    assert.ok(answering.pings() >= 2);
    assert.doesNotMatch(answering.messages.join(''), /connection-timeout/);
    // TCP clients keep the global settings (24 h): nothing happened to them meanwhile.
    assert.equal(t.server.watchdogs.c2s.settings.maxInactivity, 86_400_000);
  });
});
