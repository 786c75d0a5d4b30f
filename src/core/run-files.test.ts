import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removePidFile, writePidFile } from './run-files.js';

test('the pid file: a live process named in it is reported, a dead one is not; only our own file is removed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'run', 'switchboard.pid');

  assert.equal(writePidFile(path), undefined, 'no previous file');
  assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);

  writeFileSync(path, `${process.ppid}\n`);
  assert.equal(writePidFile(path), process.ppid, 'the parent is alive: another server may be running');
  assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`, 'overwritten all the same');

  writeFileSync(path, '2147483646\n');
  assert.equal(writePidFile(path), undefined, 'a process that does not exist is a stale file');

  writeFileSync(path, `${process.ppid}\n`);
  removePidFile(path);
  assert.ok(existsSync(path), 'a file naming another process is left alone');
  writePidFile(path);
  removePidFile(path);
  assert.ok(!existsSync(path));
});
