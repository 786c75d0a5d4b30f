// The `ami` benchmark: Switchboard as an AMI relay between N simulated Asterisk servers (10),
// with R device state changes per second in all (1000) spread over them for D seconds (10).
// Every change becomes a SetVar on each of the other servers (and a PubSub publish); each
// SetVar is answered and echoed back as a DeviceStateChange, as Asterisk does. Reports the relay
// latency (change on one server to SetVar received on another, p50/p99) and the relay's CPU
// time per 1,000 changes, read from /proc for the server process alone.
//
//   node --import tsx bench/ami.ts
//   node --import tsx bench/ami.ts --servers 10 --rate 1000 --duration 10 --json
//   node --import tsx bench/ami.ts --no-xmpp      (AMI to AMI only: no PubSub publish per change)
//
// The server runs in a child process (src/main.ts start) with a generated configuration in a
// temporary directory; the simulators (test/support/ami-simulator.ts) run here, on loopback.
// AMI_BENCH_PROF=DIR writes a V8 CPU profile of the server process there.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { AmiSimulator } from '../test/support/ami-simulator.js';
import { loopbackListeners } from '../test/support/server.js';

const STATES = ['INUSE', 'NOT_INUSE', 'RINGING', 'BUSY'];
/** Devices per server: each changes every devices/rate-per-server seconds, far apart from its previous change. */
const DEVICES_PER_SERVER = 200;

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    'no-xmpp': { type: 'boolean', default: false },
  },
});
const servers = positive('servers', values.servers);
const rate = positive('rate', values.rate);
const duration = positive('duration', values.duration);
if (servers < 2) throw new Error('--servers must be at least 2: the relay needs somewhere to relay to');

/** utime + stime of a process, in seconds (Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const sims = Array.from({ length: servers }, (_, i) => new AmiSimulator(`pbx${i + 1}`));
  for (const sim of sims) await sim.start();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-ami-'));
  const { listeners } = await loopbackListeners();
  writeFileSync(join(dir, 'switchboard.yaml'), stringify({
    'data-dir': join(dir, 'data'),
    log: { level: 'warn' },
    ...listeners,
    ami: { xmpp: !values['no-xmpp'], servers: sims.map((s) => s.serverConfig()) },
  }));
  const mainUrl = new URL('../src/main.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
  const child = spawn(process.execPath, [...(process.env.AMI_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.AMI_BENCH_PROF] : []), '--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script, '--', 'start', '-c', join(dir, 'switchboard.yaml')],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (const sim of sims) await sim.waitFor(() => sim.connectedSessions === 1, 'the relay logged in', 60_000);
    await sleep(500);

    /** Per device, its changes in order: when and to what. */
    const changes = new Map<string, { at: bigint; state: string }[]>();
    let sent = 0;
    const cpuBefore = cpuSeconds(child.pid!);
    const ownBefore = process.cpuUsage();
    const start = process.hrtime.bigint();
    const total = rate * duration;
    while (sent < total) {
      const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
      const due = Math.min(total, Math.floor(elapsed * rate));
      for (; sent < due; sent++) {
        const server = sent % servers;
        const round = Math.floor(sent / servers);
        const device = `SIP/${server + 1}${String(round % DEVICES_PER_SERVER).padStart(3, '0')}`;
        const state = STATES[Math.floor(round / DEVICES_PER_SERVER) % STATES.length]!;
        const list = changes.get(device) ?? [];
        list.push({ at: process.hrtime.bigint(), state });
        changes.set(device, list);
        sims[server]!.changeDevice(device, state);
      }
      await sleep(5);
    }
    const loadSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const expected = total * (servers - 1);
    const received = () => sims.reduce((n, s) => n + s.setVars.length, 0);
    const deadline = Date.now() + 30_000;
    while (received() < expected && Date.now() < deadline) await sleep(50);
    const cpu = cpuSeconds(child.pid!) - cpuBefore;
    const own = process.cpuUsage(ownBefore);
    const generatorCpu = (own.user + own.system) / 1e6;

    const latencies: number[] = [];
    for (const sim of sims) {
      for (const write of sim.setVars) {
        const device = /^DEVICE_STATE\(Custom:(.+)\)$/.exec(write.variable)?.[1];
        const change = device ? changes.get(device)?.findLast((c) => c.state === write.value && c.at <= write.at) : undefined;
        if (change) latencies.push(Number(write.at - change.at) / 1e6);
      }
    }
    latencies.sort((a, b) => a - b);
    const figures = {
      servers, rate, duration,
      changes: total,
      setVarsExpected: expected,
      setVarsReceived: received(),
      achievedRate: Math.round(total / loadSeconds),
      /** Logins beyond the first per server: links the relay found dead and opened again. */
      reconnects: sims.reduce((n, s) => n + s.loginAttempts, 0) - servers,
      latency: { p50Ms: +percentile(latencies, 50).toFixed(2), p99Ms: +percentile(latencies, 99).toFixed(2) },
      cpuSecondsPer1000Changes: +(cpu / (total / 1000)).toFixed(3),
      /** The simulators' share of a core: near 100%, they are what delays the figures. */
      generatorCorePercent: Math.round((generatorCpu / loadSeconds) * 100),
      loadAverage: +loadavg()[0]!.toFixed(1),
    };
    if (values.json) console.log(JSON.stringify(figures));
    else {
      console.log(`AMI relay: ${servers} servers, ${total} changes at ${figures.achievedRate}/s, each to ${servers - 1} servers`);
      console.log(`  SetVars received    ${figures.setVarsReceived} of ${expected}; reconnections ${figures.reconnects}`);
      console.log(`  relay latency       p50 ${figures.latency.p50Ms} ms, p99 ${figures.latency.p99Ms} ms`);
      console.log(`  relay CPU           ${figures.cpuSecondsPer1000Changes} s per 1,000 changes (${(cpu / loadSeconds * 100).toFixed(0)}% of a core)`);
      console.log(`  load generator CPU  ${figures.generatorCorePercent}% of a core; machine load average ${figures.loadAverage}`);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    for (const sim of sims) await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
