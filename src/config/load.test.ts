import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './load.js';
import { formatPath } from './describe.js';

// Relative paths resolve against the working directory, so every test runs in a fresh one.
const originalCwd = process.cwd();
let dir: string;
before(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'switchboard-config-')));
  process.chdir(dir);
});
after(() => {
  process.chdir(originalCwd);
  rmSync(dir, { recursive: true, force: true });
});

let fileCount = 0;
function configFile(yaml: string): string {
  const path = join(dir, `config-${++fileCount}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

async function problemsOf(yaml: string): Promise<{ file: string; problems: string[] }> {
  const file = configFile(yaml);
  const error = await loadConfig({ file, env: {} }).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  assert.equal(error.message, error.problems.join('\n'));
  return { file, problems: error.problems };
}

describe('defaults', () => {
  test('no file anywhere: built-in defaults, every option from the defaults', async () => {
    const { config, file, sources } = await loadConfig({ env: {} });
    assert.equal(file, undefined);
    assert.deepEqual(config['virtual-hosts'], ['localhost']);
    assert.deepEqual(config.admins, []);
    assert.equal(config['data-dir'], join(dir, 'data'));
    assert.deepEqual(config.storage, { type: 'sqlite' });
    assert.equal(config.c2s.port, 5222);
    assert.equal(config.c2s['tls-port'], 5223);
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.roster, { 'max-items': 1000 });
    assert.deepEqual(config.version, { 'show-os': false });
    assert.ok(sources.size > 20);
    assert.deepEqual(new Set(sources.values()), new Set(['default']));
  });

  test('an empty file, and empty sections, mean the defaults', async () => {
    const empty = await loadConfig({ file: configFile(''), env: {} });
    const defaults = await loadConfig({ env: {} });
    assert.deepEqual(empty.config, defaults.config);
    const emptySections = await loadConfig({ file: configFile('c2s:\nlog:\nroster:\n'), env: {} });
    assert.deepEqual(emptySections.config, defaults.config);
  });
});

describe('finding the file', () => {
  test('-c wins over SWITCHBOARD_CONFIG, which wins over ./config/switchboard.yaml', async () => {
    mkdirSync(join(dir, 'config'), { recursive: true });
    writeFileSync(join(dir, 'config', 'switchboard.yaml'), 'c2s: { port: 1001 }\n');
    const fromEnv = configFile('c2s: { port: 1002 }\n');
    const explicit = configFile('c2s: { port: 1003 }\n');
    try {
      const atDefaultLocation = await loadConfig({ env: {} });
      assert.equal(atDefaultLocation.file, join(dir, 'config', 'switchboard.yaml'));
      assert.equal(atDefaultLocation.config.c2s.port, 1001);
      const env = { SWITCHBOARD_CONFIG: fromEnv };
      assert.equal((await loadConfig({ env })).config.c2s.port, 1002);
      assert.equal((await loadConfig({ env })).file, fromEnv);
      assert.equal((await loadConfig({ file: explicit, env })).config.c2s.port, 1003);
    } finally {
      rmSync(join(dir, 'config'), { recursive: true });
    }
  });

  test('a relative file name resolves against the working directory', async () => {
    const path = configFile('admins: [boss@localhost]\n');
    const { file, config } = await loadConfig({ file: path.slice(dir.length + 1), env: {} });
    assert.equal(file, path);
    assert.deepEqual(config.admins, ['boss@localhost']);
  });

  test('a missing file is an error naming where the name came from', async () => {
    await assert.rejects(loadConfig({ file: 'nope.yaml', env: {} }), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /nope\.yaml: cannot read the configuration file \(named by -c\): no such file/);
      return true;
    });
    await assert.rejects(loadConfig({ env: { SWITCHBOARD_CONFIG: join(dir, 'gone.yaml') } }), /gone\.yaml: .*named by SWITCHBOARD_CONFIG/);
  });
});

describe('values from the file', () => {
  test('core and module options, normalised, with relative paths made absolute', async () => {
    const file = configFile([
      'virtual-hosts: [Example.COM, localhost]',
      'admins: [Boss@example.com]',
      'data-dir: state',
      'vhost-options:',
      '  EXAMPLE.com: { in-band-registration: true }',
      'storage: { type: sqlite, path: db/accounts.sqlite }',
      'tls:',
      '  certificates:',
      '    localhost: { cert: certs/a.crt, key: /etc/a.key }',
      'log: { level: debug, file: logs/switchboard.log }',
      'roster: { max-items: 50 }',
      'version: { show-os: true }',
    ].join('\n'));
    const { config } = await loadConfig({ file, env: {} });
    assert.deepEqual(config['virtual-hosts'], ['example.com', 'localhost']);
    assert.deepEqual(config.admins, ['boss@example.com']);
    assert.equal(config['data-dir'], join(dir, 'state'));
    assert.deepEqual(config['vhost-options'], { 'example.com': { 'anonymous-login': false, 'in-band-registration': true } });
    assert.deepEqual(config.storage, { type: 'sqlite', path: join(dir, 'db/accounts.sqlite') });
    assert.deepEqual(config.tls.certificates, { localhost: { cert: join(dir, 'certs/a.crt'), key: '/etc/a.key' } });
    assert.deepEqual(config.log, { level: 'debug', file: join(dir, 'logs/switchboard.log'), 'max-size': 10 * 1024 * 1024, 'max-files': 10, 'pid-file': true, debug: [] });
    assert.deepEqual(config.roster, { 'max-items': 50 });
    assert.deepEqual(config.version, { 'show-os': true });
  });

  test('postgres storage', async () => {
    const { config } = await loadConfig({ file: configFile('storage: { type: postgres, url: "postgres://u:p@db/switchboard" }\n'), env: {} });
    assert.deepEqual(config.storage, { type: 'postgres', url: 'postgres://u:p@db/switchboard' });
  });

  test('sources: every option path, "file" exactly for what the file sets', async () => {
    const file = configFile([
      'virtual-hosts: [Example.COM]',
      'vhost-options:',
      '  example.com: { anonymous-login: true }',
      'c2s: { port: 5300 }',
      'roster: { max-items: 10 }',
    ].join('\n'));
    const { sources } = await loadConfig({ file, env: {} });
    const fromFile = [...sources].filter(([, source]) => source === 'file').map(([path]) => path);
    assert.deepEqual(fromFile.sort(), ['c2s.port', 'roster.max-items', 'vhost-options[example.com].anonymous-login', 'virtual-hosts']);
    for (const path of ['c2s.host', 'c2s.tls-port', 'storage.type', 'storage.path', 'tls.certificates', 'log.level', 'log.file', 'admins', 'data-dir',
      'vhost-options[example.com].in-band-registration', 'version.show-os']) {
      assert.equal(sources.get(path), 'default', path);
    }
    assert.equal(sources.has('storage.url'), false, 'options of the other storage type are not listed');
  });
});

describe('errors: every problem at once, as <file>: <option.path>: <reason>', () => {
  test('wrong types, bounds and choices', async () => {
    const { file, problems } = await problemsOf([
      'c2s:',
      '  port: abc',
      '  max-depth: 2',
      '  plaintext-auth: sometimes',
      '  legacy-auth: yes',
      '  negotiation-timeout: 0.5',
      '  max-stanza-size: 1.5',
      'virtual-hosts: []',
      'admins: boss',
    ].join('\n'));
    assert.deepEqual(problems.sort(), [
      `${file}: admins: expected a list, got "boss"`,
      `${file}: c2s.legacy-auth: expected true or false, got "yes"`,
      `${file}: c2s.max-depth: must be at least 4, got 2`,
      `${file}: c2s.max-stanza-size: expected a whole number, got 1.5`,
      `${file}: c2s.negotiation-timeout: must be at least 1, got 0.5`,
      `${file}: c2s.plaintext-auth: expected one of "loopback", "always", "never", got "sometimes"`,
      `${file}: c2s.port: expected a number, got "abc"`,
      `${file}: virtual-hosts: must list at least 1 entry, got a list`,
    ]);
  });

  test('unknown keys, at the top, in sections, in modules and in a storage variant', async () => {
    const { file, problems } = await problemsOf([
      'c2s: { foo: 1 }',
      'colour: blue',
      'roster: { max-item: 5 }',
      'storage: { type: sqlite, url: "postgres://x" }',
      'vhost-options:',
      '  localhost: { anonymous: true }',
    ].join('\n'));
    assert.equal(problems.length, 5);
    assert.ok(problems.every((p) => p.startsWith(`${file}: `)));
    const byPath = (path: string) => problems.find((p) => p.startsWith(`${file}: ${path}: `));
    assert.match(byPath('c2s.foo')!, /unknown key \(valid here: host, port, tls-port, /);
    assert.match(byPath('colour')!, /unknown key \(valid here: virtual-hosts, admins, .*\bc2s\b.*\broster, version\b.*\)$/);
    assert.match(byPath('roster.max-item')!, /unknown key \(valid here: max-items\)$/);
    assert.match(byPath('storage.url')!, /unknown key \(valid here: type, path\)$/);
    assert.match(byPath('vhost-options.localhost.anonymous')!, /unknown key \(valid here: anonymous-login, in-band-registration\)$/);
  });

  test('missing and invalid required values', async () => {
    const { file, problems } = await problemsOf([
      'storage: { type: postgres }',
      'tls:',
      '  certificates:',
      '    localhost: { cert: a.crt }',
    ].join('\n'));
    assert.deepEqual(problems.sort(), [
      `${file}: storage.url: missing (expected a string)`,
      `${file}: tls.certificates.localhost.key: missing (expected a string)`,
    ]);
    const other = await problemsOf('storage: { type: mysql }\n');
    assert.deepEqual(other.problems, [`${other.file}: storage.type: expected one of "sqlite", "postgres", got "mysql"`]);
    const url = await problemsOf('storage: { type: postgres, url: "mysql://db" }\n');
    assert.deepEqual(url.problems, [`${url.file}: storage.url: must be a postgres:// or postgresql:// URL`]);
  });

  test('domains, JIDs, and references between options', async () => {
    const invalid = await problemsOf('virtual-hosts: ["bad host"]\nadmins: [example.com, "a@b/c"]\n');
    assert.deepEqual(invalid.problems.map((p) => p.slice(invalid.file.length + 2)), [
      'virtual-hosts[0]: "bad host" is not a valid domain name: domainpart contains a forbidden character',
      'admins[0]: "example.com" is not a bare JID of the form user@domain',
      'admins[1]: "a@b/c" is not a bare JID of the form user@domain',
    ]);
    const references = await problemsOf([
      'virtual-hosts: [localhost, LOCALHOST]',
      'vhost-options: { other.org: {} }',
      'tls: { certificates: { other.org: { cert: a, key: b } } }',
      'c2s: { host: 127.0.0.1, port: 5222, tls-port: 5222 }',
      'http: { host: 127.0.0.1, port: 5280 }',
      'websocket: { port: 5222 }',
    ].join('\n'));
    assert.deepEqual(references.problems.map((p) => p.slice(references.file.length + 2)), [
      'virtual-hosts[1]: "localhost" is listed twice',
      'vhost-options[other.org]: "other.org" is not one of virtual-hosts (localhost)',
      'tls.certificates[other.org]: "other.org" is not one of virtual-hosts (localhost)',
      'c2s.tls-port: must differ from c2s.port (both are 5222)',
      'bosh.port: must differ from http.port (both are 5280)',
      'websocket.port: must differ from c2s.port (both are 5222)',
    ]);
    // One port on two different addresses is fine.
    await loadConfig({ file: configFile('c2s: { host: 127.0.0.1, port: 8080 }\nhttp: { host: 10.0.0.1 }\n'), env: {} });
  });

  test('YAML syntax errors with line:column', async () => {
    const { file, problems } = await problemsOf('c2s:\n  port: 1\n bad: x\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:1: YAML syntax error: \\S`));
    const duplicate = await problemsOf('admins: []\nadmins: []\n');
    assert.match(duplicate.problems[0]!, /:2:1: YAML syntax error: Map keys must be unique/);
  });

  test('a file that is not a mapping', async () => {
    const { file, problems } = await problemsOf('- a\n- b\n');
    assert.deepEqual(problems, [`${file}: expected options as "key: value" lines, got a list`]);
  });
});

test('formatPath brackets list positions and keys that are not plain words', () => {
  assert.equal(formatPath(['c2s', 'port']), 'c2s.port');
  assert.equal(formatPath(['admins', 0]), 'admins[0]');
  assert.equal(formatPath(['vhost-options', 'example.com', 'anonymous-login']), 'vhost-options[example.com].anonymous-login');
});
