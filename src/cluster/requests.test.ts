// Cluster-wide requests over the in-process bus: replies gathered from every node that answers,
// silence from those with nothing to say, errors reported per node, and the timeout when a
// node does not answer at all.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalBusNetwork } from './local-bus.js';
import { ClusterRequests } from './requests.js';

function nodes(names: string[], expected = names.length) {
  const network = new LocalBusNetwork();
  return names.map((nodeName) => {
    const r = new ClusterRequests({ bus: network.connect(), prefix: 't', nodeName, log: pino({ level: 'silent' }), timeout: 200, expectedReplies: () => expected });
    r.start();
    return r;
  });
}

describe('cluster-wide requests', () => {
  it('gathers the answers of every node, leaves out the silent ones, and reports errors per node', async () => {
    const [a, b, c] = nodes(['a', 'b', 'c']);
    a!.handle('whoami', (payload, from) => `a for ${from.node} (${JSON.stringify(payload)})`);
    b!.handle('whoami', async () => undefined);
    c!.handle('whoami', () => { throw new Error('c cannot'); });
    const started = Date.now();
    const replies = await b!.request('whoami', { x: 1 }, { timeout: 10_000 });
    assert.deepEqual(replies, [{ node: 'a', value: 'a for b ({"x":1})' }, { node: 'c', error: 'c cannot' }]);
    assert.ok(Date.now() - started < 10_000, 'returns once every node answered, not at the timeout');
  });

  it('answers from this node alone on a single server, and refuses a second handler for a name', async () => {
    const [solo] = nodes(['solo']);
    solo!.handle('ping', () => 'pong');
    assert.deepEqual(await solo!.request('ping'), [{ node: 'solo', value: 'pong' }]);
    assert.deepEqual(await solo!.request('unknown'), []);
    assert.throws(() => solo!.handle('ping', () => 'again'), /already has a handler/);
  });

  it('gives up on nodes that never answer after the timeout', async () => {
    // Four nodes are expected but only two exist: the request ends at its timeout with what came.
    const [a, b] = nodes(['a', 'b'], 4);
    a!.handle('n', () => 1);
    b!.handle('n', () => 2);
    const replies = await a!.request<number>('n', null, { timeout: 100 });
    assert.deepEqual(replies.map((r) => r.value), [1, 2]);
  });
});
