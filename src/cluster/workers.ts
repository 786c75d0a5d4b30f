// `workers`: one node on every core of its machine. The primary process forks N worker
// processes with node:cluster; each runs a whole server and is a cluster node of its own
// (`<node-name>/<n>`) whose bus to the others is the IPC channel, relayed by the primary
// (ipc-bus.ts), so users on different workers reach each other exactly as across cluster
// nodes. node:cluster shares the listening sockets: the primary accepts and hands each new
// connection to a worker in turn. The primary also restarts a crashed worker (with backoff)
// and tells the others at once that it died, forwards SIGTERM/SIGINT for a graceful stop and
// SIGHUP for a reload, and writes the workers' log lines into the one main log.
import cluster, { type Worker } from 'node:cluster';
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeerLinks } from './peer-links.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { IpcBus, IpcRelay, processChannel, type PrimaryToWorker } from './ipc-bus.js';
import type { ClusterBus } from './bus.js';
import { NodeMetricsRelay } from './worker-metrics.js';

export const workersSchema = z.union([z.literal('auto'), z.number().int().min(1).max(256)], { error: 'must be auto or a number of processes (1 to 256)' }).default(1)
  .describe('Worker processes serving this node behind the same ports: auto (one per core) or a number; 1 runs a single process. The workers reach each other as cluster nodes do, over the process channel');

export type WorkersSetting = z.infer<typeof workersSchema>;

/** How many workers a setting asks for on this machine. */
export function workerCount(setting: WorkersSetting): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** The environment variable telling a forked worker its number (1..N, kept across restarts). */
const WORKER_VARIABLE = 'SWITCHBOARD_WORKER';

/** Control messages between the primary and a worker (besides the bus's). */
type WorkerToPrimaryControl =
  | { sb: 'log'; l: string }
  | { sb: 'ready'; listeners: string[] }
  | { sb: 'failed'; error: string };
type PrimaryToWorkerControl = { sb: 'stop' } | { sb: 'reload' };

// --- the worker's side --------------------------------------------------------------------

/** This process's worker number when it is a worker of `workers`, else undefined. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[WORKER_VARIABLE]);
  return Number.isInteger(index) && index > 0 ? index : undefined;
}

/** The directory of the workers' private sockets: the workers of one primary share it, another primary has its own. */
function socketDirectory(primaryPid: number): string {
  return join(tmpdir(), `switchboard-${primaryPid}`);
}

/** A private Unix socket of a worker (its direct bus link, its BOSH forwarding), in its primary's socketDirectory. */
export function workerSocketPath(name: string): string {
  const dir = socketDirectory(process.ppid);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, name);
}

/** The bus of this worker to its siblings: subscriptions through the primary, messages direct. */
export function workerBus(index: number, log: Logger): ClusterBus {
  let bus: IpcBus | undefined;
  const links = new PeerLinks(String(index), (worker) => workerSocketPath(`bus-${worker}.sock`), (deliveries) => bus?.delivered(deliveries), log);
  bus = new IpcBus(processChannel(), String(index), links);
  return bus;
}

/** A pino destination sending each line to the primary, which writes the main log. */
export function primaryLogDestination(): { write(line: string): void } {
  return { write: (line) => sendToPrimary({ sb: 'log', l: line }) };
}

export function sendToPrimary(message: WorkerToPrimaryControl): void {
  if (process.send && process.connected) process.send(message);
}

/**
 * What the primary asks of this worker: `stop` resolves once on a stop request (or when the
 * primary is gone), `onReload` is called on each reload request.
 */
export function primaryRequests(onReload: () => void): { stop: Promise<'stop' | 'primary gone'>; cancel(): void } {
  let cancel = () => {};
  const stop = new Promise<'stop' | 'primary gone'>((resolve) => {
    const onMessage = (m: unknown) => {
      const message = m as PrimaryToWorkerControl;
      if (message?.sb === 'stop') resolve('stop');
      else if (message?.sb === 'reload') onReload();
    };
    const onDisconnect = () => resolve('primary gone');
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    cancel = () => { process.off('message', onMessage); process.off('disconnect', onDisconnect); };
  });
  return { stop, cancel };
}

