// The PubSub module's resources in the HTTP management API (http/api-registry.ts): the nodes of
// the services running here, and the device-state view's devices and mailboxes (the same bodies
// as GET /api/device-states and /api/mailboxes, served from one function each).
import type { ModuleContext } from '../../core/modules.js';
import { ApiError, apiRegistry } from '../../http/api-registry.js';
import type { PubSubService } from './service.js';

/** Adds GET /pubsub/nodes; returns a remover. */
export function addNodeListRoute(ctx: ModuleContext, services: () => PubSubService[]): () => void {
  return apiRegistry(ctx).add({
    method: 'GET',
    path: '/pubsub/nodes',
    scope: 'read',
    summary: 'The nodes of the PubSub services (one per virtual host), optionally of one service',
    handle(request) {
      const wanted = request.query.get('service')?.toLowerCase();
      const chosen = services().filter((s) => wanted === undefined || s.jid === wanted);
      if (wanted !== undefined && chosen.length === 0) throw new ApiError(404, 'not-found', `there is no PubSub service ${wanted}`);
      const nodes = chosen.flatMap((service) => [...service.tree.all()].map((node) => ({
        service: service.jid,
        node: node.name,
        type: node.config.nodeType,
        title: node.config.title,
        collections: node.config.collection,
        children: [...node.children].sort(),
        creator: node.creator ?? null,
        createdAt: node.createdAt.toISOString(),
        subscriptions: node.subscriptions.size,
        accessModel: node.config.accessModel,
      }))).sort((a, b) => a.service.localeCompare(b.service) || a.node.localeCompare(b.node));
      return { body: { nodes } };
    },
  });
}

/** Adds GET /device-states and /mailboxes with the given bodies; returns a remover. */
export function addDeviceStateRoutes(ctx: ModuleContext, bodies: { deviceStates: () => Promise<unknown>; mailboxes: () => Promise<unknown> }): () => void {
  const registry = apiRegistry(ctx);
  const removers = [
    registry.add({ method: 'GET', path: '/device-states', scope: 'read', summary: 'Asterisk device states: per device, what each server reported and the aggregate', handle: async () => ({ body: await bodies.deviceStates() }) }),
    registry.add({ method: 'GET', path: '/mailboxes', scope: 'read', summary: 'Asterisk mailboxes: per mailbox, the new and old message counts', handle: async () => ({ body: await bodies.mailboxes() }) }),
  ];
  return () => { for (const r of removers) r(); };
}
