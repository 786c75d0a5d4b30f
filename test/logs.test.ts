// Logs and run files (seed 001 sections 11.3 and 11.4): the main log rotated by size with the
// newest always at the same name, debug categories (xmpp.io logs every byte of a real client's
// connection), and a real `switchboard start` that writes its pid file and configuration dump,
// shows its environment on the console, and leaves its statistics behind at a graceful stop.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xml } from '@xmpp/client';
import { stringify } from 'yaml';
import { createLogging, categoryLogger } from '../src/core/log.js';
import { startServer } from '../src/core/server.js';
import { deriveCredentials } from '../src/auth/credentials.js';
import { buildConfig, freePorts } from './support/server.js';
import { startClient } from './support/xmpp-client.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'switchboard-logs-')));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The JSON lines of a log file. */
function lines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the main log', () => {
  it('rotates by size, keeps max-files files, and the newest always has the configured name', async () => {
    const file = join(dir, 'rotation', 'main.log');
    const logging = createLogging(buildConfig({ log: { level: 'info', file, 'max-size': 2048, 'max-files': 3 } }).log, { console: { write() {} } });
    for (let i = 0; i < 300; i++) logging.log.info({ i }, `line ${'x'.repeat(60)}`);
    await logging.close();

    assert.deepEqual(readdirSync(join(dir, 'rotation')).sort(), ['main.log', 'main.log.1', 'main.log.2']);
    const numbers = (name: string) => lines(join(dir, 'rotation', name)).map((l) => l.i as number);
    const [current, newest, older] = [numbers('main.log'), numbers('main.log.1'), numbers('main.log.2')];
    assert.ok(newest.length > 0 && older.length > 0);
    // Newest last: every line of main.log.2 is older than main.log.1's, which are older than main.log's.
    assert.ok(Math.max(...older) < Math.min(...newest));
    if (current.length) assert.ok(Math.max(...newest) < Math.min(...current));
    assert.equal(Math.max(...current, ...newest), 299, 'the last line is in the newest files');
    for (const name of ['main.log.1', 'main.log.2']) {
      // Rotated once over the limit: a file is at most the limit plus one line.
      assert.ok(readFileSync(join(dir, 'rotation', name)).length < 2048 + 200, `${name} is about max-size`);
    }
  });

  it('refuses an unknown debug category at start, naming the known ones', () => {
    assert.throws(() => buildConfig({ log: { debug: ['pubsub', 'xmpp.IO'] } }), /xmpp\.IO\\?" is not a debug category \(xmpp\.io, router, http, vhosts, [^)]*pubsub/);
  });

  it('puts a module named in log.debug at debug level, the others at log.level', () => {
    const logging = createLogging(buildConfig({ log: { level: 'info' } }).log, { console: { write() {} } });
    const options = { debug: ['pubsub'] };
    assert.equal(categoryLogger(logging.log, options, 'module', 'pubsub').level, 'debug');
    assert.equal(categoryLogger(logging.log, options, 'module', 'roster').level, 'info');
  });

  it('logs every byte a real client sends and receives with xmpp.io, per connection', async () => {
    const file = join(dir, 'io', 'main.log');
    const [port, tlsPort] = await freePorts(2);
    const config = buildConfig({
      'data-dir': join(dir, 'io', 'data'),
      c2s: { host: '127.0.0.1', port, 'tls-port': tlsPort },
      http: { port: 0 }, bosh: { port: 0 }, websocket: { port: 0, 'tls-port': 0 },
      log: { level: 'info', file, debug: ['xmpp.io'] },
    });
    const logging = createLogging(config.log, { console: { write() {} } });
    const server = await startServer(config, { log: logging.log });
    try {
      await server.storage.users.create('localhost', 'alice', deriveCredentials('secret'));
      const alice = await startClient(port!, 'alice');
      await alice.xmpp.send(xml('message', { to: alice.jid, id: 'io-1' }, xml('body', {}, 'bytes on the wire')));
      await alice.waitFor((s) => s.attrs.id === 'io-1', 'the message back');
      await alice.xmpp.stop();
    } finally {
      await server.stop();
      await logging.close();
    }
    const io = lines(file).filter((l) => l.category === 'xmpp.io');
    const received = io.filter((l) => l.direction === 'in').map((l) => l.data as string).join('');
    const sent = io.filter((l) => l.direction === 'out').map((l) => l.data as string).join('');
    assert.match(received, /<stream:stream [^>]*to=['"]localhost['"]/, 'the stream header as the client sent it');
    assert.match(received, /<message[^>]*id=['"]io-1['"][^]*bytes on the wire/, 'the message as received');
    assert.match(sent, /<message[^>]*id=['"]io-1['"][^>]*>.*bytes on the wire/, 'the message as delivered');
    assert.match(sent, /<success xmlns=['"]urn:ietf:params:xml:ns:xmpp-sasl['"]/);
    assert.equal(new Set(io.map((l) => l.conn)).size, 1, 'one connection, one id');
    assert.equal(io[0]!.level, 20, 'at debug level while log.level is info');
  });

  it('logs no bytes without the category', async () => {
    const file = join(dir, 'quiet', 'main.log');
    const [port, tlsPort] = await freePorts(2);
    const config = buildConfig({
      'data-dir': join(dir, 'quiet', 'data'),
      c2s: { host: '127.0.0.1', port, 'tls-port': tlsPort },
      http: { port: 0 }, bosh: { port: 0 }, websocket: { port: 0, 'tls-port': 0 },
      log: { level: 'debug', file },
    });
    const logging = createLogging(config.log, { console: { write() {} } });
    const server = await startServer(config, { log: logging.log });
    try {
      await server.storage.users.create('localhost', 'bob', deriveCredentials('secret'));
      const bob = await startClient(port!, 'bob');
      await bob.xmpp.stop();
    } finally {
      await server.stop();
      await logging.close();
    }
    const all = lines(file);
    assert.ok(all.some((l) => l.msg === 'authenticated'), 'the log was written');
    assert.ok(!all.some((l) => l.category === 'xmpp.io'));
  });
});

describe('switchboard start: console, pid file, configuration dump, statistics at shutdown', () => {
  const mainUrl = new URL('../src/main.ts', import.meta.url).href;
  const tsxLoader = import.meta.resolve('tsx');

  it('writes the run files at start, removes the pid file and writes the statistics at a graceful stop', async () => {
    const home = join(dir, 'cli');
    const [c2s, tls, http] = await freePorts(3);
    const configFile = join(dir, 'cli.yaml');
    writeFileSync(configFile, stringify({
      'data-dir': join(home, 'data'),
      c2s: { host: '127.0.0.1', port: c2s, 'tls-port': tls },
      http: { host: '127.0.0.1', port: http },
      bosh: { port: 0 },
      websocket: { port: 0, 'tls-port': 0 },
      log: { file: join(home, 'logs', 'switchboard.log'), dir: join(home, 'run') },
      'sip-presence': { http: { token: 'a-very-secret-token-value' } },
    }));
    const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
    const child = spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', 'start', '-c', configFile], { cwd: dir, env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    const pidFile = join(home, 'run', 'switchboard.pid');
    let pidSeen: string | undefined;
    let dumpSeen: string | undefined;
    let metricsText: string | undefined;
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c;
        if (!stdout.includes('"msg":"started"') || pidSeen !== undefined) return;
        pidSeen = readFileSync(pidFile, 'utf8');
        dumpSeen = readFileSync(join(home, 'run', 'config-dump.txt'), 'utf8');
        // A little traffic for the statistics, then the stop.
        fetch(`http://127.0.0.1:${http}/metrics`).then((r) => r.text()).then((text) => {
          metricsText = text;
          child.kill('SIGTERM');
          resolve();
        }, reject);
      });
      child.on('close', () => reject(new Error(`exited early: ${stderr}\n${stdout}`)));
    });
    assert.equal(await exited, 0, stderr);

    assert.equal(pidSeen, `${child.pid}\n`, 'the pid file holds the process id');
    assert.ok(!existsSync(pidFile), 'the pid file is removed at stop');
    assert.match(dumpSeen!, /^c2s\.port += \d+ +\(.*cli\.yaml\)$/m);
    assert.match(dumpSeen!, /^log\.max-size += 10485760 +\(default\)$/m);
    assert.match(dumpSeen!, /^sip-presence\.http\.token += \*\*\* /m, 'secrets are masked');
    assert.ok(!dumpSeen!.includes('a-very-secret-token-value'));
    assert.match(metricsText!, /^switchboard_sessions 0$/m);

    // The console: the environment, the modules, no info lines of the main log, the statistics.
    const consoleLines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const starting = consoleLines.find((l) => l.msg === 'starting Switchboard')!;
    assert.equal(starting.config, configFile);
    assert.equal(starting.node, process.version);
    assert.equal(starting.dataDir, join(home, 'data'));
    const started = consoleLines.find((l) => l.msg === 'started')!;
    assert.ok((started.modules as string[]).includes('statistics') && (started.modules as string[]).includes('pubsub'));
    assert.ok(!consoleLines.some((l) => l.msg === 'listening'), 'info lines stay in the main log');
    const shutdown = consoleLines.find((l) => l.msg === 'statistics of this run')!;
    assert.ok((shutdown.statistics as string[]).some((s) => /^switchboard_connections_total\{transport="tcp"\} \d+$/.test(s)));

    const mainLog = lines(join(home, 'logs', 'switchboard.log'));
    assert.ok(mainLog.some((l) => l.msg === 'listening'));
    assert.ok(mainLog.some((l) => l.msg === 'stopped'));

    const statistics = JSON.parse(readFileSync(join(home, 'run', 'statistics.json'), 'utf8')) as { samples: { name: string; value: number }[]; uptimeSeconds: number };
    assert.ok(statistics.uptimeSeconds >= 0);
    assert.ok(statistics.samples.some((s) => s.name === 'switchboard_stanzas_in_total'));
    assert.ok(statistics.samples.some((s) => s.name === 'process_resident_memory_bytes' && s.value > 0));
  });

  it('refuses to start with a log file it cannot write', async () => {
    const configFile = join(dir, 'bad-log.yaml');
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, '');
    writeFileSync(configFile, stringify({ 'data-dir': join(dir, 'bad-log-data'), log: { file: join(blocker, 'switchboard.log') } }));
    const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
    const child = spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', 'start', '-c', configFile], { cwd: dir, env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c; });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /^switchboard: cannot open the log file: .*not-a-directory/);
  });
});
