import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Watchdog, watchdogVerdict, type PingType, type WatchdogCheck, type WatchdogClock, type WatchedConnection } from './watchdog.js';

/** A clock that only moves when told to, running due intervals in order. */
class FakeClock implements WatchdogClock {
  time = 0;
  private timers: { every: number; next: number; fn: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.time;
  }

  every(ms: number, fn: () => void): () => void {
    const timer = { every: ms, next: this.time + ms, fn, cancelled: false };
    this.timers.push(timer);
    return () => { timer.cancelled = true; };
  }

  advanceTo(time: number): void {
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.next <= time).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.time = due.next;
      due.next += due.every;
      due.fn();
    }
    this.time = time;
  }
}

/** A client that sends one message, then goes silent (or answers pings when told to). */
class FakeClient implements WatchedConnection {
  readonly peer = 'user@xmpp.domain.com/mobile';
  lastReceived = 0;
  pings: { at: number; type: PingType }[] = [];
  disconnectedAt: number | undefined;
  answersPings = false;
  private closeListeners: (() => void)[] = [];

  constructor(private readonly clock: FakeClock) {}

  lastTransfer(): number {
    return this.lastReceived;
  }

  ping(type: PingType): void {
    this.pings.push({ at: this.clock.now(), type });
    if (this.answersPings) this.lastReceived = this.clock.now();
  }

  disconnect(): void {
    this.disconnectedAt = this.clock.now();
    for (const fn of this.closeListeners) fn();
  }

  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }
}

const SECOND = 1000;

describe('watchdog', () => {
  it('decides as the seed says: cut at max-inactivity-time, ping at watchdog-timeout, else nothing', () => {
    const settings = { timeout: 120 * SECOND, maxInactivity: 180 * SECOND };
    assert.equal(watchdogVerdict(119_999, settings), 'keep');
    assert.equal(watchdogVerdict(120_000, settings), 'ping');
    assert.equal(watchdogVerdict(179_999, settings), 'ping');
    assert.equal(watchdogVerdict(180_000, settings), 'disconnect');
  });

  // Seed 001 section 11.8.3: checks every 60 s, watchdog-timeout 120 s, c2s max-inactivity-time
  // 180 s, a client that sent a message at 40 s and then went idle.
  for (const pingType of ['xmpp', 'whitespace'] as const) {
    it(`replays the seed's timeline (${pingType} pings)`, () => {
      const clock = new FakeClock();
      const watchdog = new Watchdog('c2s', { delay: 60 * SECOND, timeout: 120 * SECOND, maxInactivity: 180 * SECOND, pingType }, undefined, clock);
      const client = new FakeClient(clock);
      watchdog.watch(client);
      const checks: { at: number; result: WatchdogCheck[] }[] = [];
      const run = watchdog.check.bind(watchdog);
      watchdog.check = () => { const result = run(); checks.push({ at: clock.now(), result }); return result; };
      watchdog.start();

      clock.advanceTo(40 * SECOND);
      client.lastReceived = clock.now(); // the message: the last transfer time is updated
      clock.advanceTo(300 * SECOND);

      const seen = checks.map(({ at, result }) => [at / SECOND, result.map((r) => [r.sinceLastTransfer / SECOND, r.verdict])]);
      assert.deepEqual(seen, [
        [60, [[20, 'keep']]], // lower than both the inactivity time and the timeout: nothing
        [120, [[80, 'keep']]], // still lower than both
        [180, [[140, 'ping']]], // past the timeout, not the inactivity time: a ping
        [240, [[200, 'disconnect']]], // no answer: past max-inactivity-time, the connection is cut
        [300, []], // the connection is gone, nothing left to check
      ]);
      assert.deepEqual(client.pings, [{ at: 180 * SECOND, type: pingType }]);
      assert.equal(client.disconnectedAt, 240 * SECOND);
      assert.equal(watchdog.size, 0);
    });
  }

  it('keeps a connection whose peer answers the pings', () => {
    const clock = new FakeClock();
    const watchdog = new Watchdog('c2s', { delay: 60 * SECOND, timeout: 120 * SECOND, maxInactivity: 180 * SECOND, pingType: 'xmpp' }, undefined, clock);
    const client = new FakeClient(clock);
    client.answersPings = true;
    watchdog.watch(client);
    watchdog.start();
    clock.advanceTo(3600 * SECOND);
    assert.equal(client.disconnectedAt, undefined);
    // Idle 120 s after each answered ping: one ping every other check.
    assert.deepEqual(client.pings.slice(0, 3).map((p) => p.at / SECOND), [120, 240, 360]);
    assert.equal(watchdog.size, 1);
  });

  it('stops checking once stopped, and forgets connections that closed on their own', () => {
    const clock = new FakeClock();
    const watchdog = new Watchdog('websocket', { delay: 10 * SECOND, timeout: 20 * SECOND, maxInactivity: 30 * SECOND, pingType: 'whitespace' }, undefined, clock);
    const gone = new FakeClient(clock);
    const stays = new FakeClient(clock);
    watchdog.watch(gone);
    watchdog.watch(stays);
    gone.disconnect(); // closed by the peer
    assert.equal(watchdog.size, 1);
    watchdog.start();
    watchdog.stop();
    clock.advanceTo(100 * SECOND);
    assert.equal(stays.pings.length, 0);
    assert.equal(stays.disconnectedAt, undefined);
  });
});
