// PubSub (XEP-0060) with collection nodes (XEP-0248): one service per virtual host, at
// pubsub.<host> by default, persistent in storage. It is the device-state hub of Asterisk
// clusters: asterisk.ts holds what Asterisk needs beyond the XEPs, on by default and
// configurable per service (README "PubSub and Asterisk").
import { z } from 'zod';
import { defineModule } from '../../core/module-definition.js';
import { normaliseDomain } from '../../jid.js';
import type { ModuleContext } from '../../core/modules.js';
import type { ClientSession } from '../../core/session.js';
import { AsteriskRules, type AsteriskOptions } from './asterisk.js';
import { ACCESS_MODELS, PUBLISH_MODELS } from './config.js';
import { DeviceStateView, serveDeviceStates } from './device-states.js';
import { addNodeListRoute } from './api.js';
import { EntityCaps } from './caps.js';
import { PEP_FEATURES, PepServices, hookPep } from './pep.js';
import { PubSubProtocol, serviceFeatures } from './protocol.js';
import { NS_SERVERINFO, addServerInfoField, publishServerInfo, withdrawServerInfo } from './serverinfo.js';
import { NODE_CREATION_POLICIES, NS_PUBSUB, PubSubService } from './service.js';
import { Subscriptions } from './subscriptions.js';
import { DeviceStateAnnouncer, publishReportedStates, replayStoredStates } from './relayed-states.js';

/** The asterisk options without defaults: per-service overrides leave out what they keep. */
const asteriskFields = {
  enabled: z.boolean().describe('Apply the Asterisk rules below at all; off makes a plain XEP-0060 service'),
  'device-state-node': z.string().min(1).describe('Node (flat mode) or collection (collection_nodes=yes) Asterisk distributes device states through'),
  'mwi-node': z.string().min(1).describe('Node or collection Asterisk distributes mailbox (MWI) counts through'),
  autocreate: z.boolean()
    .describe('Create those two when a subscribe or publish first names them, and the leaves Asterisk publishes to without creating them'),
  'validate-payloads': z.boolean()
    .describe('Refuse <state> and <mailbox> items that would crash a subscribed Asterisk (bad-request), under those two nodes'),
  'access-model': z.enum(ACCESS_MODELS).describe('Access model of the nodes created for Asterisk'),
  'publish-model': z.enum(PUBLISH_MODELS).describe('Publish model of the nodes created for Asterisk (open: every account may publish)'),
};

const asteriskSchema = z.object({
  enabled: asteriskFields.enabled.default(true),
  'device-state-node': asteriskFields['device-state-node'].default('device_state'),
  'mwi-node': asteriskFields['mwi-node'].default('message_waiting'),
  autocreate: asteriskFields.autocreate.default(true),
  'validate-payloads': asteriskFields['validate-payloads'].default(true),
  'access-model': asteriskFields['access-model'].default('open'),
  'publish-model': asteriskFields['publish-model'].default('open'),
}).strict() satisfies z.ZodType<AsteriskOptions>;

