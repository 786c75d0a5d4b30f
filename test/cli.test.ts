// The `switchboard` command line, run as a real child process in a temporary directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { verifyPassword } from '../src/auth/credentials.js';
import { openStorage } from '../src/storage/index.js';
import { freePorts } from './support/server.js';
import { stringify } from 'yaml';
import { describeSchema, optionValues } from '../src/config/describe.js';
import { configSchema } from '../src/config/load.js';

const mainUrl = new URL('../src/main.ts', import.meta.url).href;
const tsxLoader = import.meta.resolve('tsx');
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  /** Called once with the child, e.g. to signal it. */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

/**
 * Runs `switchboard ARGS` from the TypeScript sources. tsx and main.ts are given as absolute URLs
 * because the child runs in a temporary directory; `--` keeps node from reading --help and -c itself.
 */
function switchboard(args: string[], options: RunOptions = {}): Promise<Run> {
  const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...options.env };
  const child = spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', ...args], { cwd: options.cwd ?? dir, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
  child.stdin.end(options.stdin ?? '');
  options.onSpawn?.(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every port option of the schema (c2s.port, c2s.tls-port, and any listener added later) on a free loopback port. */
async function listenersOnFreePorts(): Promise<Record<string, Record<string, unknown>>> {
  const sections: Record<string, Record<string, unknown>> = {};
  const paths = optionValues(describeSchema(configSchema()), {}).map(({ path }) => path.join('.'));
  const ports = await freePorts(paths.length);
  for (const path of paths) {
    const [section, key, ...deeper] = path.split('.');
    if (!section || !key || deeper.length > 0 || !/(^|-)port$/.test(key)) continue;
    sections[section] ??= {};
    sections[section][key] = ports.pop();
    if (paths.includes(`${section}.host`)) sections[section].host = '127.0.0.1';
  }
  return sections;
}

let dir: string;
let configPath: string;

function writeConfig(name: string, yaml: string): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

before(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'switchboard-cli-')));
  configPath = writeConfig('switchboard.yaml', [
    'virtual-hosts: [example.com, localhost]',
    'admins: [boss@example.com]',
    'data-dir: ./data',
    'vhost-options:',
    '  localhost: { in-band-registration: true }',
    'c2s: { host: 127.0.0.1, port: 15222 }',
    'log: { level: warn }',
  ].join('\n'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('usage', () => {
  test('--help and no arguments print the usage', async () => {
    for (const args of [['--help'], []]) {
      const run = await switchboard(args);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /^Usage: switchboard <command> \[options\]/);
      assert.match(run.stdout, /user add JID \[--password P\]/);
    }
  });

  test('--version prints the package version', async () => {
    const run = await switchboard(['--version']);
    assert.equal(run.code, 0);
    assert.equal(run.stdout.trim(), version);
  });

  test('usage errors exit with 2', async () => {
    for (const [args, message] of [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['--colour'], /Unknown option '--colour'/],
      [['check', 'extra'], /usage: switchboard check/],
      [['user', 'add'], /usage: switchboard user add JID/],
      [['user', 'rename', 'a@example.com'], /unknown user command "rename"/],
      [['check', '--password', 'x'], /--password only goes with user add and user passwd/],
    ] as const) {
      const run = await switchboard([...args]);
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, message);
    }
  });
});

