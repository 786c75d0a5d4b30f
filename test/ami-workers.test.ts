// The AMI relay with `workers: 2` (two cluster nodes in one machine), through the real command:
// only the worker serving the domain services connects to the Asterisk servers, and when it is
// killed the other one takes over the relay.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePorts } from './support/server.js';
import { AmiSimulator } from './support/ami-simulator.js';

const mainUrl = new URL('../src/main.ts', import.meta.url).href;
const tsxLoader = import.meta.resolve('tsx');

type LogLine = Record<string, unknown> & { msg?: string; worker?: number; pid?: number };

describe('AMI relay with workers: 2', () => {
  let dir: string;
  let child: ChildProcess;
  const lines: LogLine[] = [];
  const sims = [new AmiSimulator('A'), new AmiSimulator('B')];

  /** Waits for a log line at or after index `from` that matches. */
  async function logged(match: (l: LogLine) => boolean, what: string, from = 0): Promise<LogLine> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const found = lines.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no log line ${what}:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    for (const sim of sims) await sim.start();
    dir = mkdtempSync(join(tmpdir(), 'switchboard-ami-workers-'));
    const [c2s, tls, http] = await freePorts(3);
    const configFile = join(dir, 'switchboard.yaml');
    writeFileSync(configFile, stringify({
      'data-dir': join(dir, 'data'),
      workers: 2,
      c2s: { host: '127.0.0.1', port: c2s, 'tls-port': tls },
      http: { host: '127.0.0.1', port: http },
      bosh: { port: 0 },
      websocket: { port: 0, 'tls-port': 0 },
      log: { level: 'info' },
      ami: { 'reconnect-initial': 50, servers: sims.map((s) => ({ name: s.name, host: '127.0.0.1', port: s.port, username: s.username, secret: s.secret })) },
    }));
    const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
    child = spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', 'start', '-c', configFile], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    child.stdout!.on('data', (c: Buffer) => {
      buffer += c;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const part of parts) if (part.trim()) try { lines.push(JSON.parse(part) as LogLine); } catch { lines.push({ msg: part }); }
    });
    await logged((l) => l.msg === 'started', 'started');
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      for (const l of lines) if (l.msg === 'worker ready' && typeof l.pid === 'number') { try { process.kill(l.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    for (const sim of sims) await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays from the serving worker only, and from the other once it is killed', async () => {
    const relaying = await logged((l) => l.msg === 'AMI relay starting', 'a relaying worker');
    await logged((l) => l.msg?.startsWith('AMI relay idle') === true && l.worker !== relaying.worker, 'an idle worker');
    for (const sim of sims) await sim.waitFor(() => sim.connectedSessions === 1, 'one relay logged in');
    assert.deepEqual(sims.map((s) => s.loginAttempts), [1, 1], 'the idle worker never connected');
    sims[0]!.changeDevice('SIP/100', 'INUSE');
    await sims[1]!.waitFor(() => sims[1]!.devices.get('Custom:SIP/100') === 'INUSE', 'relayed by the serving worker');

    // Log lines carry the primary's pid (it writes them); the worker's own is in its "worker ready".
    const ready = await logged((l) => l.msg === 'worker ready' && l.worker === relaying.worker, 'the relaying worker ready');
    const from = lines.length;
    process.kill(ready.pid!, 'SIGKILL');
    const takeover = await logged((l) => l.msg === 'AMI relay starting', 'the other worker taking over', from);
    assert.notEqual(takeover.worker, relaying.worker);
    for (const sim of sims) await sim.waitFor(() => sim.loginAttempts === 2 && sim.connectedSessions === 1, 'the new relay logged in');
    sims[1]!.changeDevice('SIP/200', 'RINGING');
    await sims[0]!.waitFor(() => sims[0]!.devices.get('Custom:SIP/200') === 'RINGING', 'relayed by the new serving worker');
  });
});
