import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceRelay, deviceKind, mirrorOf, type RelayTarget } from './device-relay.js';
import { PresenceRelay, presenceValue } from './presence-relay.js';

class FakeTarget implements RelayTarget {
  ready = true;
  writes: [string, string][] = [];
  constructor(readonly name: string, readonly eid: string) {}
  setVar(variable: string, value: string): void {
    this.writes.push([variable, value]);
  }
  take(): [string, string][] {
    const w = this.writes;
    this.writes = [];
    return w;
  }
}

function setup() {
  const [a, b, c] = [new FakeTarget('A', '02:00:00:00:00:0a'), new FakeTarget('B', '02:00:00:00:00:0b'), new FakeTarget('C', '02:00:00:00:00:0c')];
  let now = 0;
  const reported: string[] = [];
  const refused: string[] = [];
  const relay = new DeviceRelay([a, b, c], {
    reported: (device, state, t) => reported.push(`${t.name} ${device} ${state}`),
    refused: (_t, what) => refused.push(what),
  }, () => now);
  return { a, b, c, relay, reported, refused, advance: (ms: number) => { now += ms; } };
}

describe('device names', () => {
  it('real devices are mirrored as Custom:, plain Custom names are shared, Custom names of devices are mirrors', () => {
    assert.equal(deviceKind('SIP/100'), 'device');
    assert.equal(deviceKind('Custom:mystate'), 'shared');
    assert.equal(deviceKind('custom:SIP/100'), 'mirror');
    assert.equal(deviceKind('Queue:sales'), 'device');
    assert.equal(deviceKind('Custom:Queue:sales'), 'mirror', 'the mirror of a device named with a provider prefix');
    assert.equal(mirrorOf('PJSIP/alice'), 'Custom:PJSIP/alice');
    assert.equal(mirrorOf('Custom:mystate'), 'Custom:mystate');
  });
});

describe('device relay', () => {
  it('writes a device to the other servers only, once, and never relays its mirrors', () => {
    const { a, b, c, relay, reported } = setup();
    relay.fromServer(a, 'SIP/100', 'INUSE');
    assert.deepEqual(a.take(), []);
    assert.deepEqual(b.take(), [['DEVICE_STATE(Custom:SIP/100)', 'INUSE']]);
    assert.deepEqual(c.take(), [['DEVICE_STATE(Custom:SIP/100)', 'INUSE']]);
    relay.fromServer(b, 'Custom:SIP/100', 'INUSE');
    relay.fromServer(a, 'SIP/100', 'INUSE');
    assert.deepEqual([a.take(), b.take(), c.take()], [[], [], []]);
    assert.deepEqual(reported, ['A SIP/100 INUSE']);
  });

  it('aggregates by Asterisk\'s rules, each server getting the others\' reports', () => {
    const { a, b, c, relay } = setup();
    relay.fromServer(a, 'SIP/300', 'INUSE');
    relay.fromServer(b, 'SIP/300', 'RINGING');
    assert.deepEqual(a.take(), [['DEVICE_STATE(Custom:SIP/300)', 'RINGING']]);
    assert.deepEqual(b.take(), [['DEVICE_STATE(Custom:SIP/300)', 'INUSE']]);
    assert.deepEqual(c.take(), [['DEVICE_STATE(Custom:SIP/300)', 'INUSE'], ['DEVICE_STATE(Custom:SIP/300)', 'RINGINUSE']]);
    relay.fromXmpp('02:00:00:00:00:99', 'SIP/300', 'BUSY');
    assert.deepEqual(c.take(), [], 'RINGING with BUSY stays RINGINUSE');
    assert.deepEqual(a.take(), [['DEVICE_STATE(Custom:SIP/300)', 'RINGINUSE']]);
  });

  it('does not take the echoes of quick successive writes for reports', () => {
    const { a, b, relay, reported } = setup();
    relay.fromServer(a, 'Custom:shared', 'INUSE');
    relay.fromServer(a, 'Custom:shared', 'NOT_INUSE');
    assert.deepEqual(b.take(), [['DEVICE_STATE(Custom:shared)', 'INUSE'], ['DEVICE_STATE(Custom:shared)', 'NOT_INUSE']]);
    relay.fromServer(b, 'Custom:shared', 'INUSE');
    relay.fromServer(b, 'Custom:shared', 'NOT_INUSE');
    assert.deepEqual(reported, ['A Custom:shared INUSE', 'A Custom:shared NOT_INUSE']);
    assert.deepEqual(a.take(), []);
  });

  it('takes a change the server made itself for a report, and holds every server at the aggregate of a shared state', () => {
    const { a, b, c, relay, advance } = setup();
    relay.fromServer(a, 'Custom:shared', 'INUSE');
    b.take();
    c.take();
    advance(60_000);
    relay.fromServer(b, 'Custom:shared', 'BUSY');
    assert.deepEqual(a.take(), [['DEVICE_STATE(Custom:shared)', 'BUSY']]);
    assert.deepEqual(c.take(), [['DEVICE_STATE(Custom:shared)', 'BUSY']]);
    // A sets it idle, B still says BUSY: A is put back to the aggregate.
    relay.fromServer(a, 'Custom:shared', 'NOT_INUSE');
    assert.deepEqual(a.take(), [['DEVICE_STATE(Custom:shared)', 'BUSY']]);
  });

  it('after a reconnection, withdraws what a server no longer lists and writes what it lacks', () => {
    const { a, b, c, relay } = setup();
    relay.fromServer(a, 'SIP/gone', 'INUSE');
    relay.fromServer(b, 'SIP/200', 'BUSY');
    for (const t of [a, b, c]) t.take();
    relay.disconnected(a);
    a.ready = false;
    relay.fromServer(b, 'SIP/201', 'RINGING');
    assert.deepEqual(a.take(), [], 'nothing sent while down');
    a.ready = true;
    relay.listStarted(a);
    relay.fromServer(a, 'Custom:SIP/200', 'BUSY', true);
    relay.listCompleted(a);
    assert.deepEqual(a.take(), [['DEVICE_STATE(Custom:SIP/201)', 'RINGING']], 'Custom:SIP/200 was still right');
    assert.deepEqual(b.take(), [['DEVICE_STATE(Custom:SIP/gone)', 'UNKNOWN']]);
    assert.deepEqual(c.take(), [['DEVICE_STATE(Custom:SIP/201)', 'RINGING'], ['DEVICE_STATE(Custom:SIP/gone)', 'UNKNOWN']]);
  });

  it('keeps reports when the server cannot list (Asterisk before 13)', () => {
    const { a, b, relay } = setup();
    relay.fromServer(a, 'SIP/100', 'INUSE');
    b.take();
    relay.listStarted(a);
    relay.listCompleted(a, false);
    assert.deepEqual(b.take(), []);
    assert.equal(relay.snapshot()[0]?.reports['02:00:00:00:00:0a'], 'INUSE');
  });

  it('refuses unknown states and names that would break the AMI framing', () => {
    const { a, b, relay, refused } = setup();
    relay.fromServer(a, 'SIP/100', 'ON_FIRE');
    relay.fromXmpp('02:00:00:00:00:99', 'SIP/1\r\nAction: Originate', 'INUSE');
    relay.fromXmpp('02:00:00:00:00:99', 'Custom:SIP/100', 'INUSE');
    assert.deepEqual(b.take(), []);
    assert.equal(refused.length, 3);
  });
});