describe('check', () => {
  test('reports the resolved environment', async () => {
    const run = await switchboard(['check', '-c', configPath]);
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    assert.match(out, new RegExp(`^Switchboard ${version} on Node.js ${process.version}`));
    assert.match(out, new RegExp(`^config file +${configPath}$`, 'm'));
    assert.match(out, new RegExp(`^data dir +${join(dir, 'data')} \\((writable|does not exist yet, will be created)\\)$`, 'm'));
    assert.match(out, new RegExp(`^storage +sqlite ${join(dir, 'data', 'switchboard.sqlite')} `, 'm'));
    assert.match(out, /^listeners +127\.0\.0\.1:15222 XMPP clients \(STARTTLS\)\n +127\.0\.0\.1:5223 XMPP clients \(direct TLS\)\n +0\.0\.0\.0:8080 HTTP/m);
    assert.match(out, /^virtual hosts +example\.com \(default host\): anonymous-login false, in-band-registration false\n +localhost: anonymous-login false, in-band-registration true$/m);
    assert.match(out, new RegExp(`^certificates +example\\.com: self-signed ${join(dir, 'data', 'certs', 'example.com.crt')}, ${join(dir, 'data', 'certs', 'example.com.key')} \\(will be generated on first start\\)$`, 'm'));
    assert.match(out, /^admins +boss@example\.com$/m);
    assert.match(out, /^Ready to start\.$/m);
  });

  test('without any configuration file: built-in defaults', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    const run = await switchboard(['check'], { cwd: empty });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^config file +none, built-in defaults$/m);
    assert.match(run.stdout, /^listeners +0\.0\.0\.0:5222 XMPP clients \(STARTTLS\)$/m);
  });

  test('fails when the data directory cannot be created', async () => {
    writeFileSync(join(dir, 'a-file'), '');
    const config = writeConfig('unwritable.yaml', 'data-dir: ./a-file/data\n');
    const run = await switchboard(['check', '-c', config]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^1 problem:\n {2}- data dir .*a-file\/data does not exist and cannot be created/m);
  });

  test('reads configured certificates: validity, and files that are missing', async () => {
    const pems = await generate([{ name: 'commonName', value: 'example.com' }], { keySize: 2048 } as never);
    mkdirSync(join(dir, 'pem'), { recursive: true });
    writeFileSync(join(dir, 'pem', 'example.crt'), pems.cert);
    writeFileSync(join(dir, 'pem', 'example.key'), pems.private);
    const config = writeConfig('certificates.yaml', [
      'virtual-hosts: [example.com, localhost]',
      'tls:',
      '  certificates:',
      '    example.com: { cert: pem/example.crt, key: pem/example.key }',
      '    localhost: { cert: pem/missing.crt, key: pem/example.key }',
    ].join('\n'));
    const run = await switchboard(['check', '-c', config]);
    assert.equal(run.code, 1);
    const pem = join(dir, 'pem');
    assert.match(run.stdout, new RegExp(`^certificates +example\\.com: ${pem}/example\\.crt, ${pem}/example\\.key \\(valid until \\d{4}-\\d\\d-\\d\\d\\)$`, 'm'));
    assert.match(run.stdout, new RegExp(`^ +localhost: ${pem}/missing\\.crt, ${pem}/example\\.key \\(PROBLEM\\)$`, 'm'));
    assert.match(run.stdout, /^1 problem:\n {2}- certificate of localhost: ENOENT: no such file or directory/m);
  });

  test('fails, listing every problem, when the configuration is invalid', async () => {
    const config = writeConfig('invalid.yaml', 'c2s: { port: abc }\nfoo: 1\n');
    const run = await switchboard(['check', '-c', config]);
    assert.equal(run.code, 1);
    const problems = run.stderr.trimEnd().split('\n').sort();
    assert.equal(problems.length, 2);
    assert.equal(problems[0], `${config}: c2s.port: expected a number, got "abc"`);
    assert.match(problems[1]!, /: foo: unknown key \(valid here: virtual-hosts, admins, .*\bc2s\b.*\broster\b.*\)$/);
    assert.ok(problems[1]!.startsWith(`${config}: `));
  });
});

