// The JSON management API's routing table (served under /api/v1/ by modules/http-api/ when
// that module is configured). Modules contribute their own resources here without importing the
// API module, as they add ad-hoc commands to the command registry: the PubSub module adds its
// node list, device states and mailboxes. One registry per server, keyed by the server's hooks.
//
// Locating a user ("which resources, from which address, since when") goes through `locate`.
// It reads the session manager, which in cluster mode also holds the other nodes' sessions (from
// the cluster's session directory, cluster/directory.ts): the answer is cluster-wide, each
// resource naming its node. Another source (an OpenSIPS location table, say) can replace or
// extend it with `wrapLocator`.
import type { IncomingMessage } from 'node:http';
import type { ModuleContext } from '../core/modules.js';

export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a token allows: `read` the GET routes only, `admin` everything. */
export type ApiScope = 'read' | 'admin';

/** Who calls: the administrator a token acts for. */
export interface ApiCaller {
  tokenId: string;
  /** Bare JID of the administrator who created the token; every change is made in its name. */
  admin: string;
  scope: ApiScope;
}

export interface ApiRequest {
  method: ApiMethod;
  /** Path parameters, decoded (`/users/{jid}` gives `params.jid`). */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (undefined when there was none). */
  body: unknown;
  caller: ApiCaller;
  raw: IncomingMessage;
}

/** A reply: status 200 and a JSON body unless said otherwise; 204 has no body. */
export interface ApiReply {
  status?: number;
  body?: unknown;
}

export interface ApiRoute {
  method: ApiMethod;
  /** Relative to the API prefix, with `{name}` for a path parameter: `/users/{jid}`. */
  path: string;
  /** `admin` for routes that change something; GET routes are usually `read`. */
  scope: ApiScope;
  summary: string;
  handle(request: ApiRequest): ApiReply | Promise<ApiReply>;
}

/** An error the API answers as `{error, message}` with its HTTP status. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, message: string) {
    super(message);
  }
}

/** One bound resource of a user, as `GET /users/{jid}/locate` shows it. */
export interface Location {
  /** Full JID. */
  jid: string;
  resource: string;
  /** The client's IP address as this server sees it. */
  address: string;
  /** When the resource was bound (ISO 8601), when known. */
  since?: string;
  secure: boolean;
  /** Sent available presence (and its priority). */
  available: boolean;
  priority: number;
  /** The server node the resource is connected to. */
  node: string;
}

export type Locator = (bare: string) => Promise<Location[]>;

export class ApiRegistry {
  private readonly table: ApiRoute[] = [];
  private locator: Locator;

  constructor(ctx: Pick<ModuleContext, 'sessions' | 'cluster'>) {
    this.locator = async (bare) => ctx.sessions.resources(bare).map((s) => {
      const since = ctx.cluster.boundSince(s);
      return {
        jid: s.jid.full,
        resource: s.jid.resource,
        address: s.remoteAddress,
        since: since === undefined ? undefined : new Date(since).toISOString(),
        secure: s.secure,
        available: s.presence !== undefined,
        priority: s.priority,
        node: s.node ?? ctx.cluster.nodeName,
      };
    });
  }

  /** Adds a route; returns a remover. Adding the same method and path twice is a programming error. */
  add(route: ApiRoute): () => void {
    if (this.table.some((r) => r.method === route.method && r.path === route.path)) throw new Error(`API route ${route.method} ${route.path} is already registered`);
    if (!route.path.startsWith('/')) throw new Error(`API route ${route.path} must start with /`);
    this.table.push(route);
    return () => { const i = this.table.indexOf(route); if (i >= 0) this.table.splice(i, 1); };
  }

  /** Every route served, for the OpenAPI check and for documentation. */
  routes(): readonly ApiRoute[] {
    return [...this.table];
  }

  /**
   * The route for a method and path, with its parameters; `allowed` lists the methods of a path
   * that exists with other methods (405), and undefined means no route has this path.
   */
  match(method: string, path: string): { route: ApiRoute; params: Record<string, string> } | { allowed: ApiMethod[] } | undefined {
    const allowed: ApiMethod[] = [];
    for (const route of this.table) {
      const params = matchPath(route.path, path);
      if (!params) continue;
      if (route.method === method) return { route, params };
      allowed.push(route.method);
    }
    return allowed.length ? { allowed } : undefined;
  }

  /** Where a user is connected: on every node of the cluster (or this one alone). */
  locate(bare: string): Promise<Location[]> {
    return this.locator(bare);
  }

  /** Replaces the locator; `wrap` gets the current one (e.g. to add other nodes' answers to this node's). Returns an undo. */
  wrapLocator(wrap: (current: Locator) => Locator): () => void {
    const previous = this.locator;
    this.locator = wrap(previous);
    return () => { this.locator = previous; };
  }
}

/** Matches `/users/{jid}/locate` against a request path; undefined when it does not match. */
function matchPath(template: string, path: string): Record<string, string> | undefined {
  const want = template.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (w.startsWith('{') && w.endsWith('}')) {
      if (g === '') return undefined;
      try {
        params[w.slice(1, -1)] = decodeURIComponent(g);
      } catch {
        throw new ApiError(400, 'bad-request', `the path segment "${g}" is not valid percent-encoding`);
      }
    } else if (w !== g) {
      return undefined;
    }
  }
  return params;
}

const registries = new WeakMap<object, ApiRegistry>();

/** The server's API registry (one per server: keyed by its hooks object). */
export function apiRegistry(ctx: Pick<ModuleContext, 'hooks' | 'sessions' | 'cluster'>): ApiRegistry {
  let r = registries.get(ctx.hooks);
  if (!r) registries.set(ctx.hooks, (r = new ApiRegistry(ctx)));
  return r;
}
