// Asterisk Manager Interface relay (issue 9; seed 002, zmq-ami-broker): device and presence
// states between Asterisk servers over standard AMI (TCP 5038, no Asterisk module to compile)
// or res_zmq_manager's ZeroMQ sockets, joined with the XMPP side through two core events: states
// learned over AMI are published to the PubSub service as res_xmpp would (so the device-state
// view, the panel and XMPP-connected Asterisks see them), and states published over XMPP are
// written to the AMI servers. Off unless `ami.servers` names a server. In a cluster (or with
// `workers`) only the node serving the domain services relays, so that each Asterisk has one
// relay connected and the relay talks to the PubSub state that is current.
import { defineModule } from '../../core/module-definition.js';
import type { ModuleContext } from '../../core/modules.js';
import { amiConfigSchema, type AmiConfig } from './config.js';
import { DeviceRelay } from './device-relay.js';
import { AmiLink, tcpTransport, type TransportFactory } from './link.js';
import { PresenceRelay } from './presence-relay.js';
import { checkAmiLinks } from './probe.js';
import { LogThrottle } from './throttle.js';
import { zmqTransport } from './zmq.js';

/** How often a node checks whether it still serves the domain services (cluster, workers). */
const SERVING_CHECK_MS = 5000;

export default defineModule({
  name: 'ami',
  description: 'Asterisk Manager Interface relay: device and presence states between Asterisk servers, and with XMPP PubSub (README "Sharing device state over AMI")',
  config: amiConfigSchema,
  check: (config) => checkAmiLinks(config),
  async setup(ctx) {
    const metrics = linkMetrics(ctx);
    let stop = await startRelay(ctx, metrics);
    // A reload starts the relay anew with the new options: the links log in again and the state
    // is rebuilt from the servers' lists and PubSub, as after a restart.
    ctx.onReload(async () => {
      await stop?.();
      stop = await startRelay(ctx, metrics);
      ctx.log.info({ servers: ctx.config.servers.map((s) => s.name) }, 'AMI relay options reloaded');
    });
    return () => stop?.();
  },
});

type LinkMetrics = ReturnType<typeof linkMetrics>;

/** Starts the relay with the module's current options; resolves to its stopper, or undefined when off. */
async function startRelay(ctx: ModuleContext<AmiConfig>, metrics: LinkMetrics): Promise<(() => void) | undefined> {
  const config = ctx.config;
  metrics.up([]);
  if (config.servers.length === 0) return undefined;
  const host = (config['virtual-host'] ?? ctx.core['virtual-hosts'][0])?.toLowerCase();
  if (config.xmpp && host && !ctx.vhosts.served().includes(host)) {
    ctx.log.warn({ host }, `ami.virtual-host ${host} is not a served virtual host: AMI states will not reach XMPP`);
  }
  const factory: TransportFactory = (server, c, log, handlers) => (server.transport === 'zmq' ? zmqTransport : tcpTransport)(server, c, log, handlers);
  const links = config.servers.map((server) => new AmiLink(server, config, ctx.log.child({ ami: server.name }), factory,
    (what) => metrics[what].inc({ link: server.name })));
  metrics.up(links);

  const refusals = new LogThrottle();
  const refused = (link: AmiLink | undefined, what: string) => {
    if (link) metrics.failure.inc({ link: link.name });
    refusals.run((skipped) => ctx.log.warn({ ami: link?.name, ...(skipped > 0 ? { similarWarningsSkipped: skipped } : {}) }, `not relayed: ${what}`));
  };
  const devices = config['device-state'] ? new DeviceRelay(links, {
    reported: (device, state, target) => {
      if (!config.xmpp || !host) return;
      ctx.hooks.fire('device-state/reported', { host, device, state, eid: target.eid, source: `ami:${target.name}` })
        .catch((e: Error) => ctx.log.error({ err: e, device }, 'publishing an AMI device state failed'));
    },
    refused: (target, what) => refused(target as AmiLink | undefined, what),
  }) : undefined;
  const presence = config.presence ? new PresenceRelay(links, { refused: (target, what) => refused(target as AmiLink, what) }) : undefined;
  for (const link of links) {
    link.devices = devices;
    link.presence = presence;
  }
  const unhook = devices && config.xmpp ? ctx.hooks.on('device-state/published', ({ host: published, device, state, eid }) => {
    // Items under our servers' eids are the relay's own publishes coming back.
    if (published === host && !devices.ownsEid(eid)) devices.fromXmpp(eid, device, state);
  }) : undefined;

  let active = false;
  const activate = async () => {
    if (active) return;
    active = true;
    ctx.log.info({ servers: links.map((l) => l.name), host, deviceState: config['device-state'], presence: config.presence }, 'AMI relay starting');
    // What XMPP servers published before this start (stored items) is due to the AMI servers too.
    if (unhook && host) {
      // A failed replay (storage) must not keep the links down, nor reject into the serving check's timer.
      await ctx.hooks.fire('device-state/replay', { host })
        .catch((e: Error) => ctx.log.error({ err: e, host }, 'AMI relay: replaying the stored device states failed; XMPP states reach the AMI servers from their next change'));
    }
    if (active) for (const link of links) link.transport.start();
  };
  const deactivate = () => {
    if (!active) return;
    active = false;
    ctx.log.info('AMI relay stopped: another cluster node serves the domain services now');
    for (const link of links) {
      link.transport.stop();
      devices?.disconnected(link);
      presence?.disconnected(link);
    }
  };
  const follow = () => (ctx.cluster.serving() ? activate() : deactivate());
  if (ctx.cluster.serving()) await activate();
  else ctx.log.info('AMI relay idle: another cluster node serves the domain services and relays');
  // Gaining the service is announced; losing it (an older node came back) is found by looking.
  const unhookServing = ctx.hooks.on('services/reload', () => follow());
  const watch = setInterval(() => void follow(), SERVING_CHECK_MS);
  watch.unref();
  return () => {
    active = false;
    clearInterval(watch);
    unhookServing();
    unhook?.();
    for (const link of links) link.transport.stop();
  };
}

/** Per link: events in, actions out, reconnects, failures (GET /metrics), and whether it is up. */
function linkMetrics(ctx: ModuleContext<AmiConfig>) {
  const counter = (name: string, help: string) => ctx.metrics.counter({ name, help, labelNames: ['link'] as const });
  let links: AmiLink[] = [];
  ctx.metrics.gauge({
    name: 'ami_link_up', help: 'Whether the AMI link is logged in (1) or not (0)', labelNames: ['link'] as const,
    // Reset first: a link removed by a reload is no longer shown.
    collect(g) { g.reset(); for (const l of links) g.set({ link: l.name }, l.ready ? 1 : 0); },
  });
  return {
    event: counter('ami_events_in_total', 'AMI events received, per link'),
    action: counter('ami_actions_out_total', 'AMI actions sent (Login, SetVar, lists, Ping), per link'),
    reconnect: counter('ami_reconnects_total', 'Reconnection attempts, per link'),
    failure: counter('ami_failures_total', 'Failures (refused or lost connections, timeouts, refused logins, garbage, unrelayable states), per link'),
    up(all: AmiLink[]) { links = all; },
  };
}
