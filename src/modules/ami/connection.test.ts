// One AMI connection against a simulated Asterisk: a refused secret gives a clear log line each
// time, retries further and further apart, and a login once the secret is right; an answer that
// arrived while our own event loop was held up is not taken for a timeout.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { AmiSimulator } from '../../../test/support/ami-simulator.js';
import { AmiConnection } from './connection.js';

describe('AMI connection with a wrong secret', () => {
  it('logs why, backs off, and logs in when the secret is fixed', async () => {
    const sim = new AmiSimulator('pbx', { secret: 'right' });
    await sim.start();
    const lines: { level: number; msg: string; retryInMs?: number }[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(chunk, _e, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
    const options = {
      name: 'pbx', host: '127.0.0.1', port: sim.port, username: 'relay', secret: 'wrong', trace: false,
      requestTimeout: 1000, connectTimeout: 1000, keepaliveInterval: 5000, backoff: { initial: 20, max: 10_000 },
    };
    let ups = 0;
    const connection = new AmiConnection(options, log, { up: () => { ups++; }, event: () => undefined, down: () => undefined });
    try {
      connection.start();
      await sim.waitFor(() => sim.failedLogins >= 4 && lines.filter((l) => l.retryInMs !== undefined).length >= 4, 'four refused logins');
      const refusals = lines.filter((l) => l.retryInMs !== undefined);
      assert.match(refusals[0]!.msg, /^AMI pbx: login refused as "relay": Authentication failed \(check username and secret in ami\.servers and manager\.conf\); retrying in \d+ ms$/);
      assert.equal(refusals[0]!.level, 50, 'an error');
      const delays = refusals.slice(0, 4).map((l) => l.retryInMs!);
      for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! > delays[i - 1]!, `delays grow: ${delays.join(', ')}`);
      assert.equal(ups, 0);
      assert.equal(connection.state === 'up', false);
      assert.match(connection.lastError ?? '', /Authentication failed/);
      // The administrator fixes the secret: the next attempt logs in.
      (options as { secret: string }).secret = 'right';
      await sim.waitFor(() => ups === 1, 'a login with the right secret', 20_000);
      assert.equal(connection.ready, true);
      assert.ok(connection.stats.reconnects >= 4);
    } finally {
      connection.stop();
      await sim.stop();
    }
  });
});

describe('AMI connection when its own event loop is held up', () => {
  it('reads an answer that is already there before deciding the action timed out', async () => {
    const sim = new AmiSimulator('pbx');
    await sim.start();
    const log = pino({ level: 'silent' });
    let ups = 0;
    const connection = new AmiConnection({
      name: 'pbx', host: '127.0.0.1', port: sim.port, username: sim.username, secret: sim.secret, trace: false,
      requestTimeout: 100, connectTimeout: 1000, keepaliveInterval: 60_000, backoff: { initial: 20, max: 100 },
    }, log, { up: () => { ups++; }, event: () => undefined, down: () => undefined });
    try {
      connection.start();
      await sim.waitFor(() => ups === 1, 'logged in');
      const answer = connection.action('Ping');
      // Busy for three times the request timeout: the Pong arrives meanwhile, and so does the timer.
      const until = Date.now() + 300;
      while (Date.now() < until) { /* held up */ }
      const response = await answer;
      assert.equal(response.get('Ping'), 'Pong');
      assert.equal(connection.stats.failures, 0);
      assert.equal(sim.loginAttempts, 1, 'no reconnection');
    } finally {
      connection.stop();
      await sim.stop();
    }
  });
});
