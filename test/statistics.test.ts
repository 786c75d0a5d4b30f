// Statistics and health over real sockets: GET /metrics moves as real clients log in, fail to log
// in, exchange messages and get offline messages; GET /health answers 200 while serving and 503
// while a graceful stop drains; the "Get statistics" ad-hoc command gives administrators the same
// figures, and nobody else.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from './support/server.js';
import { startClient, type LiveClient } from './support/xmpp-client.js';
import { connectClient, type Connected } from './support/adhoc-client.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { BoshClient } from './support/bosh-client.js';

// Node 20 has no global WebSocket; @xmpp/websocket uses the global one, as in a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/** The value of one sample of the Prometheus text, e.g. `switchboard_stanzas_in_total{type="message"}`; undefined when absent. */
function sample(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ')) return Number(line.slice(name.length + 1));
  }
  return undefined;
}

async function metrics(t: TestServer): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.httpPort}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe('statistics and health', () => {
  let t: TestServer;
  const open: { stop(): Promise<unknown> }[] = [];
  const track = <C extends { stop(): Promise<unknown> }>(c: C): C => { open.push(c); return c; };
  const stopClient = (c: LiveClient) => ({ stop: () => c.xmpp.stop().catch(() => undefined) });

  before(async () => {
    t = await startTestServer({ admins: ['admin@localhost'] });
    for (const u of ['admin', 'alice', 'bob', 'carol', 'dave']) await t.addUser(`${u}@localhost`);
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop(true);
  });

  it('counts connections, logins, failures, stanzas and offline messages as clients use the server', async () => {
    const before = await metrics(t);
    assert.equal(sample(before, 'switchboard_sessions'), 0);
    assert.equal(sample(before, 'switchboard_stanzas_in_total{type="message"}'), 0);
    assert.ok(sample(before, 'process_resident_memory_bytes')! > 0, 'process memory is exported');
    assert.ok(sample(before, 'nodejs_eventloop_lag_p99_seconds') !== undefined, 'event-loop lag is exported');

    const wrong = await RawClient.connect(t.port);
    wrong.send(STREAM_OPEN());
    await wrong.waitForName('features');
    wrong.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0wrong').toString('base64')}</auth>`);
    await wrong.waitForName('failure');
    wrong.end();
    await wrong.waitForClose();
    const alice = await startClient(t.port, 'alice');
    track(stopClient(alice));
    const bob = await startClient(0, 'bob', { service: `ws://127.0.0.1:${t.httpPort}/xmpp-websocket` });
    track(stopClient(bob));
    for (let i = 0; i < 3; i++) await alice.xmpp.send(xml('message', { to: bob.jid, type: 'chat', id: `m${i}` }, xml('body', {}, `hello ${i}`)));
    for (let i = 0; i < 3; i++) await bob.waitFor((s) => s.is('message') && s.attrs.id === `m${i}`, `message m${i}`);
    // carol is offline: the message is stored, then delivered when she comes online.
    await alice.xmpp.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'off1' }, xml('body', {}, 'while you were away')));
    await alice.xmpp.send(xml('iq', { type: 'get', id: 'sync', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await alice.waitFor((s) => s.is('iq') && s.attrs.id === 'sync', 'ping reply');

    let text = await metrics(t);
    assert.equal(sample(text, 'switchboard_sessions'), 2);
    assert.equal(sample(text, 'switchboard_connections{transport="tcp"}'), 1);
    assert.equal(sample(text, 'switchboard_connections{transport="websocket"}'), 1);
    assert.equal(sample(text, 'switchboard_connections_total{transport="tcp"}'), 2, 'the failed login was a connection too');
    assert.equal(sample(text, 'switchboard_auth_failures_total{mechanism="PLAIN"}'), 1);
    assert.equal(sample(text, 'switchboard_logins_total'), 2);
    assert.equal(sample(text, 'switchboard_stanzas_in_total{type="message"}'), 4);
    assert.ok(sample(text, 'switchboard_stanzas_out_total{type="message"}')! >= 3);
    assert.ok(sample(text, 'switchboard_stanzas_in_total{type="iq"}')! >= 1);
    assert.equal(sample(text, 'switchboard_offline_messages_stored_total'), 1);
    assert.equal(sample(text, 'switchboard_offline_messages_delivered_total'), 0);
    assert.ok(sample(text, 'switchboard_output_queue') !== undefined);

    const carol = await startClient(t.port, 'carol');
    track(stopClient(carol));
    await carol.xmpp.send(xml('presence'));
    await carol.waitFor((s) => s.is('message') && s.attrs.id === 'off1', 'the offline message');
    text = await metrics(t);
    assert.equal(sample(text, 'switchboard_offline_messages_delivered_total'), 1);
    assert.equal(sample(text, 'switchboard_sessions'), 3);

    await new BoshClient(t.httpPort).login('dave');
    text = await metrics(t);
    assert.equal(sample(text, 'switchboard_connections{transport="bosh"}'), 1);
    assert.equal(sample(text, 'switchboard_sessions'), 4);
  });

  it('gives administrators the statistics as an ad-hoc command, and refuses others', async () => {
    const admin = track<Connected>(await connectClient(t.port, 'admin'));
    const listed = await admin.items('localhost', 'http://jabber.org/protocol/commands');
    assert.ok(listed.some((c) => c.node === 'stats' && c.name === 'Get statistics'), 'listed on the virtual host');
    const result = await admin.command('localhost', 'stats');
    assert.equal(result.status, 'completed');
    assert.equal(result.form?.attrs.type, 'result');
    assert.ok(Number(result.values['switchboard_sessions']?.[0]) >= 1, JSON.stringify(result.values).slice(0, 500));
    assert.ok(Number(result.values['switchboard_stanzas_in_total{type="message"}']?.[0]) >= 4);
    assert.ok(Number(result.values['process_resident_memory_bytes']?.[0]) > 0);

    const plain = track<Connected>(await connectClient(t.port, 'bob', { resource: 'adhoc' }));
    assert.deepEqual((await plain.items('localhost', 'http://jabber.org/protocol/commands')).filter((c) => c.node === 'stats'), []);
    const refused = await plain.commandError('localhost', 'stats');
    assert.equal(refused.condition, 'forbidden');
  });

  it('answers /health with 200 while serving and refuses other methods', async () => {
    const res = await fetch(`http://127.0.0.1:${t.httpPort}/health`);
    assert.equal(res.status, 200);
    const body = await res.json() as { status: string; sessions: number; version: string };
    assert.equal(body.status, 'ok');
    assert.ok(body.sessions >= 1);
    assert.equal((await fetch(`http://127.0.0.1:${t.httpPort}/health`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`http://127.0.0.1:${t.httpPort}/metrics`, { method: 'DELETE' })).status, 405);
  });
});

