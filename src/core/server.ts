// The composition root: wires configuration, storage, the core services, the modules and
// the listeners, and owns their start and stop.
import { pino, type Logger } from 'pino';
import type { Element } from '../xml/element.js';
import { openStorage } from '../storage/index.js';
import type { Storage } from '../storage/types.js';
import { withEphemeralAccounts, type EphemeralAccounts } from '../storage/ephemeral.js';
import { allModules } from '../modules/index.js';
import { Hooks } from './hooks.js';
import type { ServerEvents } from './events.js';
import { SessionManager } from './sessions.js';
import { Router } from './router.js';
import { IqRegistry } from './iq.js';
import { Admission } from './admission.js';
import { loadModules, unloadModules, type LoadedModule, type ModuleContext, type PreAuthIqHandler } from './modules.js';
import type { ModuleDefinition } from './module-definition.js';
import { StreamError } from './errors.js';
import { VhostRegistry, type VhostChange } from './vhosts.js';
import { loadCertificates, type CertificateStore } from '../transports/certificates.js';
import { listenC2S, type Listener } from '../transports/tcp.js';
import { HttpService } from '../http/server.js';
import { listenHttp } from '../http/listen.js';
import { Metrics } from './metrics.js';
import { reloadConfiguration, type ReloadHandler, type ReloadReport } from './reload.js';
import { CoreStatistics } from './statistics.js';
import { categoryLogger, ioLogger, type IoLog } from './log.js';
import { ClusterNode, type ClusterDeps } from '../cluster/node.js';
import { registerWatchdogMetrics, Watchdog, watchdogSettings } from './watchdog.js';

import type { Config } from '../config/load.js';
export type { Config };

export interface ServerOptions {
  configFile?: string;
  log?: Logger;
  /** Modules to load instead of all of them (tests). */
  modules?: ModuleDefinition[];
  /** Set in a worker process of `workers` (cluster/workers.ts): the server is one node among its sibling workers. */
  worker?: ClusterDeps['worker'];
}

export class Server {
  readonly hooks = new Hooks<ServerEvents>();
  readonly sessions = new SessionManager();
  readonly iq = new IqRegistry();
  readonly router: Router;
  readonly admission: Admission;
  readonly preAuthIq = new Map<string, PreAuthIqHandler>();
  readonly postAuthFeatures: Element[] = [];
  /** Routes served on every HTTP listener (BOSH, WebSocket, panel, module APIs). */
  readonly http: HttpService;
  /** Stanza handling under way, which a graceful stop lets finish before closing storage. */
  readonly inFlight = new Set<Promise<void>>();
  /** This server as a cluster node (cluster/node.ts); a cluster of one unless cluster-mode is on. */
  cluster!: ClusterNode;
  /** Counters and gauges of every component (core/metrics.ts): `GET /metrics`, statistics. */
  readonly metrics = new Metrics();
  /** The core's counters (stanzas, connections, authentications); modules register their own on `metrics`. */
  readonly stats = new CoreStatistics(this.metrics, { sessions: () => this.sessions.localCount(), inFlight: () => this.inFlight.size });
  /** The watchdog of each listener (seed 11.8); BOSH sessions end by their own inactivity rule (bosh.max-inactivity-time). */
  readonly watchdogs: Record<'c2s' | 'websocket', Watchdog>;
  private readonly preAuthFeatureFns: ((domain: string) => Element | undefined)[] = [];
  private readonly discoFeatures = new Set<string>(['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items']);
  private readonly discoIdentities: { category: string; type: string; name?: string }[] = [];
  private admins: ReadonlySet<string>;
  /** The configuration file the server was started from, read again by `reload()`. */
  configFile: string | undefined;
  /** Modules whose options can change at runtime (`ctx.onReload`). */
  private readonly reloadHandlers = new Map<string, { handler: ReloadHandler; fixed: readonly string[] }>();
  private reloading: Promise<unknown> = Promise.resolve();
  /** The `xmpp.io` debug category: transports log every byte through it; undefined when off. */
  readonly ioLog: IoLog | undefined;
  /** 'serving' once listening, 'stopping' from the start of a graceful stop (GET /health answers 503). */
  state: 'starting' | 'serving' | 'stopping' | 'stopped' = 'starting';
  readonly startedAt = new Date();
  private modules: LoadedModule[] = [];
  private listeners: Listener[] = [];

