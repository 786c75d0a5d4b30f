// Membership on a fake clock over the in-process bus: joins, leaves, deaths after
// max-inactivity-time, no verdict while this node's own link is down, a fresh allowance after
// it comes back, a restarted node (new incarnation), and the serving node.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalBusNetwork } from './local-bus.js';
import { Membership } from './membership.js';
import type { BusStatus, ClusterBus } from './bus.js';

/** A bus whose link this test can cut: while down, nothing goes out or comes in. */
class CuttableBus implements ClusterBus {
  connected = true;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  constructor(private readonly inner: ClusterBus) {}
  publish(subject: string, data: unknown): void { if (this.connected) this.inner.publish(subject, data); }
  subscribe(subject: string, handler: Parameters<ClusterBus['subscribe']>[1]): () => void {
    return this.inner.subscribe(subject, (m) => { if (this.connected) handler(m); });
  }
  request(subject: string, data: unknown, options: Parameters<ClusterBus['request']>[2]): Promise<unknown[]> { return this.inner.request(subject, data, options); }
  onStatus(listener: (s: BusStatus) => void): () => void { this.listeners.add(listener); return () => this.listeners.delete(listener); }
  set(status: BusStatus): void {
    this.connected = status === 'connected';
    for (const l of this.listeners) l(status);
  }
  close(): Promise<void> { return this.inner.close(); }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function cluster() {
  const network = new LocalBusNetwork();
  let now = 1_000_000;
  const events: string[] = [];
  const node = (name: string, incarnation = `${name}-1`) => {
    const bus = new CuttableBus(network.connect());
    const m = new Membership({
      bus, prefix: 't', nodeName: name, incarnation, log: pino({ level: 'silent' }),
      heartbeatInterval: 60_000, maxInactivity: 3000, status: () => ({ seq: 0, sessions: 0 }), now: () => now,
    });
    m.listen({ joined: (n) => events.push(`${name}: ${n.name} joined`), gone: (n, reason) => events.push(`${name}: ${n.name} ${reason}`) });
    return { m, bus };
  };
  return { node, events, advance: (ms: number) => { now += ms; }, beat: (m: Membership) => (m as unknown as { beat(): void }).beat() };
}

describe('cluster membership', () => {
  it('notices joins, a graceful leave and a death after max-inactivity-time', async () => {
    const c = cluster();
    const a = c.node('a');
    const b = c.node('b');
    const d = c.node('d');
    a.m.start(); b.m.start(); d.m.start();
    await flush();
    assert.deepEqual(a.m.connected().map((n) => n.name), ['a', 'b', 'd']);
    assert.ok(c.events.includes('a: b joined') && c.events.includes('b: a joined'));

    d.m.stop();
    await flush();
    assert.equal(a.m.get('d')?.state, 'disconnected');
    assert.equal(a.m.get('d')?.reason, 'left');

    // b goes silent: after 3 s without a heartbeat a declares it dead, not before.
    c.advance(2000);
    c.beat(a.m);
    await flush();
    a.m.check();
    assert.equal(a.m.get('b')?.state, 'connected');
    c.advance(1500);
    a.m.check();
    assert.equal(a.m.get('b')?.state, 'disconnected');
    assert.equal(a.m.get('b')?.reason, 'dead');
    assert.ok(c.events.includes('a: b dead'));
    for (const x of [a, b, d]) x.m.stop();
  });

  it('judges nobody while its own link is down, and gives everyone a fresh allowance when it is back', async () => {
    const c = cluster();
    const a = c.node('a');
    const b = c.node('b');
    a.m.start(); b.m.start();
    await flush();
    a.bus.set('disconnected');
    c.advance(10_000);
    a.m.check();
    assert.equal(a.m.get('b')?.state, 'connected', 'silence heard through a broken link says nothing');
    a.bus.set('connected');
    c.advance(2000);
    a.m.check();
    assert.equal(a.m.get('b')?.state, 'connected', 'the allowance restarts at the reconnection');
    c.advance(1500);
    a.m.check();
    assert.equal(a.m.get('b')?.state, 'disconnected');
    a.m.stop(); b.m.stop();
  });

  it('takes a new incarnation of a node for a restart: the old run is dead, the new one joins', async () => {
    const c = cluster();
    const a = c.node('a');
    const b1 = c.node('b', 'b-1');
    a.m.start(); b1.m.start();
    await flush();
    b1.bus.set('disconnected'); // the old run vanishes without a word
    const b2 = c.node('b', 'b-2');
    b2.m.start();
    await flush();
    assert.ok(c.events.includes('a: b dead'));
    assert.equal(a.m.get('b')?.incarnation, 'b-2');
    assert.equal(a.m.get('b')?.state, 'connected');
    a.m.stop(); b2.m.stop();
  });

  it('lets the oldest node serve, and a newcomer never takes over from it', async () => {
    const c = cluster();
    const z = c.node('z');
    z.m.start();
    c.advance(1000);
    const a = c.node('a');
    a.m.start();
    await flush();
    assert.equal(a.m.leader().name, 'z');
    assert.equal(z.m.isCleanupLeader(), true);
    assert.equal(a.m.isCleanupLeader(), false);
    z.m.stop();
    await flush();
    assert.equal(a.m.isCleanupLeader(), true);
    a.m.stop();
  });
});