// --- the primary's side -------------------------------------------------------------------

export interface SupervisorOptions {
  count: number;
  /** The configuration file the workers read (the primary's). */
  configFile?: string;
  /** The primary's logger: the workers' lines are written to it, with `worker: n`. */
  log: Logger;
  /** Base name of the workers' cluster nodes (cluster.node-name, default the hostname). */
  nodeName?: string;
  /** Subject prefix of the cluster bus (cluster.subject-prefix). */
  subjectPrefix: string;
  /** First restart delay in ms after a crash, doubled at each crash in a row up to `maxRestartDelay`. */
  restartDelay?: number;
  maxRestartDelay?: number;
}

const LEVEL_NAMES: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

interface Slot {
  index: number;
  worker?: Worker;
  /** The incarnation its cluster node announced in its heartbeats. */
  incarnation?: string;
  startedAt: number;
  crashes: number;
  /** Started and serving (it answers the primary's requests, statistics included). */
  ready?: boolean;
  restartTimer?: NodeJS.Timeout;
}

export class WorkerSupervisor {
  private readonly relay = new IpcRelay();
  private readonly slots: Slot[] = [];
  /** The node's statistics, gathered from every worker for the one that is asked (worker-metrics.ts). */
  private readonly metrics: NodeMetricsRelay;
  private stopping = false;
  private started = false;
  /** Logger that takes every level: the workers filtered their lines already. */
  private readonly workerLog: Logger;
  private readonly nodeName: string;
  private readonly heartbeatSubject: string;

  constructor(private readonly o: SupervisorOptions) {
    this.workerLog = o.log.child({}, { level: 'trace' });
    this.nodeName = o.nodeName ?? hostname();
    this.heartbeatSubject = `${o.subjectPrefix}.heartbeat`;
    this.relay.watch(this.heartbeatSubject);
    for (let index = 1; index <= o.count; index++) this.slots.push({ index, startedAt: 0, crashes: 0 });
    this.metrics = new NodeMetricsRelay(o.count, () => {
      const out = new Map<number, (message: unknown) => void>();
      for (const s of this.slots) {
        const worker = s.worker;
        if (s.ready && worker?.isConnected()) out.set(s.index, (m) => { if (worker.isConnected()) worker.send(m as object); });
      }
      return out;
    });
    // The worker program beside this file (.ts when run from the sources through tsx). The channel
    // stays JSON: V8's serialization ('advanced') took 1.5x the CPU per PubSub notification here,
    // its reader concatenating buffers again for each chunk of a large batch.
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker-entry.ts' : './worker-entry.js', import.meta.url);
    cluster.setupPrimary({ exec: fileURLToPath(entry), args: o.configFile ? [o.configFile] : [], execArgv: withoutEval(process.execArgv) });
  }

  /**
   * Forks the workers one after the other (the first one migrates the storage alone and is the
   * oldest node, which serves the domain services); resolves with the first worker's listeners
   * once all are ready, rejects if one cannot start.
   */
  async start(): Promise<string[]> {
    let listeners: string[] = [];
    for (const slot of this.slots) {
      const ready = await this.fork(slot);
      if (slot.index === 1) listeners = ready;
    }
    this.started = true;
    return listeners;
  }

  /** Pids of the running workers, by worker number. */
  pids(): Map<number, number> {
    const out = new Map<number, number>();
    for (const s of this.slots) if (s.worker?.process.pid && !s.worker.isDead()) out.set(s.index, s.worker.process.pid);
    return out;
  }

