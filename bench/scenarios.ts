import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchClient, type Account } from './xmpp-client.js';

export interface BenchOptions {
  host: string;
  port: number;
  /** The nodes of a cluster, when there are several: the accounts take them in turn. */
  targets?: { host: string; port: number }[];
  domain: string;
  users: number;
  password: string;
  userPrefix: string;
  concurrency: number;
  durationSeconds: number;
  inFlightPerPair: number;
  loginTimeoutMs: number;
  pid?: number;
}

export interface Latency {
  p50Ms: number;
  p99Ms: number;
}

export interface LoginResult {
  sessions: number;
  seconds: number;
  loginsPerSecond: number;
  latency: Latency;
}

export interface MessagingResult {
  pairs: number;
  inFlightPerPair: number;
  seconds: number;
  messages: number;
  messagesPerSecond: number;
  latency: Latency;
}

export interface MemoryResult {
  sessions: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  kibPerSession: number;
}

/** What one run prints with --json; bench/table.ts reads it back. */
export interface Results {
  target: string;
  domain: string;
  users: number;
  login?: LoginResult;
  messaging?: MessagingResult;
  memory?: MemoryResult;
}

interface Sessions {
  clients: BenchClient[];
  latencies: number[];
  /** Throws if a session has dropped since its login: it would skew the figures. */
  assertAlive(): void;
  close(): Promise<void>;
}

/** Logs in accounts <prefix>1..count, at most `concurrency` at a time; a login that fails ends them all. */
async function loginMany(options: BenchOptions, count: number): Promise<Sessions> {
  const clients: BenchClient[] = [];
  const latencies: number[] = [];
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < count && failure === undefined) {
      const n = ++next;
      // Several targets (the nodes of a cluster): the accounts take them in turn.
      const target = options.targets?.length ? options.targets[(n - 1) % options.targets.length]! : options;
      const account: Account = { ...options, host: target.host, port: target.port, username: `${options.userPrefix}${n}` };
      const started = performance.now();
      try {
        const client = await BenchClient.login(account, options.loginTimeoutMs);
        latencies.push(performance.now() - started);
        client.onFailure = (error) => (failure ??= error);
        clients.push(client);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  const sessions: Sessions = {
    clients,
    latencies,
    assertAlive() {
      if (failure !== undefined) throw failure;
    },
    close: () => Promise.all(clients.map((client) => client.close())).then(() => undefined),
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, count) }, worker));
  if (failure !== undefined) await sessions.close();
  sessions.assertAlive();
  return sessions;
}

/** Nearest-rank percentiles, in milliseconds rounded to 0.01. */
function latencyOf(samples: number[]): Latency {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => Math.round(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]! * 100) / 100;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

export async function loginScenario(options: BenchOptions): Promise<LoginResult> {
  const started = performance.now();
  const sessions = await loginMany(options, options.users);
  const seconds = (performance.now() - started) / 1000;
  await sessions.close();
  return {
    sessions: options.users,
    seconds: Math.round(seconds * 1000) / 1000,
    loginsPerSecond: Math.round(options.users / seconds),
    latency: latencyOf(sessions.latencies),
  };
}

/**
 * Pairs of clients bounce chat messages: the first of each pair sends `inFlightPerPair`
 * messages, and every client answers each message it receives with a new one to its peer
 * until the duration is over. A body carries its send time, so a delivery gives a latency.
 */
export async function messagingScenario(options: BenchOptions): Promise<MessagingResult> {
  const pairs = Math.floor(options.users / 2);
  if (pairs < 1) throw new Error('messaging needs --users 2 or more');
  const sessions = await loginMany(options, pairs * 2);
  const clients = sessions.clients;
  const latencies: number[] = [];
  let inFlight = 0;
  // Bodies are "<run tag><send time>": a message left over from an aborted run, delivered
  // from offline storage at login, is not taken for one of ours.
  const runTag = `${process.pid}.${Date.now()}/`;
  const sendTo = (from: BenchClient, to: BenchClient) => {
    from.send(`<message to='${to.jid}' type='chat'><body>${runTag}${performance.now()}</body></message>`);
    inFlight++;
  };
  const deadline = performance.now() + options.durationSeconds * 1000;
  try {
    for (let i = 0; i < clients.length; i += 2) {
      const [a, b] = [clients[i]!, clients[i + 1]!];
      for (const [self, peer] of [[a, b], [b, a]] as const) {
        self.receiveMessagesWith((body) => {
          if (!body?.startsWith(runTag)) return;
          const now = performance.now();
          inFlight--;
          if (now > deadline) return;
          latencies.push(now - Number(body.slice(runTag.length)));
          sendTo(self, peer);
        });
      }
      for (let k = 0; k < options.inFlightPerPair; k++) sendTo(a, b);
    }
    while (performance.now() < deadline) {
      await sleep(Math.min(100, deadline - performance.now()));
      sessions.assertAlive();
    }
    // Let the last messages arrive, so none is left for a later login to receive offline.
    for (let waited = 0; inFlight > 0 && waited < 5000; waited += 50) await sleep(50);
    sessions.assertAlive();
  } finally {
    await sessions.close();
  }
  return {
    pairs,
    inFlightPerPair: options.inFlightPerPair,
    seconds: options.durationSeconds,
    messages: latencies.length,
    messagesPerSecond: Math.round(latencies.length / options.durationSeconds),
    latency: latencyOf(latencies),
  };
}

/** Resident memory of the server, from /proc/PID/status. */
function rssKiB(pid: number): number {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    throw new Error(`cannot read /proc/${pid}/status: is --pid ${pid} the server's process?`);
  }
  const kiB = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kiB) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kiB);
}

/**
 * Server RSS growth per idle authenticated session with initial presence. A warm-up round
 * of logins first, so one-time costs (code loaded or compiled on first use, caches, pools)
 * are not counted per session.
 */
export async function memoryScenario(options: BenchOptions): Promise<MemoryResult> {
  const pid = options.pid;
  if (pid === undefined) throw new Error('the memory scenario needs --pid PID of the server process');
  rssKiB(pid); // a wrong --pid fails now rather than after the warm-up
  const warmUp = await loginMany(options, Math.min(10, options.users));
  await warmUp.close();
  await sleep(1000);
  const rssBeforeKiB = rssKiB(pid);
  const sessions = await loginMany(options, options.users);
  try {
    await sleep(2000); // let the server finish post-login work (roster, offline, PEP) before measuring
    sessions.assertAlive();
    const rssAfterKiB = rssKiB(pid);
    return {
      sessions: options.users,
      rssBeforeKiB,
      rssAfterKiB,
      kibPerSession: Math.round(((rssAfterKiB - rssBeforeKiB) / options.users) * 10) / 10,
    };
  } finally {
    await sessions.close();
  }
}
