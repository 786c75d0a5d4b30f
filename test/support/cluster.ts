// A cluster of three nodes on loopback for the cluster tests, sharing one fresh PostgreSQL schema
// and one nats-server (started and stopped by PID): node1 and node2 in this process, node3 a child
// process that a test can kill (SIGKILL, a crash) and start again. Short heartbeats, so that a
// death is noticed within seconds.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, startTestServer, type TestServer } from './server.js';
import type { ServerProcessSpec } from './server-process.js';
import { RawClient } from './raw-client.js';
import { backends, type Backend } from './postgres.js';
import { NatsServer } from './nats.js';
import type { Element } from '../../src/xml/element.js';
import { waitUntil } from './wait.js';

export { waitUntil };

export const presenceFrom = (jid: string, type?: string) => (s: Element) =>
  s.name === 'presence' && s.attrs.from === jid && s.attrs.type === type;

export class ClusterFixture {
  nats!: NatsServer;
  storage!: Record<string, unknown>;
  node1!: TestServer;
  node2!: TestServer;
  node3: ChildProcess | undefined;
  node3Ports!: { port: number; tlsPort: number };
  readonly node3Data = mkdtempSync(join(tmpdir(), 'switchboard-node3-'));
  private readonly postgres: Backend;
  private readonly clients: RawClient[] = [];

  /**
   * `options.modules`: more configuration for every node (e.g. a module's block);
   * `options.node3: false`: node1 and node2 only, for tests that need no third node.
   */
  constructor(readonly users: string[], private readonly options: { modules?: Record<string, unknown>; node3?: boolean } = {}) {
    this.postgres = backends().find((b) => b.name === 'postgres')!;
  }

  /** The options of every node: the same database, NATS and settings, its own name. */
  overrides(name: string): Record<string, unknown> {
    return {
      storage: this.storage,
      admins: ['admin@localhost'],
      'vhost-options': { localhost: { 'anonymous-login': true } },
      bans: { 'auth-failures': 3, 'ban-time': 600 },
      'cluster-mode': true,
      cluster: { 'nats-url': this.nats.url, 'node-name': name, 'heartbeat-interval': 0.3, 'max-inactivity-time': 2.5, 'request-timeout': 3 },
      ...this.options.modules,
    };
  }

  async start(): Promise<void> {
    this.nats = await NatsServer.start();
    this.storage = await this.postgres.storage();
    const [port, tlsPort] = await freePorts(2);
    this.node3Ports = { port: port!, tlsPort: tlsPort! };
    this.node1 = await startTestServer(this.overrides('node1'));
    this.node2 = await startTestServer(this.overrides('node2'));
    for (const u of this.users) await this.node1.addUser(`${u}@localhost`);
    const nodes = this.options.node3 === false ? 2 : 3;
    if (nodes === 3) await this.startNode3();
    await waitUntil(() => this.node2.server.cluster.nodes().filter((n) => n.state === 'connected').length === nodes, `node2 sees ${nodes} nodes`);
  }

  async startNode3(): Promise<void> {
    const spec: ServerProcessSpec = { overrides: this.overrides('node3'), dataDir: this.node3Data, ...this.node3Ports, users: [] };
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'server-process.ts'), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`node3 exited (${code}) before it was ready`)));
    });
    this.node3 = child;
    await waitUntil(() => this.node1.server.cluster.nodes().some((n) => n.name === 'node3' && n.state === 'connected'), 'node1 sees node3');
  }

  /** A crash: SIGKILL, no goodbye. */
  killNode3(): void {
    this.node3?.kill('SIGKILL');
    this.node3 = undefined;
  }

  /**
   * A raw client logged in as `user` on a node, roster requested, with initial presence (unless
   * `presence` is false); by default waits until node1 and node2 know it is available.
   */
  async login(node: { port: number }, user: string, resource: string, presence: string | false = '<presence/>', waitForNodes = true): Promise<RawClient> {
    const c = await RawClient.connect(node.port);
    this.clients.push(c);
    await c.login(user, 'secret', 'localhost', resource);
    c.send(`<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>`);
    await c.waitForName('iq', { id: 'roster' });
    if (presence) {
      c.send(presence);
      if (!waitForNodes) return c;
      // Other nodes learn of it a moment later (the directory); stanzas routed before then see the user unavailable.
      await waitUntil(() => [this.node1, this.node2].every((t) => t.server.sessions.get(`${user}@localhost`, resource)?.presence !== undefined),
        `every node knows ${user}/${resource} is available`);
    }
    return c;
  }

  /** Mutual presence subscription between two logged-in users, each answering on its own node. */
  async befriend(a: RawClient, aJid: string, b: RawClient, bJid: string): Promise<void> {
    for (const [asker, askerJid, approver, approverJid] of [[a, aJid, b, bJid], [b, bJid, a, aJid]] as const) {
      asker.send(`<presence to='${approverJid}' type='subscribe'/>`);
      await approver.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe' && s.attrs.from === askerJid, 10_000, 'a subscription request');
      approver.send(`<presence to='${askerJid}' type='subscribed'/>`);
      await asker.waitFor((s) => s.name === 'iq' && s.getChild('query')?.getChild('item')?.attrs.jid === approverJid
        && ['to', 'both'].includes(s.getChild('query')!.getChild('item')!.attrs.subscription!), 10_000, 'the roster push of the approval');
    }
  }

  /** Stops everything this fixture started and drops its database schema. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.killNode3();
    await this.node1?.stop(true);
    await this.node2?.stop(true);
    await this.nats?.stop();
    await this.postgres.cleanup();
    rmSync(this.node3Data, { recursive: true, force: true });
  }
}