  private fork(slot: Slot): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const worker = cluster.fork({ [WORKER_VARIABLE]: String(slot.index) });
      const id = String(slot.index);
      slot.worker = worker;
      slot.incarnation = undefined;
      slot.ready = false;
      slot.startedAt = Date.now();
      let ready = false;
      this.relay.attach(id, (m: PrimaryToWorker) => { if (worker.isConnected()) worker.send(m); });
      worker.on('message', (m: unknown) => {
        const bus = this.relay.received(id, m, (subject, data) => {
          const inc = (data as { inc?: unknown } | null)?.inc;
          if (subject === this.heartbeatSubject && typeof inc === 'string') slot.incarnation = inc;
        });
        if (bus) return;
        if (this.metrics.received(slot.index, m, (reply) => { if (worker.isConnected()) worker.send(reply as object); })) return;
        const control = m as WorkerToPrimaryControl;
        if (control?.sb === 'log') this.writeLog(slot.index, control.l);
        else if (control?.sb === 'ready') {
          ready = true;
          slot.ready = true;
          this.o.log.info({ worker: slot.index, pid: worker.process.pid }, 'worker ready');
          resolve(control.listeners);
        } else if (control?.sb === 'failed' && !ready) {
          reject(new Error(`worker ${slot.index}: ${control.error}`));
        }
      });
      worker.on('exit', (code, signal) => {
        this.relay.detach(id);
        this.metrics.gone(slot.index);
        if (slot.worker !== worker) return;
        slot.worker = undefined;
        if (!ready) reject(new Error(`worker ${slot.index} exited while starting (${signal ?? `exit code ${code}`})`));
        // A worker that cannot start at all fails the start; one that dies later is restarted.
        if (this.stopping || (!ready && !this.started)) return;
        this.crashed(slot, code, signal);
      });
    });
  }

  private crashed(slot: Slot, code: number | null, signal: string | null): void {
    // Its users' contacts must learn now, not after cluster.max-inactivity-time of silence.
    if (slot.incarnation) this.relay.publish(`${this.o.subjectPrefix}.dead`, { node: `${this.nodeName}/${slot.index}`, inc: slot.incarnation });
    const ranFor = Date.now() - slot.startedAt;
    slot.crashes = ranFor > 60_000 ? 1 : slot.crashes + 1;
    const delay = Math.min((this.o.restartDelay ?? 500) * 2 ** (slot.crashes - 1), this.o.maxRestartDelay ?? 30_000);
    this.o.log.error({ worker: slot.index, code, signal, restartInMs: delay }, 'worker died; restarting it');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping) return;
      this.fork(slot).catch((e: unknown) => this.o.log.error({ err: e, worker: slot.index }, 'worker failed to restart'));
    }, delay);
  }

  private writeLog(index: number, line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.workerLog.info({ worker: index, line: line.trimEnd() }, 'worker output');
      return;
    }
    const { level, msg, time: _time, hostname: _host, pid: _pid, ...fields } = entry;
    const name = LEVEL_NAMES[Number(level)] ?? 'info';
    this.workerLog[name]({ ...fields, worker: index }, typeof msg === 'string' ? msg : '');
  }

  /** Asks every worker to reload its configuration (SIGHUP). */
  reload(): void {
    for (const s of this.slots) if (s.worker?.isConnected()) s.worker.send({ sb: 'reload' } satisfies PrimaryToWorkerControl);
  }

  /** Graceful stop: every worker stops as a single server would; resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const s of this.slots) {
      clearTimeout(s.restartTimer);
      const worker = s.worker;
      if (!worker || worker.isDead()) continue;
      exits.push(new Promise((resolve) => worker.once('exit', () => resolve())));
      if (worker.isConnected()) worker.send({ sb: 'stop' } satisfies PrimaryToWorkerControl);
      else worker.process.kill('SIGTERM');
    }
    await Promise.all(exits);
    // The workers' private sockets (workerSocketPath).
    rmSync(socketDirectory(process.pid), { recursive: true, force: true });
  }

  /** Ends every worker at once (a second stop signal). */
  kill(): void {
    this.stopping = true;
    for (const s of this.slots) {
      clearTimeout(s.restartTimer);
      if (s.worker && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
    }
  }
}

/** Node's own options less a script given inline (`-e`, `-p`), which would replace the worker program. */
function withoutEval(execArgv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (['-e', '--eval', '-p', '--print'].includes(arg)) { i++; continue; }
    if (/^--(eval|print)=/.test(arg)) continue;
    out.push(arg);
  }
  return out;
}