describe('presence relay', () => {
  it('writes the latest change to the other servers, encoding text with commas', () => {
    const a = new FakeTarget('A', '02:00:00:00:00:0a');
    const b = new FakeTarget('B', '02:00:00:00:00:0b');
    const relay = new PresenceRelay([a, b], { refused: () => undefined });
    relay.fromServer(a, 'CustomPresence:alice', { status: 'AWAY', subtype: 'lunch', message: 'back at 2, maybe 3' });
    const [[variable, value]] = b.take() as [[string, string]];
    assert.equal(variable, 'PRESENCE_STATE(CustomPresence:alice)');
    assert.equal(value, `away,${Buffer.from('lunch').toString('base64')},${Buffer.from('back at 2, maybe 3').toString('base64')},e`);
    relay.fromServer(b, 'CustomPresence:alice', { status: 'away', subtype: 'lunch', message: 'back at 2, maybe 3' });
    assert.deepEqual(a.take(), [], 'the echo is not relayed back');
    relay.fromServer(a, 'SIP/100', { status: 'dnd', subtype: '', message: '' });
    assert.deepEqual(b.take(), [['PRESENCE_STATE(CustomPresence:SIP/100)', 'dnd']]);
    assert.equal(presenceValue({ status: 'available', subtype: 'desk', message: 'in' }), 'available,desk,in');
  });
});

describe('expected echoes', () => {
  it('are kept for shared names only, and never more than a few per name', async () => {
    const { Holdings } = await import('./holdings.js');
    let now = 0;
    const h = new Holdings(() => now);
    for (let i = 0; i < 1000; i++) h.wrote('Custom:SIP/100', i % 2 ? 'INUSE' : 'NOT_INUSE', false);
    for (let i = 0; i < 1000; i++) h.wrote('Custom:shared', `S${i}`);
    const pending = (name: string) => (h as unknown as { byName: Map<string, { pending: unknown[] }> }).byName.get(name)!.pending.length;
    assert.equal(pending('Custom:SIP/100'), 0);
    assert.equal(pending('Custom:shared'), 32);
    now += 60_000;
    h.wrote('Custom:shared', 'LAST');
    assert.equal(pending('Custom:shared'), 1, 'expired ones dropped');
    assert.equal(h.heardLive('Custom:shared', 'LAST'), true);
  });
});