const configSchema = z.object({
  address: z.string().min(1).default('pubsub.{host}')
    .refine((address) => address.includes('{host}'), 'must contain {host}: each virtual host has a service of its own')
    .describe('Address of the PubSub service of each virtual host; {host} stands for the host'),
  'max-item-size': z.number().int().min(256).default(65536).describe('Largest item payload accepted, in bytes (payload-too-big beyond)'),
  'max-items': z.number().int().min(1).default(10000)
    .describe('Most items a node keeps (the default and the ceiling of pubsub#max_items); Asterisk keeps one item per device in its flat node'),
  'max-nodes-per-user': z.number().int().min(0).default(10000)
    .describe('Most nodes one account may create (max-nodes-exceeded beyond); an Asterisk creates one per device'),
  'auto-create': z.boolean().default(false).describe('Publishing to a missing node creates it (XEP-0060 auto-create), for everyone'),
  'node-creation': z.enum(NODE_CREATION_POLICIES).default('registered')
    .describe('Who may create nodes on the PubSub service: everyone, registered (not anonymous users, whose nodes would outlive them), admins; the others get forbidden. The nodes made for Asterisk and PEP are not concerned'),
  serverinfo: z.boolean().default(false)
    .describe("Publish server information (XEP-0485): announce urn:xmpp:serverinfo:0 and keep the domains served and the software in node 'serverinfo' of each host's PubSub service (opt-in; off withdraws the node)"),
  pep: z.boolean().default(true).describe("PEP (XEP-0163): each account's bare JID is a PubSub service of its own, with +notify filtering by entity caps"),
  'device-state-api': z.boolean().default(true)
    .describe('Keep the cluster-wide view of Asterisk device states and mailboxes, served to administrators as GET /api/device-states and /api/mailboxes on the HTTP port'),
  asterisk: asteriskSchema.prefault({}).describe('COMPAT: what Asterisk res_xmpp needs beyond the XEPs (README "PubSub and Asterisk")'),
  services: z.record(z.string(), z.object({
    asterisk: z.object(asteriskFields).partial().strict().prefault({}).describe('The asterisk options that differ for this service'),
  }).strict().describe('Settings of one PubSub service')).prefault({})
    .describe('Per-service settings, keyed by service address (e.g. pubsub.example.com), overriding the asterisk options above'),
}).strict();

type PubSubOptions = z.infer<typeof configSchema>;

export default defineModule({
  name: 'pubsub',
  description: 'Publish-subscribe (XEP-0060) with collection nodes (XEP-0248), the device-state hub of Asterisk clusters',
  specs: ['XEP-0060', 'XEP-0248', 'XEP-0163', 'XEP-0115', 'XEP-0485'],
  config: configSchema,
  async setup(ctx) {
    const view = ctx.config['device-state-api'] ? new DeviceStateView() : undefined;
    /** By virtual host. */
    const running = new Map<string, RunningService>();
    const start = async (host: string) => {
      if (!running.has(host)) running.set(host, await startService(ctx, ctx.config, host, normaliseDomain(ctx.config.address.replaceAll('{host}', host)), view));
    };
    const stop = (host: string) => {
      running.get(host)?.unroute();
      running.delete(host);
    };
    for (const host of ctx.vhosts.served()) await start(host);
    /** XEP-0485: every service publishes the domains served (or withdraws the node when the option is off). */
    const refreshServerInfo = async () => {
      for (const { service } of [...running.values()]) {
        await (ctx.config.serverinfo ? publishServerInfo(service, ctx.vhosts.served()) : withdrawServerInfo(service));
      }
    };
    await refreshServerInfo();
    const addresses = new Set([...running.values()].map((r) => r.service.jid));
    for (const address of Object.keys(ctx.config.services)) {
      if (!addresses.has(address.toLowerCase())) ctx.log.warn({ address }, 'pubsub.services names no PubSub service of a served virtual host');
    }
    // Hosts added, enabled, disabled or removed at runtime (VHost Manager) gain or lose their service; data stays stored.
    const unwatch = ctx.vhosts.onChange(async ({ kind, vhost }) => {
      if (kind !== 'removed' && vhost.enabled) await start(vhost.domain);
      else stop(vhost.domain);
      await refreshServerInfo();
    });
    if (ctx.config.serverinfo) {
      ctx.feature(NS_SERVERINFO);
      ctx.hooks.on('disco/host-info', ({ to, forms }) => {
        const served = running.get(to.domain);
        if (served) addServerInfoField(forms, served.service.jid);
      });
    }
    // Another cluster node served PubSub until now: its state is in storage, not in our memory.
    ctx.hooks.on('services/reload', async () => {
      for (const host of [...running.keys()]) {
        stop(host);
        await start(host);
      }
      await refreshServerInfo();
    });
    if (view) serveDeviceStates(ctx, view);
    addNodeListRoute(ctx, () => [...running.values()].map((r) => r.service));
    hookPresence(ctx, () => [...running.values()]);
    // States from outside XMPP (the AMI relay) are published here; XMPP-published ones announced.
    const unhookReports = publishReportedStates(ctx, (host) => running.get(host)?.service);
    const unhookReplay = replayStoredStates(ctx, (host) => running.get(host)?.service);
    const unhookPep = ctx.config.pep ? startPep(ctx, ctx.config) : undefined;
    return () => {
      unhookReports();
      unhookReplay();
      unhookPep?.();
      unwatch();
      for (const host of [...running.keys()]) stop(host);
    };
  },
});

