// The IPC bus of `workers` with its relay, over in-memory channels that copy through JSON as
// the process channel does: subjects reach only the workers listening, the sender's own
// handlers get its messages, requests gather replies from every worker, a detached worker
// gets nothing more, and one turn of the event loop makes one message on the channel.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { IpcBus, IpcRelay, type PrimaryToWorker, type WorkerChannel, type WorkerToPrimary } from './ipc-bus.js';
import { PeerLinks } from './peer-links.js';

/**
 * Workers wired to one relay; `sent` counts each worker's messages to the primary, `relayed` the
 * messages the primary relayed. With `linksDir`, the workers also have direct links there.
 */
function network(names: string[], linksDir?: string) {
  const relay = new IpcRelay();
  const sent = new Map<string, number>();
  let relayed = 0;
  const buses = new Map<string, IpcBus>();
  for (const name of names) {
    const listeners = new Set<(m: unknown) => void>();
    const channel: WorkerChannel = {
      send(message: WorkerToPrimary) {
        sent.set(name, (sent.get(name) ?? 0) + 1);
        const copy = JSON.parse(JSON.stringify(message)) as WorkerToPrimary;
        relayed += copy.m.filter((o) => o.sb === 'pub').length;
        setImmediate(() => relay.received(name, copy));
      },
      onMessage(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    relay.attach(name, (message: PrimaryToWorker) => {
      const copy = JSON.parse(JSON.stringify(message)) as unknown;
      setImmediate(() => { for (const l of listeners) l(copy); });
    });
    let bus: IpcBus | undefined;
    const links = linksDir ? new PeerLinks(name, (w) => join(linksDir, `${w}.sock`), (d) => bus?.delivered(d), pino({ level: 'silent' })) : undefined;
    bus = new IpcBus(channel, name, links);
    buses.set(name, bus);
  }
  return { relay, sent, relayed: () => relayed, bus: (name: string) => buses.get(name)!, close: () => Promise.all([...buses.values()].map((b) => b.close())) };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await nextTurn();
}

describe('IPC bus and relay', () => {
  it('delivers a subject to the workers listening to it, the sender included, and no others', async () => {
    const net = network(['1', '2', '3']);
    const got: string[] = [];
    net.bus('1').subscribe('news', (m) => got.push(`1:${JSON.stringify(m.data)}`));
    net.bus('2').subscribe('news', (m) => got.push(`2:${JSON.stringify(m.data)}`));
    net.bus('3').subscribe('other', () => got.push('3'));
    await settle();
    net.bus('1').publish('news', { n: 1 });
    await settle();
    assert.deepEqual(got.sort(), ['1:{"n":1}', '2:{"n":1}']);
  });

  it('keeps the order of one worker\'s messages and batches one turn into one channel message', async () => {
    const net = network(['1', '2']);
    const got: number[] = [];
    net.bus('2').subscribe('seq', (m) => got.push(m.data as number));
    await settle();
    const before = net.sent.get('1') ?? 0;
    for (let i = 0; i < 100; i++) net.bus('1').publish('seq', i);
    await settle();
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
    assert.equal((net.sent.get('1') ?? 0) - before, 1, 'one message on the channel for the whole turn');
  });

  it('gathers replies to a request from every worker, the asker included', async () => {
    const net = network(['1', '2', '3']);
    for (const name of ['1', '2', '3']) net.bus(name).subscribe('who', (m) => m.respond(name));
    await settle();
    const replies = await net.bus('2').request('who', null, { timeout: 5000, expected: 3 });
    assert.deepEqual([...replies].sort(), ['1', '2', '3']);
  });

  it('stops delivering after an unsubscribe or once a worker is detached', async () => {
    const net = network(['1', '2', '3']);
    const got: string[] = [];
    const off = net.bus('2').subscribe('x', () => got.push('2'));
    net.bus('3').subscribe('x', () => got.push('3'));
    await settle();
    off();
    net.relay.detach('3');
    await settle();
    net.bus('1').publish('x', 1);
    await settle();
    assert.deepEqual(got, []);
  });

  it('with direct links, sends messages worker to worker once the table is known, replies included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipc-bus-'));
    const net = network(['1', '2', '3'], dir);
    try {
      const got: string[] = [];
      net.bus('2').subscribe('news', (m) => got.push(`2:${m.data as string}`));
      for (const name of ['1', '2', '3']) net.bus(name).subscribe('who', (m) => m.respond(name));
      // Until every worker has the table and the sockets listen, messages may still go through the primary.
      while (!['1', '2', '3'].every((n) => net.bus(n).direct)) await sleep(10);
      await settle(); // the subscriptions above have reached every table
      const relayedBefore = net.relayed();
      net.bus('1').publish('news', 'a');
      net.bus('3').publish('news', 'b');
      const replies = await net.bus('3').request('who', null, { timeout: 5000, expected: 3 });
      assert.deepEqual([...replies].sort(), ['1', '2', '3']);
      while (got.length < 2) await sleep(10);
      assert.deepEqual(got.sort(), ['2:a', '2:b']);
      assert.equal(net.relayed(), relayedBefore, 'nothing went through the primary');
      // A worker gone: the others forget it (its next run gets new links).
      net.relay.detach('2');
      await settle();
      net.bus('1').publish('news', 'c');
      await sleep(50);
      assert.deepEqual(got.sort(), ['2:a', '2:b']);
    } finally {
      await net.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('relays a reply to the worker its inbox names, even before that worker\'s subscription arrived', () => {
    const relay = new IpcRelay();
    const got: PrimaryToWorker[] = [];
    relay.attach('1', (m) => got.push(m));
    relay.attach('2', () => {});
    relay.received('2', { sb: 'batch', m: [{ sb: 'pub', s: '_INBOX.ipc.1.7', d: 'reply' }] });
    assert.deepEqual(got.flatMap((m) => m.m), [{ s: '_INBOX.ipc.1.7', d: 'reply' }]);
  });

  it('ignores what is not a bus message', () => {
    const relay = new IpcRelay();
    assert.equal(relay.received('1', { sb: 'log', l: 'line' }), false);
    assert.equal(relay.received('1', null), false);
    assert.equal(relay.received('1', { sb: 'batch', m: [null, { sb: 'pub' }, 42] }), true, 'malformed operations are skipped');
  });
});
