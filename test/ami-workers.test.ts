// The AMI relay with `workers: 2` (two cluster nodes in one machine), through the real command:
// only the worker serving the domain services connects to the Asterisk servers, and when it is
// killed the other one takes over the relay.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkersProcess, writeWorkersConfig } from './support/workers-process.js';
import { AmiSimulator } from './support/ami-simulator.js';

describe('AMI relay with workers: 2', () => {
  let dir: string;
  let primary: WorkersProcess;
  const sims = [new AmiSimulator('A'), new AmiSimulator('B')];

  before(async () => {
    for (const sim of sims) await sim.start();
    dir = mkdtempSync(join(tmpdir(), 'switchboard-ami-workers-'));
    const { file } = await writeWorkersConfig(dir, {
      'data-dir': join(dir, 'data'),
      log: { level: 'info' },
      ami: { 'reconnect-initial': 50, servers: sims.map((s) => s.serverConfig()) },
    });
    primary = await WorkersProcess.start(file, dir);
  });

  after(async () => {
    primary?.kill();
    for (const sim of sims) await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays from the serving worker only, and from the other once it is killed', async () => {
    const relaying = await primary.logged((l) => l.msg === 'AMI relay starting', 'a relaying worker');
    await primary.logged((l) => l.msg?.startsWith('AMI relay idle') === true && l.worker !== relaying.worker, 'an idle worker');
    for (const sim of sims) await sim.waitFor(() => sim.connectedSessions === 1, 'one relay logged in');
    assert.deepEqual(sims.map((s) => s.loginAttempts), [1, 1], 'the idle worker never connected');
    sims[0]!.changeDevice('SIP/100', 'INUSE');
    await sims[1]!.waitFor(() => sims[1]!.devices.get('Custom:SIP/100') === 'INUSE', 'relayed by the serving worker');

    // Log lines carry the primary's pid (it writes them); the worker's own is in its "worker ready".
    const ready = await primary.logged((l) => l.msg === 'worker ready' && l.worker === relaying.worker, 'the relaying worker ready');
    const from = primary.lines.length;
    process.kill(ready.pid!, 'SIGKILL');
    const takeover = await primary.logged((l) => l.msg === 'AMI relay starting', 'the other worker taking over', from);
    assert.notEqual(takeover.worker, relaying.worker);
    for (const sim of sims) await sim.waitFor(() => sim.loginAttempts === 2 && sim.connectedSessions === 1, 'the new relay logged in');
    sims[1]!.changeDevice('SIP/200', 'RINGING');
    await sims[0]!.waitFor(() => sims[0]!.devices.get('Custom:SIP/200') === 'RINGING', 'relayed by the new serving worker');
  });
});
