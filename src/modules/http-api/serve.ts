// The HTTP side of the management API: bearer-token authentication, scopes, JSON bodies and
// the `{error, message}` replies, in front of the routes of the API registry.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { readBody, sendJson } from '../../http/server.js';
import { ApiError, type ApiCaller, type ApiMethod, type ApiRegistry } from '../../http/api-registry.js';
import { StanzaError, type StanzaErrorCondition } from '../../core/errors.js';
import { ConfigError } from '../../config/load.js';
import type { TokenStore } from './tokens.js';

/** Where the API answers. */
export const API_PREFIX = '/api/v1';

const METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export interface ServeOptions {
  registry: ApiRegistry;
  tokens: TokenStore;
  log: Logger;
  isAdmin(bare: string): boolean;
  maxBodySize(): number;
  cors(req: IncomingMessage, res: ServerResponse, methods?: string): boolean;
}

/** HTTP status of the stanza errors the ad-hoc commands throw, which the API runs. */
const STATUS_OF_CONDITION: Partial<Record<StanzaErrorCondition, number>> = {
  'bad-request': 422,
  'jid-malformed': 422,
  'not-acceptable': 422,
  forbidden: 403,
  'not-authorized': 403,
  'item-not-found': 404,
  conflict: 409,
  'not-allowed': 409,
  'feature-not-implemented': 501,
  'service-unavailable': 503,
};

const ERROR_NAMES: Record<number, string> = {
  400: 'bad-request', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 405: 'method-not-allowed', 409: 'conflict',
  413: 'payload-too-large', 415: 'unsupported-media-type', 422: 'unprocessable-entity', 500: 'internal-error', 501: 'not-implemented', 503: 'unavailable',
};

function errorBody(e: ApiError): { error: string; message: string } {
  return { error: e.error, message: e.message };
}

/** The request handler for everything under API_PREFIX. */
export function apiHandler(options: ServeOptions) {
  const { registry, tokens, log } = options;

  const authenticate = async (req: IncomingMessage): Promise<ApiCaller> => {
    const header = req.headers.authorization;
    if (!header) throw new ApiError(401, 'unauthorized', 'an API token is required: Authorization: Bearer <token>');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer <token>"');
    const result = await tokens.verify(m[1]!);
    if (!result.ok) {
      log.warn({ address: req.socket.remoteAddress, reason: result.reason }, 'API request refused: invalid token');
      throw new ApiError(401, 'invalid-token', result.reason === 'expired' ? 'the API token has expired' : 'the API token is not valid');
    }
    const { id, admin, scope } = result.record;
    // A token acts for the administrator who created it, as long as it is one.
    if (!options.isAdmin(admin)) throw new ApiError(403, 'forbidden', `the token's creator ${admin} is no longer a server administrator`);
    return { tokenId: id, admin, scope };
  };

  const readJson = async (req: IncomingMessage): Promise<unknown> => {
    const length = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (!chunked && (length === undefined || length === '0')) return undefined;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      throw new ApiError(415, 'unsupported-media-type', `the request body must be application/json${type ? `, not ${type}` : ''}`);
    }
    const body = await readBody(req, options.maxBodySize());
    if (body === undefined) throw new ApiError(413, 'payload-too-large', `the request body is larger than ${options.maxBodySize()} bytes`);
    if (body.length === 0) return undefined;
    try {
      return JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new ApiError(400, 'malformed-json', `the request body is not valid JSON: ${(e as Error).message}`);
    }
  };

  const toApiError = (e: unknown): ApiError => {
    if (e instanceof ApiError) return e;
    if (e instanceof StanzaError) {
      const status = STATUS_OF_CONDITION[e.condition] ?? 500;
      return new ApiError(status, ERROR_NAMES[status] ?? 'error', e.text ?? e.condition);
    }
    if (e instanceof ConfigError) return new ApiError(422, 'invalid-configuration', e.message);
    log.error({ err: e }, 'API request failed');
    return new ApiError(500, 'internal-error', 'the request failed on the server; see its log');
  };

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (options.cors(req, res, 'GET, POST, PUT, PATCH, DELETE, OPTIONS')) return;
    try {
      const caller = await authenticate(req);
      const path = url.pathname.slice(API_PREFIX.length) || '/';
      const method = req.method ?? 'GET';
      const found = registry.match(METHODS.includes(method) ? method : '', path);
      if (!found) throw new ApiError(404, 'no-such-endpoint', `there is no API endpoint ${url.pathname}`);
      if ('allowed' in found) {
        res.setHeader('Allow', found.allowed.join(', '));
        throw new ApiError(405, 'method-not-allowed', `${url.pathname} accepts ${found.allowed.join(', ')}, not ${method}`);
      }
      const { route, params } = found;
      if (route.scope === 'admin' && caller.scope !== 'admin') {
        throw new ApiError(403, 'insufficient-scope', `${route.method} ${route.path} needs a token of scope admin; this one is ${caller.scope}`);
      }
      const body = method === 'GET' || method === 'DELETE' ? undefined : await readJson(req);
      const reply = await route.handle({ method: method as ApiMethod, params, query: url.searchParams, body, caller, raw: req });
      const status = reply.status ?? 200;
      // Changes are logged with the token that made them (its secret never is).
      if (method !== 'GET') log.info({ token: caller.tokenId, admin: caller.admin, method, path: url.pathname, status }, 'API change');
      if (status === 204) {
        res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
        return;
      }
      sendJson(res, status, reply.body ?? {});
    } catch (e) {
      const error = toApiError(e);
      if (error.status === 401) res.setHeader('WWW-Authenticate', `Bearer realm="Switchboard"${error.error === 'invalid-token' ? ', error="invalid_token"' : ''}`);
      if (!res.headersSent) sendJson(res, error.status, errorBody(error));
    }
  };
}
