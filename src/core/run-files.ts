// Files a running server keeps beside its logs (seed 001 section 11.3): the pid file, the
// configuration dump rewritten at every start, and the statistics written at graceful shutdown.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CoreConfig } from '../config/schema.js';
import type { MetricSample, Metrics } from './metrics.js';

export interface RunFilePaths {
  pid: string;
  configDump: string;
  statistics: string;
}

/** Where the run files go: `log.dir`, else the data directory. */
export function runFilePaths(config: CoreConfig): RunFilePaths {
  const dir = config.log.dir ?? config['data-dir'];
  return { pid: join(dir, 'switchboard.pid'), configDump: join(dir, 'config-dump.txt'), statistics: join(dir, 'statistics.json') };
}

/**
 * Writes this process's id. Returns the id found in an existing pid file when that process is
 * still alive (another server may be running on the same files); the file is overwritten anyway,
 * as the previous run may have been killed and its pid reused.
 */
export function writePidFile(path: string): number | undefined {
  let previous: number | undefined;
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) previous = pid;
  } catch {
    // no pid file yet
  }
  writeAtomically(path, `${process.pid}\n`);
  return previous;
}

/** Removes the pid file if it is still ours (another process may have started since). */
export function removePidFile(path: string): void {
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The effective configuration, one option a line with its origin (secrets masked), as `dump-config` prints it. */
export function writeConfigDump(path: string, lines: string[], header: string): void {
  writeAtomically(path, `# ${header}\n${lines.join('\n')}\n`);
}

export interface StatisticsFile {
  /** When the statistics were taken (ISO 8601). */
  time: string;
  startedAt: string;
  uptimeSeconds: number;
  version: string;
  samples: MetricSample[];
}

/** Writes the statistics of this run (the JSON snapshot); returns what was written. */
export async function writeStatistics(path: string, metrics: Metrics, run: { startedAt: Date; version: string }): Promise<StatisticsFile> {
  const now = new Date();
  const content: StatisticsFile = {
    time: now.toISOString(),
    startedAt: run.startedAt.toISOString(),
    uptimeSeconds: Math.round((now.getTime() - run.startedAt.getTime()) / 1000),
    version: run.version,
    samples: await metrics.snapshot(),
  };
  writeAtomically(path, JSON.stringify(content, null, 2) + '\n');
  return content;
}

/** Write then rename, so that a reader never sees half a file. */
function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
