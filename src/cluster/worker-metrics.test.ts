import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeMetricsRelay } from './worker-metrics.js';
import type { MetricsReport } from '../core/metrics.js';

const report = (n: number): MetricsReport => ({ server: [{ name: 'switchboard_sessions', help: 'h', type: 'gauge' as never, aggregator: 'sum', values: [{ value: n, labels: {} }] }], process: [] });

/** A relay over fake workers: what each was sent, and the answers to the asking worker. */
function relay(serving: number[], count = 3, timeoutMs = 60_000) {
  const sent = new Map<number, unknown[]>(serving.map((w) => [w, []]));
  const r = new NodeMetricsRelay(count, () => new Map(serving.map((w) => [w, (m: unknown) => sent.get(w)!.push(m)])), timeoutMs);
  const answers: unknown[] = [];
  const ask = (from: number, id: number) => r.received(from, { sb: 'metrics?', id }, (m) => answers.push(m));
  const lastRequestId = (w: number) => (sent.get(w)!.at(-1) as { id: number }).id;
  return { r, sent, answers, ask, lastRequestId };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('the primary asks every serving worker and answers the asker with all the reports', async () => {
  const { r, sent, answers, ask, lastRequestId } = relay([1, 2]);
  assert.equal(ask(2, 7), true);
  assert.deepEqual(sent.get(1), [{ sb: 'metrics-report?', id: lastRequestId(1) }]);
  assert.equal(sent.get(2)!.length, 1, 'the asker reports too');
  assert.equal(r.received(1, { sb: 'metrics-report', id: lastRequestId(1), report: report(1) }, () => {}), true);
  // A second report from the same worker, or one for no gathering, changes nothing.
  r.received(1, { sb: 'metrics-report', id: lastRequestId(1), report: report(1) }, () => {});
  r.received(1, { sb: 'metrics-report', id: 999, report: report(5) }, () => {});
  await settle();
  assert.equal(answers.length, 0, 'waits for worker 2');
  r.received(2, { sb: 'metrics-report', id: lastRequestId(2), report: report(2) }, () => {});
  await settle();
  assert.deepEqual(answers, [{ sb: 'metrics', id: 7, reports: [report(1), report(2)], workers: 3 }]);
});

test('a worker that exits, or does not answer in time, is left out', async () => {
  const a = relay([1, 2]);
  a.ask(1, 1);
  a.r.received(1, { sb: 'metrics-report', id: a.lastRequestId(1), report: report(1) }, () => {});
  a.r.gone(2);
  await settle();
  assert.deepEqual(a.answers, [{ sb: 'metrics', id: 1, reports: [report(1)], workers: 3 }]);

  const b = relay([1, 2], 2, 50);
  b.ask(1, 4);
  b.r.received(2, { sb: 'metrics-report', id: b.lastRequestId(2), report: report(2) }, () => {});
  while (b.answers.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(b.answers, [{ sb: 'metrics', id: 4, reports: [report(2)], workers: 2 }]);
});

test('other messages are left to the other handlers', () => {
  const { r } = relay([1]);
  assert.equal(r.received(1, { sb: 'log', l: '{}' }, () => {}), false);
  assert.equal(r.received(1, null, () => {}), false);
  assert.equal(r.received(1, { sb: 'metrics?' }, () => {}), false, 'no id');
});
