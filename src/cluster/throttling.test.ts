// The outgoing cluster traffic gate: stanza and byte limits per minute and per lifetime.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { outgoingTrafficGate } from './throttling.js';

const log = pino({ level: 'silent' });

describe('cm-ht-traffic-throttling between nodes', () => {
  it('has no gate without limits', () => {
    assert.equal(outgoingTrafficGate('', log), undefined);
    assert.equal(outgoingTrafficGate('xmpp:0:0:drop', log), undefined);
  });

  it('drops stanzas over the per-minute count until the minute is over', () => {
    let now = 0;
    const gate = outgoingTrafficGate('xmpp:2:0:disc', log, () => now)!;
    assert.deepEqual([gate(10), gate(10), gate(10)], [true, true, false]);
    now += 60_000;
    assert.equal(gate(10), true);
  });

  it('drops stanzas over the byte limits, per minute and for the lifetime', () => {
    let now = 0;
    const perMinute = outgoingTrafficGate('bin:100:0:drop', log, () => now)!;
    assert.deepEqual([perMinute(60), perMinute(60)], [true, false]);
    const lifetime = outgoingTrafficGate('bin:0:100:drop', log, () => now)!;
    assert.deepEqual([lifetime(60), lifetime(30)], [true, true]);
    now += 3_600_000;
    assert.equal(lifetime(20), false, 'the lifetime budget does not come back');
  });
});
