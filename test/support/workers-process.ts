// `switchboard start` with `workers: 2` through the real command, in a child process: the config
// file it reads, the JSON log lines the primary writes (its own and its workers'), and a kill
// that leaves no worker behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loopbackListeners } from './server.js';

const mainUrl = new URL('../../src/main.ts', import.meta.url).href;
const tsxLoader = import.meta.resolve('tsx');

export type LogLine = Record<string, unknown> & { msg?: string; worker?: number; pid?: number };

export interface WorkersConfigFile {
  file: string;
  ports: { c2s: number; tls: number; http: number };
}

/**
 * Writes dir/switchboard.yaml for two workers listening on free ports of 127.0.0.1 (no BOSH or
 * WebSocket listeners), with `options` (data-dir, log, modules...) added on top.
 */
export async function writeWorkersConfig(dir: string, options: Record<string, unknown>): Promise<WorkersConfigFile> {
  const { ports, listeners } = await loopbackListeners();
  const file = join(dir, 'switchboard.yaml');
  writeFileSync(file, stringify({ workers: 2, ...listeners, ...options }));
  return { file, ports };
}

/** The primary process and the log lines it wrote. */
export class WorkersProcess {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  private stderr = '';
  private readonly waiters = new Set<() => void>();

  private constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout!.on('data', (c: Buffer) => {
      buffer += c;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const part of parts) {
        if (!part.trim()) continue;
        try { this.lines.push(JSON.parse(part) as LogLine); } catch { this.lines.push({ msg: part }); }
      }
      for (const wake of [...this.waiters]) wake();
    });
    child.stderr!.on('data', (c: Buffer) => { this.stderr += c; });
    this.exited = new Promise((resolve) => child.on('close', resolve));
  }

  /** Runs `switchboard start -c configFile` (cwd: the file's directory) and waits for "started". */
  static async start(configFile: string, cwd: string): Promise<WorkersProcess> {
    const script = `import(${JSON.stringify(mainUrl)}).then((m) => m.main(process.argv.slice(1))).then((code) => { process.exitCode = code; })`;
    const primary = new WorkersProcess(spawn(process.execPath, ['--import', tsxLoader, '-e', script, '--', 'start', '-c', configFile],
      { cwd, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await primary.logged((l) => l.msg === 'started', 'started');
    } catch (err) {
      primary.kill();
      throw err;
    }
    return primary;
  }

  /** Waits for a log line, at or after index `from`, that matches. */
  async logged(match: (l: LogLine) => boolean, what: string, from = 0, timeoutMs = 60_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`no log line ${what}; stderr: ${this.stderr}\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
        const timer = setTimeout(done, 200);
        this.waiters.add(done);
      });
    }
  }

  /**
   * SIGKILLs the primary and every worker it reported ready, if it is still running: workers
   * outlive a primary killed that way, and a test must not leave them holding its ports.
   */
  kill(): void {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    for (const l of this.lines) {
      if (l.msg === 'worker ready' && typeof l.pid === 'number') { try { process.kill(l.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
  }
}
