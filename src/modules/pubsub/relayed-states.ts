// Device states between the PubSub service and relays outside XMPP (the AMI relay), through two
// core events, so neither module knows the other:
// - every Asterisk <state> item published on a host's service fires 'device-state/published',
//   and so does every stored one when a relay asks ('device-state/replay', at its start);
// - 'device-state/reported' is published on the host's service exactly as Asterisk res_xmpp
//   publishes a state (flat mode: item = device in the device-state node; collection mode: a
//   leaf named after the device inside that collection), so XMPP-connected Asterisks, the
//   device-state view and the panel see it like any other server's.
import type { ModuleContext } from '../../core/modules.js';
import { parseJid } from '../../jid.js';
import { isDeviceState } from '../../telephony/device-state.js';
import { xml } from '../../xml/element.js';
import { NS_ASTERISK } from './asterisk.js';
import type { Item, PubSubNode } from './nodes.js';
import type { ItemObserver, PubSubService } from './service.js';

/** Passes item changes on to `inner` (the device-state view) and announces device states. */
export class DeviceStateAnnouncer implements ItemObserver {
  constructor(private readonly ctx: ModuleContext, private readonly host: string, private readonly inner?: ItemObserver) {}

  published(service: PubSubService, node: PubSubNode, item: Item): void {
    this.inner?.published(service, node, item);
    announce(this.ctx, this.host, service, node, item);
  }

  retracted(service: PubSubService, node: PubSubNode, id: string): void {
    this.inner?.retracted(service, node, id);
  }

  cleared(service: PubSubService, node: PubSubNode): void {
    this.inner?.cleared(service, node);
  }
}

/** Fires 'device-state/published' if the item is an Asterisk device state under the device-state node. */
function announce(ctx: ModuleContext, host: string, service: PubSubService, node: PubSubNode, item: Item): void {
  if (!isDeviceStateNode(service, node)) return;
  const payload = item.payload[0];
  if (!payload || payload.name !== 'state' || payload.attrs.xmlns !== NS_ASTERISK || !payload.attrs.eid) return;
  const state = payload.text().trim();
  if (!isDeviceState(state)) return;
  ctx.hooks.fire('device-state/published', { host, device: item.id, state, eid: payload.attrs.eid, publisher: item.publisher })
    .catch((e: Error) => ctx.log.error({ err: e, device: item.id }, 'a device-state/published handler failed'));
}

/** The device-state node (flat mode) or a leaf below it (collection mode), while the Asterisk rules apply. */
function isDeviceStateNode(service: PubSubService, node: PubSubNode): boolean {
  const deviceNode = service.asterisk.eventNodes.deviceState;
  const ancestors = service.tree.ancestors(node).map((a) => a.node.name);
  return (node.name === deviceNode || ancestors.includes(deviceNode)) && service.asterisk.carriesAsteriskEvents(node.name, ancestors);
}

/** Answers 'device-state/replay': every stored device state of the host's service, oldest first. */
export function replayStoredStates(ctx: ModuleContext, serviceOf: (host: string) => PubSubService | undefined): () => void {
  return ctx.hooks.on('device-state/replay', async ({ host }) => {
    const service = serviceOf(host);
    if (!service) return;
    await service.exclusive(async () => {
      for (const node of service.tree.all()) {
        if (node.isCollection || !isDeviceStateNode(service, node)) continue;
        for (const item of (await service.storedItems(node)).reverse()) announce(ctx, host, service, node, item);
      }
    });
  });
}

/** Publishes reported states on the service of their host, as the server itself (publisher: the host). */
export function publishReportedStates(ctx: ModuleContext, serviceOf: (host: string) => PubSubService | undefined): () => void {
  return ctx.hooks.on('device-state/reported', async ({ host, device, state, eid, source }) => {
    const service = serviceOf(host);
    if (!service) {
      ctx.log.warn({ host, source }, 'a device state was reported for a host without a PubSub service; not published');
      return;
    }
    await service.exclusive(async () => {
      const collection = service.asterisk.eventNodes.deviceState;
      const target = service.tree.get(collection)?.isCollection ? device : collection;
      const item = xml('item', { id: device }, xml('state', { xmlns: NS_ASTERISK, eid, cachable: '1' }, state));
      try {
        await service.publish(parseJid(host), target, item, undefined);
      } catch (e) {
        ctx.log.warn({ host, device, source, node: target, err: (e as Error).message }, `cannot publish the state of ${device} reported by ${source}`);
      }
    });
  });
}
