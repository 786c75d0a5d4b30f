// The cluster bus over a real nats-server with a password: credentials from the URL, publish and
// subscribe, a request gathering replies, and a clear error for a wrong password.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { NatsServer } from './support/nats.js';
import { connectNatsBus } from '../src/cluster/nats-bus.js';

const missing = spawnSync('nats-server', ['--version']).status !== 0;
if (missing && process.env.CI) throw new Error('nats-server is missing: .ci/run installs it');
const log = pino({ level: 'silent' });

describe('cluster bus over NATS', { skip: missing ? 'needs nats-server (apt-get install nats-server)' : undefined }, () => {
  let nats: NatsServer;
  before(async () => { nats = await NatsServer.start(['--user', 'sw', '--pass', 's@cret']); });
  after(async () => { await nats?.stop(); });

  it('connects with the credentials of the URL, publishes, subscribes and gathers replies', async () => {
    const url = `nats://sw:s%40cret@127.0.0.1:${nats.port}`;
    const a = await connectNatsBus({ url, name: 'a', log });
    const b = await connectNatsBus({ url, name: 'b', log });
    try {
      const got = new Promise((resolve) => b.subscribe('t.hello', (m) => resolve(m.data)));
      b.subscribe('t.ask', (m) => m.respond({ from: 'b', echo: m.data }));
      a.subscribe('t.ask', (m) => m.respond({ from: 'a', echo: m.data }));
      // Subscriptions travel to the server first: a round trip through it orders them before what follows.
      await a.request('t.none', null, { timeout: 200 });
      await b.request('t.none', null, { timeout: 200 });
      a.publish('t.hello', { n: 1 });
      assert.deepEqual(await got, { n: 1 });
      const replies = await a.request('t.ask', 'hi', { timeout: 5000, expected: 2 });
      assert.deepEqual(replies.map((r) => (r as { from: string }).from).sort(), ['a', 'b']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a wrong password, naming the server but not the password', async () => {
    await assert.rejects(connectNatsBus({ url: `nats://sw:wrong@127.0.0.1:${nats.port}`, name: 'x', log }), /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: .*Authorization/i);
  });
});