  private constructor(readonly config: Config, readonly storage: Storage, readonly certificates: CertificateStore, readonly log: Logger,
    /** Virtual hosts: those of the configuration file and those added at runtime. */
    readonly vhosts: VhostRegistry,
    /** Accounts whose data stays in memory (anonymous logins); `storage` is the overlay that does it. */
    readonly ephemeral: EphemeralAccounts) {
    this.admins = new Set(config.admins.map((a) => a.toLowerCase()));
    this.ioLog = ioLogger(log, config.log);
    this.router = new Router(vhosts, this.hooks, this.sessions, this.iq, categoryLogger(log, config.log, 'component', 'router'));
    vhosts.onChange((change) => this.vhostChanged(change));
    // Anonymous users cannot access the database (seed 001 section 11.13): their data lives in
    // memory from binding until their session has ended (after every other module's handling).
    this.hooks.on('session/bound', (s) => { if (s.anonymous) ephemeral.begin(s.jid.bare); }, 1000);
    this.hooks.on('session/closed', (s) => { if (s.anonymous && this.sessions.resources(s.jid.bare).length === 0) ephemeral.end(s.jid.bare); }, -1000);
    this.admission = new Admission(config.c2s['max-unauthenticated-per-ip']);
    const watchdogLog = categoryLogger(log, config.log, 'component', 'watchdog');
    this.watchdogs = {
      c2s: new Watchdog('c2s', watchdogSettings(config, 'c2s'), watchdogLog),
      websocket: new Watchdog('websocket', watchdogSettings(config, 'websocket'), watchdogLog),
    };
    registerWatchdogMetrics(this.metrics, Object.values(this.watchdogs));
    this.http = new HttpService(categoryLogger(log, config.log, 'component', 'http'), config.http['cors-origins']);
  }

  static async create(config: Config, options: ServerOptions = {}): Promise<Server> {
    const log = options.log ?? pino({ level: config.log.level });
    const { storage, ephemeral } = withEphemeralAccounts(await openStorage(config.storage, config['data-dir']));
    let cluster: ClusterNode | undefined;
    try {
      const certificates = await loadCertificates(config, log);
      const vhosts = await VhostRegistry.open(config, storage, categoryLogger(log, config.log, 'component', 'vhosts'));
      // A runtime host whose certificate cannot be loaded or made still starts, with the default certificate.
      for (const vhost of vhosts.list()) {
        if (!vhost.configured) await certificates.ensure(vhost.domain).catch((e: unknown) => log.error({ err: e, host: vhost.domain }, 'no certificate for a runtime virtual host; it uses the default one'));
      }
      const server = new Server(config, storage, certificates, log, vhosts, ephemeral);
      server.configFile = options.configFile;
      server.cluster = cluster = await ClusterNode.open({ config, sessions: server.sessions, hooks: server.hooks, router: server.router, log, track: (w) => server.track(w), vhosts, worker: options.worker });
      // Joined before the modules load, so that they start knowing the other nodes' sessions.
      await server.cluster.start();
      server.modules = await loadModules(options.modules ?? allModules, (def) => server.contextFor(def));
      return server;
    } catch (e) {
      await cluster?.close();
      await storage.close();
      throw e;
    }
  }

  /** Registers work a graceful stop must wait for. */
  track(work: Promise<unknown>): void {
    const p = work.then(() => undefined, (e) => { this.log.error({ err: e }, 'background work failed'); });
    this.inFlight.add(p);
    void p.then(() => this.inFlight.delete(p));
  }

  /** Names of the loaded modules, in load order. */
  get moduleNames(): string[] {
    return this.modules.map((m) => m.definition.name);
  }

