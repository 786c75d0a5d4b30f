// A throwaway nats-server (Debian's package) on a free loopback port, started and stopped by
// PID, for the cluster tests; restartable on the same port to test reconnection.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePorts } from './server.js';

/** Why the cluster tests cannot run here, or undefined when they can. In CI a missing piece is a failure. */
export function clusterTestsUnavailable(): string | undefined {
  const missing: string[] = [];
  if (!process.env.SWITCHBOARD_TEST_PG_URL) missing.push('SWITCHBOARD_TEST_PG_URL (a PostgreSQL database)');
  if (spawnSync('nats-server', ['--version']).status !== 0) missing.push('nats-server (apt-get install nats-server)');
  if (missing.length === 0) return undefined;
  const reason = `cluster tests need ${missing.join(' and ')}`;
  if (process.env.CI) throw new Error(`${reason}: .ci/run provides both`);
  return reason;
}

export class NatsServer {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number, private readonly extraArgs: string[] = []) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** `extraArgs` go to nats-server as they are (e.g. --user and --pass). */
  static async start(extraArgs: string[] = []): Promise<NatsServer> {
    const [port] = await freePorts(1);
    const server = new NatsServer(port!, extraArgs);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('nats-server already running');
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), ...this.extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let log = '';
    child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${this.port}: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server (SIGTERM to our PID) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
