// The session directory between two in-process nodes: a bound session shows up on the other
// node with its presence, stanzas sent to it cross over, an announcement lost on the way is
// repaired from a snapshot at the next heartbeat, and a dead node's sessions end once, on the
// serving node only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalBusNetwork } from './local-bus.js';
import { Membership } from './membership.js';
import { SessionDirectory } from './directory.js';
import { SessionManager } from '../core/sessions.js';
import { Hooks } from '../core/hooks.js';
import type { ServerEvents } from '../core/events.js';
import type { Router } from '../core/router.js';
import type { ClientSession } from '../core/session.js';
import type { BusMessage, ClusterBus, RequestOptions } from './bus.js';
import { parseJid } from '../jid.js';
import { xml, type Element } from '../xml/element.js';
import { outgoingTrafficGate } from './throttling.js';

/** A bus that can lose what this node publishes, as during a NATS restart. */
class LossyBus implements ClusterBus {
  readonly connected = true;
  losing = false;
  constructor(private readonly inner: ClusterBus) {}
  publish(subject: string, data: unknown): void { if (!this.losing) this.inner.publish(subject, data); }
  subscribe(subject: string, handler: (m: BusMessage) => void): () => void { return this.inner.subscribe(subject, handler); }
  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown[]> { return this.inner.request(subject, data, options); }
  onStatus(): () => void { return () => {}; }
  close(): Promise<void> { return this.inner.close(); }
}

/** A local session that records what it is sent. */
function localSession(sessions: SessionManager, full: string): ClientSession & { got: Element[] } {
  let presence: Element | undefined;
  const got: Element[] = [];
  const s = {
    id: `id-${full}`, jid: parseJid(full), remoteAddress: '192.0.2.1', secure: true, anonymous: false, priority: 0,
    rosterRequested: false, directedPresence: new Set<string>(), got,
    get presence() { return presence; },
    set presence(p: Element | undefined) { presence = p; sessions.updated(s); },
    send(stanza: Element) { got.push(stanza); },
    close() { sessions.remove(s); },
  };
  return s;
}

const settle = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };

function node(network: LocalBusNetwork, name: string, admitOutgoing?: (bytes: number) => boolean) {
  const bus = new LossyBus(network.connect());
  const sessions = new SessionManager();
  const hooks = new Hooks<ServerEvents>();
  const closed: string[] = [];
  hooks.on('session/closed', (s) => { closed.push(s.jid.full); });
  const log = pino({ level: 'silent' });
  let directory: SessionDirectory;
  const membership = new Membership({
    bus, prefix: 't', nodeName: name, incarnation: `${name}-1`, log, heartbeatInterval: 60_000, maxInactivity: 180_000,
    status: () => directory.status(),
  });
  directory = new SessionDirectory({
    bus, prefix: 't', nodeName: name, incarnation: `${name}-1`, membership, sessions, hooks, log,
    router: { route: async () => {} } as unknown as Router, track: (w) => { void w; }, requestTimeout: 1000, admitOutgoing,
  });
  directory.start();
  membership.start();
  return { bus, sessions, membership, directory, closed, beat: () => (membership as unknown as { beat(): void }).beat() };
}

describe('session directory', () => {
  it('shows a session to the other node with its presence, and carries stanzas to it', async () => {
    const network = new LocalBusNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    await settle();
    const alice = localSession(a.sessions, 'alice@example.com/phone');
    a.sessions.add(alice);
    alice.presence = xml('presence', null, xml('show', null, 'away'));
    await settle();
    const remote = b.sessions.get('alice@example.com', 'phone');
    assert.equal(remote?.node, 'a');
    assert.equal(remote?.presence?.getChildText('show'), 'away');
    assert.deepEqual(b.sessions.available('alice@example.com').map((s) => s.jid.full), ['alice@example.com/phone']);
    remote!.send(xml('message', { to: 'alice@example.com/phone' }, xml('body', null, 'over the bus')));
    await settle();
    assert.equal(alice.got[0]?.getChildText('body'), 'over the bus');
    a.sessions.remove(alice);
    await settle();
    assert.equal(b.sessions.get('alice@example.com', 'phone'), undefined);
    a.membership.stop(); b.membership.stop();
  });

  it('drops stanzas to other nodes over cm-ht-traffic-throttling', async () => {
    const network = new LocalBusNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b', outgoingTrafficGate('xmpp:1:0:drop', pino({ level: 'silent' })));
    await settle();
    const alice = localSession(a.sessions, 'alice@example.com/phone');
    a.sessions.add(alice);
    await settle();
    const remote = b.sessions.get('alice@example.com', 'phone')!;
    remote.send(xml('message', { id: 'first' }));
    remote.send(xml('message', { id: 'second' }));
    await settle();
    assert.deepEqual(alice.got.map((m) => m.attrs.id), ['first']);
    a.membership.stop(); b.membership.stop();
  });

  it('repairs a lost announcement from a snapshot when the next heartbeat shows the gap', async () => {
    const network = new LocalBusNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    await settle();
    a.bus.losing = true;
    const bob = localSession(a.sessions, 'bob@example.com/desk');
    a.sessions.add(bob);
    await settle();
    a.bus.losing = false;
    assert.equal(b.sessions.get('bob@example.com', 'desk'), undefined, 'the announcement was lost');
    a.beat();
    await settle();
    assert.equal(b.sessions.get('bob@example.com', 'desk')?.node, 'a');
    a.membership.stop(); b.membership.stop();
  });

  it('ends a dead node\'s sessions everywhere, with session/closed fired on the serving node only', async () => {
    const network = new LocalBusNetwork();
    const a = node(network, 'a');
    const b = node(network, 'b');
    const c = node(network, 'c');
    await settle();
    const carol = localSession(c.sessions, 'carol@example.com/pbx');
    c.sessions.add(carol);
    carol.presence = xml('presence');
    await settle();
    assert.ok(a.sessions.get('carol@example.com', 'pbx') && b.sessions.get('carol@example.com', 'pbx'));
    // c dies: a witnessed death (the ${prefix}.dead notice) rather than waiting out the clock.
    network.connect().publish('t.dead', { node: 'c', inc: 'c-1' });
    await settle();
    assert.equal(a.sessions.get('carol@example.com', 'pbx'), undefined);
    assert.equal(b.sessions.get('carol@example.com', 'pbx'), undefined);
    const serving = a.membership.isCleanupLeader() ? a : b;
    const other = serving === a ? b : a;
    assert.deepEqual(serving.closed, ['carol@example.com/pbx']);
    assert.deepEqual(other.closed, []);
    for (const x of [a, b, c]) x.membership.stop();
  });
});