  /** Reads the configuration file again and applies what can change at runtime (core/reload.ts); one reload at a time. */
  reload(): Promise<ReloadReport> {
    const run = this.reloading.then(() => reloadConfiguration({
      config: this.config,
      file: this.configFile,
      log: this.log,
      setAdmins: (admins) => { this.admins = new Set(admins.map((a) => a.toLowerCase())); },
      modules: this.reloadHandlers,
    }));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  get defaultHost(): string {
    return this.config['virtual-hosts'][0]!;
  }

  /** Listening addresses, once started. */
  get addresses(): { name: string; host: string; port: number }[] {
    return this.listeners.map((l) => l.address());
  }

  /** Domains served now. */
  get hosts(): ReadonlySet<string> {
    return new Set(this.vhosts.served());
  }

  isLocalHost(domain: string): boolean {
    return this.vhosts.has(domain);
  }

  vhostOption(domain: string, option: 'anonymous-login' | 'in-band-registration' | 'tls-required'): boolean {
    return this.vhosts.option(domain, option);
  }

  /** A host added at runtime gets a certificate; a host removed or disabled ends its sessions. */
  private async vhostChanged({ kind, vhost }: VhostChange): Promise<void> {
    if (kind !== 'removed' && vhost.enabled && !vhost.configured) await this.certificates.ensure(vhost.domain);
    if (kind === 'removed' || !vhost.enabled) {
      for (const s of [...this.sessions.local()]) {
        if (s.jid.domain === vhost.domain) s.close(new StreamError('host-gone', `${vhost.domain} is no longer served here`));
      }
    }
  }

  preAuthFeatures(domain: string): Element[] {
    const out: Element[] = [];
    for (const fn of this.preAuthFeatureFns) { const f = fn(domain); if (f) out.push(f); }
    return out;
  }

  async start(): Promise<void> {
    this.listeners = await listenC2S(this);
    this.listeners.push(...await listenHttp(this));
    for (const l of this.listeners) {
      const a = l.address();
      this.log.info({ listener: a.name, host: a.host, port: a.port }, 'listening');
    }
    for (const watchdog of Object.values(this.watchdogs)) watchdog.start();
    this.state = 'serving';
  }

  async stop(): Promise<void> {
    this.state = 'stopping';
    const drain = this.config.http['drain-time'];
    if (drain > 0) await new Promise((resolve) => setTimeout(resolve, drain * 1000));
    for (const watchdog of Object.values(this.watchdogs)) watchdog.stop();
    for (const l of this.listeners) l.stopAccepting();
    await Promise.all([...this.inFlight]);
    for (const s of [...this.sessions.local()]) s.close(new StreamError('system-shutdown'));
    await Promise.all(this.listeners.map((l) => l.close()));
    // Closing sessions broadcasts unavailable presence, which may still be writing.
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    await this.cluster.close();
    this.listeners = [];
    await unloadModules(this.modules);
    this.modules = [];
    await this.storage.close();
    this.state = 'stopped';
  }

  private contextFor(def: ModuleDefinition): ModuleContext<any> {
    for (const f of def.features ?? []) this.discoFeatures.add(f);
    return {
      config: def.config ? this.config[def.name] : {},
      core: this.config,
      log: categoryLogger(this.log, this.config.log, 'module', def.name),
      storage: this.storage,
      hooks: this.hooks,
      router: this.router,
      sessions: this.sessions,
      iq: (target, ns, handlers) => { this.iq.register(target, ns, handlers); },
      preAuth: (ns, handler, feature) => {
        this.preAuthIq.set(ns, handler);
        if (feature) this.preAuthFeatureFns.push(feature);
      },
      postAuthFeature: (f) => { this.postAuthFeatures.push(f); },
      http: this.http,
      metrics: this.metrics,
      identity: (category, type, name) => { this.discoIdentities.push({ category, type, name }); },
      feature: (variable) => { this.discoFeatures.add(variable); },
      features: () => [...this.discoFeatures].sort(),
      identities: () => this.discoIdentities,
      isAdmin: (bare) => this.admins.has(bare),
      onReload: (handler, fixed = []) => { this.reloadHandlers.set(def.name, { handler, fixed }); },
      reloadConfig: () => this.reload(),
      vhostOption: (domain, option) => this.vhostOption(domain, option),
      vhosts: this.vhosts,
      cluster: this.cluster,
      admission: this.admission,
      track: (work) => this.track(work),
    };
  }
}

/** Creates and starts a server; the CLI's `start` and the tests use this. */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<Server> {
  const server = await Server.create(config, options);
  try {
    await server.start();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
