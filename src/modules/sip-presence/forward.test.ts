// The forwarding of HTTP reports between cluster nodes, with the cluster replaced by a stand-in
// that gives the replies a real one would (the two-node run is test/sip-presence-cluster.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { ModuleContext } from '../../core/modules.js';
import type { ClusterReply, ClusterRequestHandler } from '../../cluster/node.js';
import { Bridge, type PresenceOutput } from './bridge.js';
import { parseMapping } from './mapping.js';
import { answerForwardedReports, forwardReports } from './forward.js';

function standIn(replies: (payload: unknown) => ClusterReply[]) {
  const handlers = new Map<string, ClusterRequestHandler>();
  const asked: unknown[] = [];
  const ctx = {
    log: pino({ level: 'silent' }),
    cluster: {
      async request(_name: string, payload: unknown) { asked.push(payload); return replies(payload); },
      handle(name: string, h: ClusterRequestHandler) { handlers.set(name, h); return () => handlers.delete(name); },
    },
  } as unknown as ModuleContext;
  return { ctx, handlers, asked };
}

const online = [{ uri: '100@pbx.example.com', state: 'online' as const }];

test('no node running the bridge: 503 with a message, nothing applied', async () => {
  const { ctx, asked } = standIn(() => [{ node: 'node2' }]);
  const answer = await forwardReports(ctx, online, 'http 127.0.0.1');
  assert.equal(answer.status, 503);
  assert.match(String(answer.body.error), /no cluster node running the SIP presence bridge answered within 5 s/);
  assert.deepEqual(asked, [{ reports: online, source: 'http 127.0.0.1' }]);
});

test('the serving node failing is a 502 naming it; its answer is passed on as it is', async () => {
  const failed = await forwardReports(standIn(() => [{ node: 'node1', error: 'boom' }]).ctx, online, 'http 127.0.0.1');
  assert.equal(failed.status, 502);
  assert.match(String(failed.body.error), /\(node1\) failed: boom/);
  const passed = await forwardReports(standIn(() => [{ node: 'node1', value: { status: 404, body: { error: 'x', unknown: ['1@h'] } } }]).ctx, online, 'http 127.0.0.1');
  assert.deepEqual(passed, { status: 404, body: { error: 'x', unknown: ['1@h'] } });
});

test('the node running the bridge checks forwarded reports again and applies them; others stay silent', async () => {
  const updates: string[] = [];
  const output: PresenceOutput = { update: (p, a) => { updates.push(`${p.uri} ${a}`); }, stop: async () => {} };
  const bridge = new Bridge(output, 60, pino({ level: 'silent' }));
  bridge.setMapping(parseMapping('sip:100@pbx.example.com,alice,,1\n'));
  let running: Bridge | undefined;
  const { ctx, handlers } = standIn(() => []);
  answerForwardedReports(ctx, () => running);
  const handler = handlers.get('sip-presence/reports')!;
  const from = { node: 'node2' };
  assert.equal(await handler({ reports: online, source: 'http 127.0.0.1' }, from), undefined, 'not running here: no answer');
  running = bridge;
  assert.deepEqual(await handler({ reports: [{ uri: 'sip:100@pbx.example.com', state: 'dancing' }], source: 's' }, from),
    { status: 400, body: { error: 'unknown state "dancing" (one of online, still-online, onthephone, still-onthephone, offline)' } });
  await assert.rejects(async () => handler({ nothing: true }, from), /without reports or source/);
  const applied = await handler({ reports: online, source: 'http 127.0.0.1' }, from) as { status: number };
  assert.equal(applied.status, 200);
  assert.deepEqual(updates, ['100@pbx.example.com available']);
  await bridge.stop();
});
