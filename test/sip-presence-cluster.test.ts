// SIP presence bridge in a two-node cluster (shared PostgreSQL, NATS): the bridge runs on the
// node serving the domain services only, so the proxy's table is polled by one node and each
// row applied once; a report posted to the other node is forwarded to it; the phone's presence
// reaches a watcher connected to the other node; and when the serving node stops, the other one
// takes the bridge over (table and HTTP).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element as XmppElement } from '@xmpp/xml';
import { backends } from './support/postgres.js';
import { clusterTestsUnavailable, NatsServer } from './support/nats.js';
import { startLoggedServer, startWatcher, writeMapping, postgresTable, type LoggedServer, type LogLine, type ProxyTable } from './support/sip-presence.js';
import type { LiveClient } from './support/xmpp-client.js';
import { waitUntil } from './support/wait.js';

const skip = clusterTestsUnavailable();
const TOKEN = 'sip-presence-cluster-token-0123456789';
const PHONE = 'alice@localhost/phone/100@pbx.example.com';

async function post(port: number, body: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}/sip-presence/events`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() as Record<string, unknown> };
}

async function expectPhone(watcher: LiveClient, what: 'available' | 'busy' | 'unavailable'): Promise<XmppElement> {
  const p = await watcher.waitFor((s) => s.is('presence') && s.attrs.from === PHONE, `${what} presence of the phone`, 15_000);
  assert.equal(p.attrs.type, what === 'unavailable' ? 'unavailable' : undefined, p.toString());
  if (what !== 'unavailable') assert.equal(p.getChildText('show'), what === 'busy' ? 'dnd' : null, p.toString());
  return p;
}

/** The bridge's log lines about table rows (each applied row logs its state once, at debug or warn). */
const rowLines = (logs: LogLine[]) => logs.filter((l) => typeof l.source === 'string' && l.source.startsWith('table row '));

describe('SIP presence bridge in a cluster', { skip }, () => {
  const postgres = skip ? undefined : backends().find((b) => b.name === 'postgres');
  let nats: NatsServer;
  let node1: LoggedServer;
  let node2: LoggedServer;
  let table: ProxyTable;
  let bob: LiveClient;
  let node1Stopped = false;

  before(async () => {
    nats = await NatsServer.start();
    const storage = await postgres!.storage() as { type: string; url: string };
    // The proxy's table in the same fresh schema as the servers' storage.
    table = await postgresTable(storage.url);
    const mapping = writeMapping(mkdtempSync(join(tmpdir(), 'switchboard-sip-cluster-')), ['sip:100@pbx.example.com,alice,,123456']);
    const overrides = (name: string) => ({
      storage,
      'cluster-mode': true,
      cluster: { 'nats-url': nats.url, 'node-name': name, 'heartbeat-interval': 0.3, 'max-inactivity-time': 2.5 },
      'sip-presence': {
        enabled: true, mapping, 'reload-interval': 1,
        table: { enabled: true, driver: 'postgres', url: storage.url, interval: 0.1 },
        http: { enabled: true, token: TOKEN },
      },
    });
    node1 = await startLoggedServer(overrides('node1'));
    node2 = await startLoggedServer(overrides('node2'));
    await waitUntil(() => node2.server.cluster.nodes().filter((n) => n.state === 'connected').length === 2, 'node2 sees two nodes');
    for (const u of ['alice', 'bob']) await node1.addUser(`${u}@localhost`);
    await node1.subscribe('bob@localhost', 'alice@localhost');
    // The watcher is on the node that does not run the bridge.
    bob = await startWatcher(node2.port, 'bob');
  });
  after(async () => {
    await bob?.xmpp.stop();
    if (!node1Stopped) await node1?.stop();
    await node2?.stop();
    await table?.close();
    await nats?.stop();
    await postgres?.cleanup();
  });

  it('runs the bridge on the serving node only', async () => {
    assert.equal(node1.server.cluster.serving(), true);
    assert.equal(node2.server.cluster.serving(), false);
    await node2.waitForLog((l) => /SIP presence bridge idle/.test(l.msg), 'node2 idle');
    assert.equal(node1.logs.some((l) => /SIP presence bridge idle/.test(l.msg)), false, 'node1 runs the bridge');
  });

  it('forwards a report posted to the other node to the serving one, and its presence reaches a watcher on the other node', async () => {
    const answer = await post(node2.httpPort, { uri: 'sip:100@pbx.example.com', state: 'online' });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.deepEqual(answer.json.applied, [{ uri: '100@pbx.example.com', from: 'offline', reported: 'online', to: 'online', valid: true }]);
    await expectPhone(bob, 'available');
    // Applied by node1's bridge (the phone's session lives there), on node2's behalf.
    await node1.waitForLog((l) => l.source === 'http 127.0.0.1 via node node2' && l.to === 'online', 'node1 applied the forwarded report');
    assert.equal([...node1.server.sessions.local()].some((s) => s.jid.full === PHONE), true, 'the phone session is on node1');
    assert.ok(node2.server.sessions.get('alice@localhost', 'phone/100@pbx.example.com'), 'node2 knows the phone session from the directory');
    // A report the bridge cannot use is refused the same way through the forward.
    const unknown = await post(node2.httpPort, { uri: 'sip:999@pbx.example.com', state: 'online' });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.json));
    assert.deepEqual(unknown.json.unknown, ['999@pbx.example.com']);
  });

  it('applies each table row exactly once, on the serving node', async () => {
    // One row at a time, each applied before the next is written: were both nodes polling, the
    // rows would be shared out between them (about half each, at 10 polls a second).
    const sequence = ['onthephone', 'still-onthephone', 'still-online', 'onthephone', 'still-onthephone',
      'still-onthephone', 'still-online', 'still-online', 'onthephone', 'still-online'];
    const before1 = rowLines(node1.logs).length;
    const taken = () => rowLines(node1.logs).length - before1 + rowLines(node2.logs).length;
    for (const [i, state] of sequence.entries()) {
      await table.insert('sip:100@pbx.example.com', state);
      await waitUntil(() => taken() === i + 1, `row ${i + 1} applied`);
    }
    for (const what of ['busy', 'available', 'busy', 'available', 'busy', 'available'] as const) await expectPhone(bob, what);
    assert.deepEqual(rowLines(node2.logs), [], 'node2 took no rows');
    const applied = rowLines(node1.logs).slice(before1);
    // In order, each a valid transition from the state the one before left.
    const states = ['online', ...sequence];
    assert.deepEqual(applied.map((l) => [l.from, l.to]), sequence.map((s, i) => [states[i], s]));
    assert.equal(new Set(applied.map((l) => l.source)).size, sequence.length, 'each row once');
  });

  it('moves the bridge to the other node when the serving node stops', async () => {
    node1Stopped = true;
    await node1.stop();
    // The phone's session ended with its node.
    await expectPhone(bob, 'unavailable');
    await node2.waitForLog((l) => /SIP presence bridge starting/.test(l.msg), 'node2 takes the bridge over');
    assert.equal(node2.server.cluster.serving(), true);

    await table.insert('sip:100@pbx.example.com', 'online');
    await expectPhone(bob, 'available');
    await waitUntil(() => rowLines(node2.logs).length === 1, 'node2 applied the row');
    assert.equal([...node2.server.sessions.local()].some((s) => s.jid.full === PHONE), true, 'the phone session is on node2 now');

    const answer = await post(node2.httpPort, { uri: 'sip:100@pbx.example.com', state: 'onthephone' });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.deepEqual(answer.json.applied, [{ uri: '100@pbx.example.com', from: 'online', reported: 'onthephone', to: 'onthephone', valid: true }]);
    await expectPhone(bob, 'busy');
  });
});
