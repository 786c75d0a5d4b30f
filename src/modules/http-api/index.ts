// The HTTP management API (seed 004, "MI over HTTP"): JSON under /api/v1/ on the HTTP port, for
// scripts and monitoring, with API tokens created by administrators. Every endpoint is in
// docs/openapi.yaml; test/http-api-openapi.test.ts checks that file against the routes served.
//
// Other modules add their resources to the same registry (the PubSub module: nodes, device states,
// mailboxes); a cluster makes `locate` cluster-wide with `apiRegistry(ctx).wrapLocator`.
import { z } from 'zod';
import { defineModule } from '../../core/module-definition.js';
import { apiRegistry } from '../../http/api-registry.js';
import { commandRegistry } from '../adhoc/commands.js';
import { API_PREFIX, apiHandler } from './serve.js';
import { coreRoutes } from './resources.js';
import { tokenCommands } from './token-commands.js';
import { MAX_TOKEN_DAYS, TokenStore } from './tokens.js';

export default defineModule({
  name: 'http-api',
  description: 'HTTP management API (JSON under /api/v1/ on the HTTP port, API tokens created by administrators; docs/openapi.yaml)',
  config: z.object({
    enabled: z.boolean().default(false)
      .describe('Serve the management API at /api/v1/ on the HTTP listeners (requires a restart to change)'),
    'max-body-size': z.number().int().min(1024).default(65536)
      .describe('Largest JSON request body, in bytes (413 beyond)'),
    'token-lifetime': z.number().int().min(1).max(MAX_TOKEN_DAYS).default(90)
      .describe('Days an API token is valid when its creator does not choose (ad-hoc command; the CLI has --days)'),
  }).strict(),
  setup(ctx) {
    const registry = apiRegistry(ctx);
    if (!ctx.config.enabled) return;
    const tokens = new TokenStore(ctx.storage);
    const removers = coreRoutes(ctx, registry).map((r) => registry.add(r));
    const commands = commandRegistry(ctx);
    removers.push(...tokenCommands({ tokens, isAdmin: (bare) => ctx.isAdmin(bare), lifetime: () => ctx.config['token-lifetime'] }).map((c) => commands.add(c)));
    ctx.http.route(`${API_PREFIX}/`, apiHandler({
      registry,
      tokens,
      log: ctx.log,
      isAdmin: (bare) => ctx.isAdmin(bare),
      maxBodySize: () => ctx.config['max-body-size'],
      cors: (req, res, methods) => ctx.http.cors(req, res, methods),
    }), { operations: () => registry.routes().map((r) => ({ method: r.method, path: API_PREFIX + r.path })) });
    // Options are read where used, so a reload only has to have updated them.
    ctx.onReload(() => {}, ['enabled']);
    ctx.log.info({ prefix: `${API_PREFIX}/`, routes: registry.routes().length }, 'HTTP management API ready');
    return () => { for (const r of removers) r(); };
  },
});
