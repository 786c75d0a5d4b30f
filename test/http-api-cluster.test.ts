// The management API on a two-node cluster (shared PostgreSQL, NATS): locate and the session
// list asked on one node see the sessions of the other, each naming its node, and ending a
// session held by the other node closes it there.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { backends } from './support/postgres.js';
import { clusterTestsUnavailable, NatsServer } from './support/nats.js';
import { apiClient } from './support/http-api.js';
import { connectClient, type Connected } from './support/adhoc-client.js';
import { TokenStore } from '../src/modules/http-api/tokens.js';
import { waitUntil } from './support/wait.js';

const skip = clusterTestsUnavailable();

describe('HTTP management API in a cluster', { skip }, () => {
  const postgres = skip ? undefined : backends().find((b) => b.name === 'postgres');
  let nats: NatsServer;
  let node1: TestServer;
  let node2: TestServer;
  let api: ReturnType<typeof apiClient>;
  const clients: Connected[] = [];

  before(async () => {
    nats = await NatsServer.start();
    const storage = await postgres!.storage();
    const overrides = (name: string) => ({
      storage,
      admins: ['admin@localhost'],
      'http-api': { enabled: true },
      'cluster-mode': true,
      cluster: { 'nats-url': nats.url, 'node-name': name, 'heartbeat-interval': 0.3, 'max-inactivity-time': 2.5 },
    });
    node1 = await startTestServer(overrides('node1'));
    node2 = await startTestServer(overrides('node2'));
    for (const u of ['alice', 'admin']) await node1.addUser(`${u}@localhost`);
    await waitUntil(() => node1.server.cluster.nodes().filter((n) => n.state === 'connected').length === 2, 'node1 sees two nodes');
    api = apiClient(node1.httpPort, (await new TokenStore(node1.server.storage).create({ admin: 'admin@localhost', scope: 'admin', days: 1 })).token);
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await node1?.stop(true);
    await node2?.stop(true);
    await nats?.stop();
    await postgres?.cleanup();
  });

  it('locates a user connected to the other node, lists and ends its session from this one', async () => {
    const alice = await connectClient(node2.port, 'alice', { resource: 'far' });
    clients.push(alice);
    await waitUntil(() => node1.server.sessions.get('alice@localhost', 'far') !== undefined, 'node1 knows alice/far');
    const located = await api('GET', '/users/alice@localhost/locate');
    assert.equal(located.status, 200);
    assert.equal(located.body.online, true);
    const [where] = located.body.resources;
    assert.equal(where.jid, 'alice@localhost/far');
    assert.equal(where.node, 'node2');
    assert.equal(where.address, '127.0.0.1');
    assert.ok(!Number.isNaN(Date.parse(where.since)));

    const sessions = await api('GET', '/sessions');
    assert.deepEqual(sessions.body.sessions.filter((s: { jid: string }) => s.jid === 'alice@localhost/far').map((s: { node: string }) => s.node), ['node2']);

    const closed = new Promise<void>((resolve) => alice.xmpp.on('status', (status: string) => { if (status === 'disconnect') resolve(); }));
    assert.equal((await api('DELETE', `/sessions/${encodeURIComponent('alice@localhost/far')}`)).status, 204);
    await closed;
    await waitUntil(() => node1.server.sessions.get('alice@localhost', 'far') === undefined, 'node1 forgets alice/far');
  });
});
