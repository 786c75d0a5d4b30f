import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricSample } from '../../core/metrics.js';
import { ChartHistory, HEIGHT, POINTS, WIDTH, formatValue } from './chart-history.js';

const sample = (name: string, value: number, labels: Record<string, string> = {}): MetricSample => ({ name, type: 'gauge', help: '', labels, value });

describe('ChartHistory', () => {
  it('adds up label sets, turns counters into rates and keeps the last POINTS samples', () => {
    const h = new ChartHistory();
    h.add([sample('switchboard_sessions', 2), sample('switchboard_stanzas_in_total', 100, { type: 'message' }), sample('switchboard_stanzas_in_total', 50, { type: 'iq' })], 0);
    let view = new Map(h.view().map((s) => [s.key, s]));
    assert.equal(view.get('sessions')!.latest, '2');
    assert.equal(view.get('stanzas-in')!.latest, '–', 'no rate from one sample');
    h.add([sample('switchboard_sessions', 4), sample('switchboard_stanzas_in_total', 130, { type: 'message' }), sample('switchboard_stanzas_in_total', 70, { type: 'iq' })], 10_000);
    view = new Map(h.view().map((s) => [s.key, s]));
    assert.equal(view.get('sessions')!.latest, '4');
    assert.equal(view.get('stanzas-in')!.latest, '5', '50 stanzas in 10 s');
    assert.equal(view.get('memory')!.latest, '–', 'a metric nobody exports');
    const points = view.get('sessions')!.points.split(' ').map((p) => p.split(',').map(Number));
    assert.equal(points.length, 2);
    assert.equal(points[1]![0], WIDTH, 'the newest sample at the right edge');
    assert.equal(points[1]![1], 2, 'the maximum at the top');
    assert.ok(points[0]![1]! > points[1]![1]! && points[0]![1]! < HEIGHT);
    for (let i = 0; i < POINTS + 5; i++) h.add([sample('switchboard_sessions', i)], 20_000 + i * 1000);
    assert.equal(h.view().find((s) => s.key === 'sessions')!.points.split(' ').length, POINTS);
  });

  it('gives no rate across a counter reset', () => {
    const h = new ChartHistory();
    h.add([sample('switchboard_logins_total', 10)], 0);
    h.add([sample('switchboard_logins_total', 3)], 60_000);
    assert.equal(h.view().find((s) => s.key === 'logins')!.latest, '–');
  });

  it('formats bytes and seconds for people', () => {
    assert.equal(formatValue(512, 'bytes'), '512 B');
    assert.equal(formatValue(3 * 1024 * 1024, 'bytes'), '3.0 MiB');
    assert.equal(formatValue(0.0123, 'seconds'), '12.3 ms');
    assert.equal(formatValue(undefined), '–');
  });
});
