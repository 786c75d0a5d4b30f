import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics, formatSample } from './metrics.js';

test('counters, gauges and fast counters appear in the text exposition and the snapshot', async () => {
  const m = new Metrics();
  const auth = m.counter({ name: 'auth_failures_total', help: 'Failed logins', labelNames: ['mechanism'] });
  auth.inc({ mechanism: 'PLAIN' });
  auth.inc({ mechanism: 'PLAIN' });
  let live = 3;
  m.gauge({ name: 'things', help: 'Live things', collect: (g) => { g.set(live); } });
  const stanzas = m.fastCounters({ name: 'stanzas_in_total', help: 'Stanzas received', label: 'type', values: ['message', 'iq'] });
  stanzas.message += 5;
  stanzas.iq++;

  const text = await m.text();
  assert.match(text, /^switchboard_auth_failures_total\{mechanism="PLAIN"\} 2$/m);
  assert.match(text, /^switchboard_things 3$/m);
  assert.match(text, /^switchboard_stanzas_in_total\{type="message"\} 5$/m);
  assert.match(text, /^process_resident_memory_bytes /m, 'process metrics are included');

  live = 7;
  stanzas.message++;
  const lines = (await m.snapshot({ process: false })).map(formatSample);
  assert.ok(lines.includes('switchboard_things 7'), lines.join('\n'));
  assert.ok(lines.includes('switchboard_stanzas_in_total{type="message"} 6'), lines.join('\n'));
  assert.ok(lines.includes('switchboard_stanzas_in_total{type="iq"} 1'), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('process_')));
});

test('asking twice for a metric gives the same one; a different type is refused', () => {
  const m = new Metrics();
  const a = m.counter({ name: 'x_total', help: 'x' });
  assert.equal(m.counter({ name: 'x_total', help: 'x' }), a);
  assert.throws(() => m.gauge({ name: 'x_total', help: 'x' }), /already registered as a counter/);
});

test('two registries count apart', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.counter({ name: 'y_total', help: 'y' }).inc(4);
  b.counter({ name: 'y_total', help: 'y' });
  assert.match(await a.text(), /^switchboard_y_total 4$/m);
  assert.match(await b.text(), /^switchboard_y_total 0$/m);
});

test('aggregateWith: reads show the sum of every worker report, or the max where a metric asks; a failed gathering shows this process alone', async () => {
  const worker = (sessions: number, longest: number, logins: number) => {
    const m = new Metrics();
    m.gauge({ name: 'sessions', help: 'Sessions', collect: (g) => { g.set(sessions); } });
    m.gauge({ name: 'output_queue_max', help: 'Longest queue', aggregator: 'max', collect: (g) => { g.set(longest); } });
    m.counter({ name: 'logins_total', help: 'Logins' }).inc(logins);
    return m;
  };
  const one = worker(1, 700, 4);
  const two = worker(2, 300, 5);
  one.aggregateWith(async () => ({ reports: [await one.report(), await two.report()], workers: 3 }));
  const text = await one.text();
  assert.match(text, /^switchboard_sessions 3$/m);
  assert.match(text, /^switchboard_output_queue_max 700$/m);
  assert.match(text, /^switchboard_logins_total 9$/m);
  assert.match(text, /^switchboard_workers_reporting 2$/m, 'how many answered');
  assert.match(text, /^switchboard_workers 3$/m);
  assert.equal(text.match(/^process_resident_memory_bytes /gm)?.length, 1);
  const lines = (await one.snapshot({ process: false })).map(formatSample);
  assert.ok(lines.includes('switchboard_sessions 3'), lines.join('\n'));
  assert.ok(!lines.some((l) => l.startsWith('process_')));
  assert.ok((await one.snapshot({ local: true, process: false })).map(formatSample).includes('switchboard_sessions 1'));

  const failures: string[] = [];
  one.aggregateWith(() => Promise.reject(new Error('the primary is gone')), (e) => failures.push(e.message));
  assert.match(await one.text(), /^switchboard_sessions 1$/m);
  assert.deepEqual(failures, ['the primary is gone']);
  one.aggregateWith(undefined);
  assert.doesNotMatch(await one.text(), /switchboard_workers_reporting/);
});
