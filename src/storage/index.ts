// Opens the configured storage backend and brings its schema up to date.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { openPostgresStorage } from './postgres.js';
import { openSqliteStorage } from './sqlite.js';
import type { Storage, StorageConfig } from './types.js';

export async function openStorage(config: StorageConfig, dataDir: string): Promise<Storage> {
  if (config.type === 'postgres') return openPostgresStorage(config.url);
  const path = config.path ?? join(dataDir, 'switchboard.sqlite');
  await mkdir(dirname(path), { recursive: true });
  return openSqliteStorage(path);
}
