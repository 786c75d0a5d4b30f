// The AMI relay on the command line, as a child process: `switchboard import zmq-ami-broker`
// converts the seed's config.ini (its own example), `switchboard check` lists the links and
// what a login attempt gives on each, and a running server takes new servers on SIGHUP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { AmiSimulator } from './support/ami-simulator.js';
import { freePorts, loopbackListeners } from './support/server.js';
import { configSchema } from '../src/config/load.js';

const mainUrl = new URL('../src/main.ts', import.meta.url).href;
const tsxLoader = import.meta.resolve('tsx');

function switchboard(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, '--input-type=module', '-e', script, '--', ...args],
      { cwd, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// The seed's example_config.ini, as its README shows it.
const SEED_INI = `[general]
device_state = yes
presence = no
;debug, info, warning, error
log_level = info
request_timeout = 1000
count_messages  = no
verbose_messages = no

[servers]
sections = server-1, server-2

[server-1]
name = Console 1
addr = 192.168.56.101
cmd_port = 30967
evt_port = 30968
ami_trace = no

[server-2]
name = Console 2
addr = 192.168.56.102
cmd_port = 30967
evt_port = 30968
ami_trace = yes
`;

describe('switchboard import zmq-ami-broker and check', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-ami-cli-'));
    writeFileSync(join(dir, 'config.ini'), SEED_INI);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('converts the seed\'s config.ini into an ami: section the configuration accepts', async () => {
    const run = await switchboard(['import', 'zmq-ami-broker', 'config.ini'], dir);
    assert.equal(run.code, 0, run.stderr);
    const { ami } = parse(run.stdout) as { ami: Record<string, any> };
    assert.equal(ami['device-state'], true);
    assert.equal(ami.presence, false);
    assert.equal(ami['request-timeout'], 1000);
    assert.deepEqual(ami.servers, [
      { name: 'Console 1', host: '192.168.56.101', transport: 'zmq', 'cmd-port': 30967, 'evt-port': 30968, 'ami-trace': false },
      { name: 'Console 2', host: '192.168.56.102', transport: 'zmq', 'cmd-port': 30967, 'evt-port': 30968, 'ami-trace': true },
    ]);
    const config = configSchema().parse({ 'data-dir': dir, ami }) as Record<string, any>;
    assert.equal(config.ami.servers[0].port, 5038);

    const tcp = await switchboard(['import', 'zmq-ami-broker', 'config.ini', '--username', 'relay', '--secret', 's3cret'], dir);
    assert.equal(tcp.code, 0, tcp.stderr);
    const servers = (parse(tcp.stdout) as { ami: { servers: Record<string, unknown>[] } }).ami.servers;
    assert.deepEqual(servers.map((s) => [s.host, s.port, s.username, s.secret, s.transport]),
      [['192.168.56.101', 5038, 'relay', 's3cret', undefined], ['192.168.56.102', 5038, 'relay', 's3cret', undefined]]);
  });

  it('refuses a broken file with the reason', async () => {
    writeFileSync(join(dir, 'broken.ini'), '[servers]\nsections = one, two\n[one]\naddr = 10.0.0.1\ncmd_port = 1\nevt_port = 2\n');
    const run = await switchboard(['import', 'zmq-ami-broker', 'broken.ini'], dir);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /"two" but there is no \[two\] section/);
    const usage = await switchboard(['import', 'something-else', 'broken.ini'], dir);
    assert.equal(usage.code, 2);
    const misplaced = await switchboard(['check', '--secret', 'x'], dir);
    assert.equal(misplaced.code, 2);
  });

  it('a running server relays between the servers of a reloaded configuration (SIGHUP)', async () => {
    const [a, b] = [new AmiSimulator('A'), new AmiSimulator('B')];
    for (const sim of [a, b]) await sim.start();
    const { listeners } = await loopbackListeners();
    const file = join(dir, 'reload.yaml');
    const write = (sims: AmiSimulator[]) => writeFileSync(file, stringify({
      'data-dir': join(dir, 'reload-data'),
      log: { level: 'warn' },
      ...listeners,
      ami: { 'reconnect-initial': 50, servers: sims.map((s) => s.serverConfig()) },
    }));
    write([a]);
    const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
    const server: ChildProcess = spawn(process.execPath, ['--import', tsxLoader, '--input-type=module', '-e', script, '--', 'start', '-c', file],
      { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      await a.waitFor(() => a.connectedSessions === 1, 'A logged in', 60_000);
      write([a, b]);
      server.kill('SIGHUP');
      await b.waitFor(() => b.connectedSessions === 1, 'B logged in after the reload', 30_000);
      a.changeDevice('SIP/100', 'INUSE');
      await b.waitFor(() => b.devices.get('Custom:SIP/100') === 'INUSE', 'relayed between A and the new B');
      write([b]);
      server.kill('SIGHUP');
      await a.waitFor(() => a.connectedSessions === 0, 'A let go after the second reload', 30_000);
      // The reload restarts the relay, so B logs in again (it may be between the two at this moment).
      await b.waitFor(() => b.connectedSessions === 1, 'B logged in after the second reload', 30_000);
    } finally {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
      for (const sim of [a, b]) await sim.stop();
    }
  });

  it('check lists the links and what a login gives on each', async () => {
    const good = new AmiSimulator('good');
    const wrong = new AmiSimulator('wrong', { secret: 'other' });
    await good.start();
    await wrong.start();
    const [closed] = await freePorts(1);
    try {
      writeFileSync(join(dir, 'switchboard.yaml'), stringify({
        'data-dir': join(dir, 'data'),
        ami: {
          servers: [
            { name: 'Console 1', host: '127.0.0.1', port: good.port, username: 'relay', secret: 'amipw' },
            { name: 'Console 2', host: '127.0.0.1', port: wrong.port, username: 'relay', secret: 'amipw' },
            { name: 'Console 3', host: '127.0.0.1', port: closed, username: 'relay', secret: 'amipw' },
          ],
        },
      }));
      const run = await switchboard(['check', '-c', 'switchboard.yaml'], dir);
      assert.match(run.stdout, /^ami +relaying device states, shared with XMPP PubSub$/m);
      assert.match(run.stdout, new RegExp(`Console 1: 127\\.0\\.0\\.1:${good.port} as relay: login accepted \\(Asterisk Call Manager/7\\.0\\.3\\)`));
      assert.match(run.stdout, /Console 2: .*login refused as "relay": Authentication failed/);
      assert.match(run.stdout, /Console 3: .*unreachable: ECONNREFUSED/);
      assert.match(run.stdout, /warning: AMI server Console 3 .*the relay will keep retrying/);
      assert.equal(good.loginAttempts, 1);
    } finally {
      await good.stop();
      await wrong.stop();
    }
  });
});