describe('/metrics access and /health while stopping', () => {
  it('refuses /metrics to addresses outside http.metrics-allow, with a JSON reason', async () => {
    const t = await startTestServer({ http: { 'metrics-allow': ['10.0.0.0/8', 'fd00::/8'] } });
    try {
      const res = await fetch(`http://127.0.0.1:${t.httpPort}/metrics`);
      assert.equal(res.status, 403);
      const body = await res.json() as { error: string; message: string };
      assert.match(body.message, /http\.metrics-allow/);
      assert.equal((await fetch(`http://127.0.0.1:${t.httpPort}/health`)).status, 200, '/health stays open');
    } finally {
      await t.stop(true);
    }
  });

  it('answers /health with 503 during the drain of a graceful stop, while still serving', async () => {
    const t = await startTestServer({ http: { 'drain-time': 2 } });
    const stopping = t.stop(true);
    try {
      const res = await fetch(`http://127.0.0.1:${t.httpPort}/health`);
      assert.equal(res.status, 503);
      assert.equal((await res.json() as { status: string }).status, 'stopping');
    } finally {
      await stopping;
    }
  });

  it('rejects a malformed metrics-allow entry at start', async () => {
    await assert.rejects(startTestServer({ http: { 'metrics-allow': ['10.0.0.0/33'] } }), /metrics-allow.*IP address or a network/s);
  });
});
