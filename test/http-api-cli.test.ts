// `switchboard token create|list|revoke`, run as a real child process against the configuration
// file of a running server: a token made on the command line works at once over HTTP, and a
// revoked one stops working at once. Then `switchboard start` and SIGHUP: the file is read again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { startFromFile, apiClient, type FileServer } from './support/http-api.js';
import { freePorts } from './support/server.js';

const mainUrl = new URL('../src/main.ts', import.meta.url).href;
const tsxLoader = import.meta.resolve('tsx');

interface Run { code: number | null; stdout: string; stderr: string }

function switchboard(args: string[], onSpawn?: (child: ReturnType<typeof spawn>, output: () => string) => void): Promise<Run> {
  const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
  const child = spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', ...args], { env: { PATH: process.env.PATH ?? '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
  child.stdin.end('');
  onSpawn?.(child, () => stdout);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('switchboard token', () => {
  let s: FileServer;
  before(async () => {
    s = await startFromFile({ admins: ['boss@localhost'], 'http-api': { enabled: true } });
  });
  after(async () => { await s.stop(); });

  it('creates a token that the running server accepts, lists it, revokes it', async () => {
    const created = await switchboard(['token', 'create', '-c', s.file, '--scope', 'read', '--days', '3', '--name', 'nagios']);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^sbt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, /\(read\) acts for boss@localhost, expires .*not shown again/);
    const api = apiClient(s.httpPort, token);
    assert.equal((await api('GET', '/vhosts')).status, 200);
    assert.equal((await api('POST', '/vhosts', { domain: 'x.example' })).status, 403, 'a read token');

    const list = await switchboard(['token', 'list', '-c', s.file]);
    assert.equal(list.code, 0, list.stderr);
    const id = token.split('_')[1]!;
    const line = list.stdout.split('\n').find((l) => l.startsWith(id))!;
    assert.match(line, /\tread\tboss@localhost\texpires \S+\tnagios$/);
    assert.ok(!list.stdout.includes(token.split('_')[2]!), 'no secret in the list');

    const revoked = await switchboard(['token', 'revoke', id, '-c', s.file]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await api('GET', '/vhosts')).status, 401);
    const again = await switchboard(['token', 'revoke', id, '-c', s.file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /there is no API token/);
  });

  it('refuses a token for someone who is not an administrator, a bad lifetime or scope, and misplaced options', async () => {
    const notAdmin = await switchboard(['token', 'create', '-c', s.file, '--admin', 'someone@localhost']);
    assert.equal(notAdmin.code, 1);
    assert.match(notAdmin.stderr, /someone@localhost is not one of admins/);
    const days = await switchboard(['token', 'create', '-c', s.file, '--days', 'soon']);
    assert.equal(days.code, 1);
    assert.match(days.stderr, /whole number of days/);
    const scope = await switchboard(['token', 'create', '-c', s.file, '--scope', 'root']);
    assert.equal(scope.code, 1);
    assert.match(scope.stderr, /scope must be one of read, admin/);
    const misplaced = await switchboard(['user', 'list', '-c', s.file, '--scope', 'read']);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /only go with token create/);
  });
});

describe('switchboard start: SIGHUP reloads the configuration', () => {
  it('applies a new log level on SIGHUP and refuses an invalid file, still running', async () => {
    // Only for its directory and file: the server itself runs as the child process below.
    const s = await startFromFile({});
    const file = s.file;
    await s.server.stop();
    const [port, httpPort] = await freePorts(2);
    const yaml = (level: string) => [
      `data-dir: ${JSON.stringify(s.dir + '/data')}`,
      `c2s: { host: 127.0.0.1, port: ${port}, tls-port: 0 }`,
      `http: { host: 127.0.0.1, port: ${httpPort} }`,
      'bosh: { port: 0 }',
      'websocket: { port: 0, tls-port: 0 }',
      `log: { level: ${level} }`,
    ].join('\n');
    writeFileSync(file, yaml('info'));
    const run = await switchboard(['start', '-c', file], (child, output) => {
      const steps: [RegExp, () => void][] = [
        [/"msg":"started"/, () => { writeFileSync(file, yaml('debug')); child.kill('SIGHUP'); }],
        [/"msg":"configuration reloaded"/, () => { writeFileSync(file, yaml('shouting')); child.kill('SIGHUP'); }],
        [/configuration reload refused; nothing changed/, () => child.kill('SIGTERM')],
      ];
      const poll = setInterval(() => {
        while (steps.length && steps[0]![0].test(output())) steps.shift()![1]();
        if (!steps.length) clearInterval(poll);
      }, 50);
      child.on('close', () => clearInterval(poll));
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /"applied":\["log.level"\]/);
    assert.match(run.stdout, /log\.level: expected one of/);
    assert.ok(readFileSync(file, 'utf8').includes('shouting'));
    rmSync(s.dir, { recursive: true, force: true });
  });
});