interface RunningService {
  service: PubSubService;
  subscriptions: Subscriptions;
  /** Stops routing the service's domain to it. */
  unroute: () => void;
}

async function startService(ctx: ModuleContext, options: PubSubOptions, host: string, jid: string, view: DeviceStateView | undefined): Promise<RunningService> {
  const overrides = Object.entries(options.services).find(([address]) => address.toLowerCase() === jid)?.[1].asterisk;
  const asterisk = new AsteriskRules({ ...options.asterisk, ...overrides });
  const service = new PubSubService(jid, ctx, {
    maxItemSize: options['max-item-size'],
    maxItems: options['max-items'],
    maxNodesPerUser: options['max-nodes-per-user'],
    autoCreate: options['auto-create'],
    nodeCreation: options['node-creation'],
  }, asterisk, new DeviceStateAnnouncer(ctx, host, view));
  const subscriptions = new Subscriptions(service);
  await service.tree.load();
  await subscriptions.dropPresenceSubscriptions((jid) => {
    const slash = jid.indexOf('/');
    return slash < 0 ? ctx.sessions.available(jid).length > 0 : ctx.sessions.get(jid.slice(0, slash), jid.slice(slash + 1))?.presence !== undefined;
  });
  await view?.rebuild(service);
  const protocol = new PubSubProtocol(service, subscriptions);
  const unroute = ctx.router.addService(jid, (r) => protocol.handle(r));
  ctx.log.info({ service: jid, nodes: [...service.tree.all()].length }, 'PubSub service ready');
  return { service, subscriptions, unroute };
}

/** PEP on every account, with the limits of the pubsub.<host> services; the host advertises the PubSub features. */
function startPep(ctx: ModuleContext, options: PubSubOptions): () => void {
  const peps = new PepServices(ctx, {
    maxItemSize: options['max-item-size'],
    maxItems: options['max-items'],
    maxNodesPerUser: options['max-nodes-per-user'],
    autoCreate: true,
    nodeCreation: 'everyone',
  }, new EntityCaps(ctx));
  for (const f of [...serviceFeatures(), ...PEP_FEATURES]) ctx.feature(`${NS_PUBSUB}#${f}`);
  return hookPep(ctx, peps);
}

/**
 * Subscriptions with pubsub#expire=presence end when the subscriber goes unavailable: by
 * unavailable presence, or by its session ending in any way (Asterisk stops with a bare TCP
 * close). A subscriber's initial presence brings the last items of nodes that send them
 * on_sub_and_presence. The service events fire where the services run (in a cluster, the
 * serving node hears of every node's sessions), so this service's memory is the one updated.
 */
function hookPresence(ctx: ModuleContext, services: () => RunningService[]): void {
  ctx.hooks.on('service/session-unavailable', async ({ jid, accountStillAvailable }) => {
    await Promise.all(services().map(({ service, subscriptions }) => service.exclusive(() => subscriptions.presenceEnded(jid, accountStillAvailable))));
  });
  ctx.hooks.on('service/session-available', async (session) => {
    await Promise.all(services().map(({ service, subscriptions }) => service.exclusive(() => subscriptions.presenceAvailable(session))));
  });
  ctx.hooks.on('service/account-deleted', async ({ domain, username }) => {
    await Promise.all(services().map(({ service, subscriptions }) => service.exclusive(() => subscriptions.accountDeleted(`${username}@${domain}`))));
  });
}
