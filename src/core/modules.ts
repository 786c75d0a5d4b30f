// The module host: gives each module a context of named services and runs its lifecycle.
// Modules never import each other or the server singleton; they get what they need here.
import type { Logger } from 'pino';
import type { Element } from '../xml/element.js';
import type { Storage } from '../storage/types.js';
import type { CoreConfig } from '../config/schema.js';
import type { Hooks } from './hooks.js';
import type { ServerEvents } from './events.js';
import type { Router } from './router.js';
import type { SessionManager } from './sessions.js';
import type { IqHandlers } from './iq.js';
import type { Disposer, ModuleDefinition } from './module-definition.js';
import type { HttpRoutes } from '../http/server.js';
import type { VhostRegistry } from './vhosts.js';
import type { Cluster } from '../cluster/node.js';
import type { Admission } from './admission.js';
import type { Metrics } from './metrics.js';
import type { ReloadHandler, ReloadReport } from './reload.js';

/** An IQ received before authentication (in-band registration). */
export type PreAuthIqHandler = (req: { iq: Element; payload: Element; domain: string; secure: boolean }) => Element | void | Promise<Element | void>;

export interface ModuleContext<C = unknown> {
  /** This module's options. */
  config: C;
  /** The core options (virtual hosts, admins, ...). */
  core: CoreConfig;
  log: Logger;
  storage: Storage;
  hooks: Hooks<ServerEvents>;
  router: Router;
  sessions: SessionManager;
  /** Registers IQ handlers addressed to a virtual host ('host') or to an account's bare JID ('account'). */
  iq(target: 'host' | 'account', ns: string, handlers: IqHandlers): void;
  /** Registers a pre-authentication IQ handler and the stream feature announcing it, per domain. */
  preAuth(ns: string, handler: PreAuthIqHandler, feature?: (domain: string) => Element | undefined): void;
  /** Adds a stream feature offered after authentication (e.g. roster versioning). */
  postAuthFeature(feature: Element): void;
  /** HTTP routes served on every HTTP listener (see http/server.ts). */
  http: HttpRoutes;
  /** Registers counters and gauges (`ctx.metrics.counter({ name, help, labelNames })`), exported at `GET /metrics`. */
  metrics: Metrics;
  /** Adds a disco#info identity of the virtual hosts. */
  identity(category: string, type: string, name?: string): void;
  /** Advertises a disco#info feature of the virtual hosts that depends on this module's options. */
  feature(variable: string): void;
  /** Features advertised in disco#info of the virtual hosts (all modules' declared features). */
  features(): string[];
  identities(): { category: string; type: string; name?: string }[];
  /** Whether a bare JID is a configured administrator. */
  isAdmin(bare: string): boolean;
  /**
   * Declares this module's options changeable at runtime: on a configuration reload `ctx.config`
   * is updated in place and `handler` runs; changes to the `fixed` options wait for a restart.
   */
  onReload(handler: ReloadHandler, fixed?: readonly string[]): void;
  /** Reads the configuration file again and applies what can change at runtime (core/reload.ts). */
  reloadConfig(): Promise<ReloadReport>;
  vhostOption(domain: string, option: 'anonymous-login' | 'in-band-registration' | 'tls-required'): boolean;
  /** The virtual hosts, configured and added at runtime, with their settings; changes persist and take effect at once. */
  vhosts: VhostRegistry;
  /** The cluster: cluster-wide requests, the nodes; works the same on a single node. */
  cluster: Cluster;
  /** Who may connect: the per-address cap on unauthenticated connections, and address bans. */
  admission: Admission;
  /** Registers background work a graceful stop waits for before the node leaves the cluster (e.g. a session's end). */
  track(work: Promise<unknown>): void;
}

export interface LoadedModule {
  definition: ModuleDefinition;
  dispose?: Disposer;
}

export async function loadModules(definitions: ModuleDefinition[], contextFor: (def: ModuleDefinition) => ModuleContext<any>): Promise<LoadedModule[]> {
  const loaded: LoadedModule[] = [];
  for (const definition of definitions) {
    const dispose = await definition.setup(contextFor(definition));
    loaded.push({ definition, dispose: dispose || undefined });
  }
  return loaded;
}

export async function unloadModules(loaded: LoadedModule[]): Promise<void> {
  for (const m of loaded.slice().reverse()) await m.dispose?.();
}
