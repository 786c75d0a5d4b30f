import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Bridge, checkReport, type PresenceOutput } from './bridge.js';
import { parseMapping } from './mapping.js';
import type { Availability } from './state-machine.js';

function recorder() {
  const updates: string[] = [];
  const output: PresenceOutput = {
    update: (phone, availability: Availability) => { updates.push(`${phone.uri} ${availability}`); },
    stop: async () => {},
  };
  return { updates, output };
}

const log = pino({ level: 'silent' });
const mapping = () => parseMapping('sip:100@pbx.example.com,alice,,1\nsip:101@pbx.example.com,bob,,1\n');

test('reports are checked before they reach the bridge', () => {
  assert.deepEqual(checkReport({ uri: 'sip:100@PBX.example.com', state: 'online', expires: '60' }), { uri: '100@pbx.example.com', state: 'online', expires: 60 });
  assert.deepEqual(checkReport({ uri: 'sip:100@pbx.example.com', state: 'offline', expires: null }), { uri: '100@pbx.example.com', state: 'offline' });
  assert.match(checkReport({ uri: 'sip:100@pbx.example.com', state: 'ringing' }) as string, /unknown state "ringing"/);
  assert.match(checkReport({ uri: 42, state: 'online' }) as string, /uri must be a string/);
  assert.match(checkReport({ uri: 'pbx.example.com', state: 'online' }) as string, /not a SIP URI/);
  assert.match(checkReport({ uri: 'sip:1@x.org', state: 'online', expires: 0 }) as string, /expires must be/);
  assert.match(checkReport({ uri: 'sip:1@x.org', state: 'online', expires: 1.5 }) as string, /expires must be/);
});

test('only changes of what the presence says reach the output', () => {
  const { updates, output } = recorder();
  const bridge = new Bridge(output, 3600, log);
  bridge.setMapping(mapping());
  for (const state of ['online', 'still-online', 'still-online', 'onthephone', 'still-onthephone', 'still-online', 'offline'] as const) {
    bridge.report({ uri: '100@pbx.example.com', state }, 'test');
  }
  assert.deepEqual(updates, ['100@pbx.example.com available', '100@pbx.example.com on-the-phone', '100@pbx.example.com available', '100@pbx.example.com offline']);
  assert.equal(bridge.report({ uri: '999@pbx.example.com', state: 'online' }, 'test'), undefined, 'an unmapped phone changes nothing');
  void bridge.stop();
});

test('silence past the expiry (the report\'s own, else the configured one) means offline', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { updates, output } = recorder();
    const bridge = new Bridge(output, 100, log);
    bridge.setMapping(mapping());
    bridge.report({ uri: '100@pbx.example.com', state: 'online', expires: 30 }, 'test');
    bridge.report({ uri: '101@pbx.example.com', state: 'online' }, 'test');
    mock.timers.tick(29_000);
    bridge.report({ uri: '100@pbx.example.com', state: 'still-online', expires: 30 }, 'test'); // a refresh re-arms it
    mock.timers.tick(29_000);
    assert.equal(bridge.stateOf('100@pbx.example.com'), 'still-online');
    mock.timers.tick(2_000);
    assert.equal(bridge.stateOf('100@pbx.example.com'), 'offline');
    mock.timers.tick(40_000);
    assert.equal(bridge.stateOf('101@pbx.example.com'), 'offline');
    assert.deepEqual(updates, ['100@pbx.example.com available', '101@pbx.example.com available', '100@pbx.example.com offline', '101@pbx.example.com offline']);
    void bridge.stop();
  } finally {
    mock.timers.reset();
  }
});

test('a new mapping takes phones no longer mapped, or mapped to another account, offline', () => {
  const { updates, output } = recorder();
  const bridge = new Bridge(output, 3600, log);
  bridge.setMapping(mapping());
  bridge.report({ uri: '100@pbx.example.com', state: 'online' }, 'test');
  bridge.report({ uri: '101@pbx.example.com', state: 'onthephone' }, 'test');
  updates.length = 0;
  bridge.setMapping(parseMapping('sip:100@pbx.example.com,carol,,1\n'));
  assert.deepEqual(updates, ['100@pbx.example.com offline', '101@pbx.example.com offline']);
  assert.equal(bridge.stateOf('100@pbx.example.com'), 'offline');
  assert.equal(bridge.isMapped('101@pbx.example.com'), false);
  void bridge.stop();
});

test('a phone the output lost starts again from offline', () => {
  const { updates, output } = recorder();
  const bridge = new Bridge(output, 3600, log);
  bridge.setMapping(mapping());
  bridge.report({ uri: '100@pbx.example.com', state: 'online' }, 'test');
  bridge.lost('100@pbx.example.com');
  const t = bridge.report({ uri: '100@pbx.example.com', state: 'still-online' }, 'test')!;
  assert.deepEqual([t.from, t.to, t.valid], ['offline', 'online', false]);
  assert.deepEqual(updates, ['100@pbx.example.com available', '100@pbx.example.com available']);
  void bridge.stop();
});
