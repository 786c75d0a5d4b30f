import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describeSchema, type OptionSpec } from './describe.js';
import { exampleYaml } from './example.js';
import { configSchema, loadConfig } from './load.js';

const examplePath = fileURLToPath(new URL('../../config/example.yaml', import.meta.url));

test('config/example.yaml is up to date with the schemas', () => {
  assert.equal(readFileSync(examplePath, 'utf8'), exampleYaml(),
    'config/example.yaml is out of date: run  node --import tsx src/config/example.ts > config/example.yaml');
});

test('config/example.yaml loads back to the defaults', async () => {
  // From an empty working directory: no config/switchboard.yaml there, so `defaults` has no file.
  const originalCwd = process.cwd();
  const emptyDir = mkdtempSync(join(tmpdir(), 'switchboard-example-'));
  process.chdir(emptyDir);
  try {
    const fromExample = await loadConfig({ file: examplePath, env: {} });
    const defaults = await loadConfig({ env: {} });
    assert.equal(defaults.file, undefined);
    assert.deepEqual(fromExample.config, defaults.config);
  } finally {
    process.chdir(originalCwd);
    rmSync(emptyDir, { recursive: true });
  }
});

test('the example shows every option, with a description', () => {
  const text = exampleYaml();
  const parsed = parse(text) as Record<string, unknown>;
  const walk = (options: OptionSpec[], path: string[]) => {
    for (const option of options) {
      const where = [...path, option.key].join('.');
      assert.notEqual(option.description, '', `${where} has no description`);
      assert.ok(text.includes(`# ${option.description}`), `${where}: description missing from the example`);
      assert.ok(new RegExp(`^[ #]*${option.key}:`, 'm').test(text), `${where} missing from the example`);
      if (option.shape.kind === 'section') walk(option.shape.options, [...path, option.key]);
      if (option.shape.kind === 'map' && option.shape.entry.kind === 'section') walk(option.shape.entry.options, [...path, option.key, '*']);
    }
  };
  walk(describeSchema(configSchema()), []);
  assert.ok('roster' in parsed && 'version' in parsed, 'module sections are in the example');
});