describe('dump-config', () => {
  test('every option with its value and where it came from', async () => {
    const run = await switchboard(['dump-config', '-c', configPath]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    const line = (path: string) => lines.find((l) => l.startsWith(`${path} = `));
    assert.match(line('c2s.port')!, new RegExp(`^c2s\\.port = 15222 +\\(${configPath}\\)$`));
    assert.match(line('c2s.tls-port')!, /^c2s\.tls-port = 5223 +\(default\)$/);
    assert.match(line('virtual-hosts')!, new RegExp(`^virtual-hosts = \\["example.com","localhost"\\] +\\(${configPath}\\)$`));
    assert.match(line('data-dir')!, new RegExp(`^data-dir = ${join(dir, 'data')} +\\(${configPath}\\)$`));
    assert.match(line('vhost-options.localhost.in-band-registration')!, /= true +\(.*switchboard\.yaml\)$/);
    assert.match(line('vhost-options.localhost.anonymous-login')!, /= false +\(default\)$/);
    assert.match(line('log.file')!, /^log\.file = \(not set\) +\(default\)$/);
    assert.match(line('roster.max-items')!, /^roster\.max-items = 1000 +\(default\)$/);
    // Aligned: the origins start in one column.
    assert.equal(new Set(lines.map((l) => l.indexOf('   ('))).size, 1);
  });

  test('honours SWITCHBOARD_CONFIG and ./config/switchboard.yaml, and masks passwords', async () => {
    const fromEnv = writeConfig('env.yaml', 'storage: { type: postgres, url: "postgres://app:secret@db.internal/switchboard" }\n');
    const run = await switchboard(['dump-config'], { env: { SWITCHBOARD_CONFIG: fromEnv } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^storage\\.url = postgres://app:\\*\\*\\*@db\\.internal/switchboard +\\(${fromEnv}\\)$`, 'm'));
    assert.doesNotMatch(run.stdout, /secret/);

    const project = mkdtempSync(join(dir, 'project-'));
    mkdirSync(join(project, 'config'));
    writeFileSync(join(project, 'config', 'switchboard.yaml'), 'c2s: { port: 6222 }\n');
    const found = await switchboard(['dump-config'], { cwd: project });
    assert.match(found.stdout, new RegExp(`^c2s\\.port = 6222 +\\(${join(project, 'config', 'switchboard.yaml')}\\)$`, 'm'));
  });
});

describe('user', () => {
  const users = (...args: string[]) => switchboard(['user', ...args, '-c', configPath]);

  test('add, list, passwd and delete against SQLite', async () => {
    let run = await users('add', 'alice@example.com', '--password', 'first');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'added alice@example.com\n');

    // The password from a pipe, one line.
    run = await switchboard(['user', 'add', 'Bob@LocalHost', '-c', configPath], { stdin: 'from-stdin\nignored\n' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'added bob@localhost\n');

    run = await users('add', 'alice@example.com', '--password', 'again');
    assert.equal(run.code, 1);
    assert.equal(run.stderr, 'switchboard: alice@example.com already exists\n');

    run = await users('list');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'alice@example.com\nbob@localhost\n');
    run = await users('list', 'localhost');
    assert.equal(run.stdout, 'bob@localhost\n');

    run = await switchboard(['user', 'passwd', 'alice@example.com', '-c', configPath], { stdin: 'second\n' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'changed the password of alice@example.com\n');

    const storage = await openStorage({ type: 'sqlite' }, join(dir, 'data'));
    try {
      const alice = await storage.users.get('example.com', 'alice');
      assert.ok(alice && verifyPassword(alice, 'second') && !verifyPassword(alice, 'first'));
      const bob = await storage.users.get('localhost', 'bob');
      assert.ok(bob && verifyPassword(bob, 'from-stdin'));
    } finally {
      await storage.close();
    }

    run = await users('delete', 'alice@example.com');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'deleted alice@example.com\n');
    run = await users('delete', 'alice@example.com');
    assert.equal(run.code, 1);
    assert.equal(run.stderr, 'switchboard: alice@example.com does not exist\n');
    run = await users('passwd', 'alice@example.com', '--password', 'x');
    assert.equal(run.code, 1);
    assert.equal(run.stderr, 'switchboard: alice@example.com does not exist\n');
    assert.equal((await users('list')).stdout, 'bob@localhost\n');

    // check now finds the database.
    run = await switchboard(['check', '-c', configPath]);
    assert.match(run.stdout, /^storage +sqlite .*switchboard\.sqlite \(opened, schema version \d+\)$/m);
  });

  test('accounts must be bare JIDs on a configured virtual host', async () => {
    for (const [args, message] of [
      [['add', 'carol@elsewhere.org', '--password', 'x'], 'switchboard: elsewhere.org is not a virtual host of this server (virtual-hosts: example.com, localhost)'],
      [['add', 'example.com', '--password', 'x'], 'switchboard: "example.com" is not an account: expected user@domain'],
      [['add', 'carol@example.com/phone', '--password', 'x'], 'switchboard: "carol@example.com/phone" is not an account: expected user@domain'],
      [['add', 'a b@example.com', '--password', 'x'], 'switchboard: "a b@example.com" is not a valid JID: localpart contains a forbidden character'],
      [['list', 'elsewhere.org'], 'switchboard: elsewhere.org is not a virtual host of this server (virtual-hosts: example.com, localhost)'],
    ] as const) {
      const run = await users(...args);
      assert.equal(run.code, 1, args.join(' '));
      assert.equal(run.stderr, message + '\n');
    }
  });

  test('an empty password, or one that SASLprep prohibits, is refused', async () => {
    let run = await switchboard(['user', 'add', 'dave@example.com', '-c', configPath], { stdin: '' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^switchboard: empty password: give one with --password or on standard input\n$/);
    run = await switchboard(['user', 'add', 'dave@example.com', '-c', configPath, '--password', 'bell\u0007']);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, 'switchboard: unacceptable password: the password contains a prohibited character\n');
    assert.equal((await switchboard(['user', 'list', 'example.com', '-c', configPath])).stdout, '', 'no account was created');
  });
});

describe('start', () => {
  test('a bad configuration stops the start with the option path and reason', async () => {
    const config = writeConfig('bad-port.yaml', 'c2s:\n  port: "abc"\n');
    const run = await switchboard(['start', '-c', config]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `${config}: c2s.port: expected a number, got "abc"\n`);
  });

  test('starts, and stops cleanly on SIGTERM', async () => {
    const config = writeConfig('start.yaml', stringify({ 'data-dir': './start-data', ...await listenersOnFreePorts() }));
    const run = await switchboard(['start', '-c', config], {
      onSpawn(child) {
        let seen = '';
        // The server binds every listener before it logs the first "listening".
        const killWhenListening = (chunk: Buffer) => {
          seen += chunk;
          if (!seen.includes('"msg":"listening"')) return;
          child.stdout!.off('data', killWhenListening);
          child.kill('SIGTERM');
        };
        child.stdout!.on('data', killWhenListening);
      },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /"signal":"SIGTERM","msg":"stopping"/);
    assert.match(run.stdout, /"msg":"stopped"/);
  });
});
