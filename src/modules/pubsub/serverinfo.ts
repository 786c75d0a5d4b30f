// PubSub Server Information (XEP-0485; seed 001 section 11.9), opt-in (pubsub.serverinfo): the
// server announces urn:xmpp:serverinfo:0 with the node's address in an XEP-0128 form on each
// host's disco#info, and publishes what it serves as the item 'current' of the first-level leaf
// 'serverinfo' of each host's PubSub service (open access, one item, as the XEP recommends). The
// item is published again whenever its content changes (virtual hosts added, enabled, disabled or
// removed; a new version). There are no server-to-server connections, so no <federation/>.
// Switching the option off withdraws the node, since publishing was the administrator's opt-in.
import { VERSION } from '../../version.js';
import { xml, type Element } from '../../xml/element.js';
import type { NodeConfig } from './config.js';
import type { PubSubService } from './service.js';

export const NS_SERVERINFO = 'urn:xmpp:serverinfo:0';
export const SERVERINFO_NODE = 'serverinfo';
/** XEP-0485 section 9.2 reuses XEP-0157's FORM_TYPE for the node's address. */
export const FORM_SERVERINFO = 'http://jabber.org/network/serverinfo';
const ITEM_ID = 'current';

/** XEP-0485 section 4: each domain served here, and the software (XEP-0092's query, as the XEP's example has it). */
export function serverInfoPayload(domains: readonly string[]): Element {
  return xml('serverinfo', { xmlns: NS_SERVERINFO },
    [...domains].sort().map((name) => xml('domain', { name })),
    xml('query', { xmlns: 'jabber:iq:version' }, xml('name', null, 'Switchboard'), xml('version', null, VERSION)));
}

/** The XEP-0060 section 12.22 URI of the node, for the disco#info form. */
export function serverInfoUri(service: string): string {
  return `xmpp:${service}?;node=${SERVERINFO_NODE}`;
}

/** Adds the node's address to a host's disco#info forms, inside a form of the same FORM_TYPE if another module made one. */
export function addServerInfoField(forms: Element[], service: string): void {
  const field = xml('field', { var: 'serverinfo-pubsub-node', type: 'text-single' }, xml('value', null, serverInfoUri(service)));
  const existing = forms.find((f) => f.getChildren('field').some((x) => x.attrs.var === 'FORM_TYPE' && x.getChildText('value') === FORM_SERVERINFO));
  if (existing) existing.append(field);
  else forms.push(xml('x', { xmlns: 'jabber:x:data', type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, FORM_SERVERINFO)), field));
}

/** Creates the node if needed and publishes the current information when it differs from the stored item. */
export function publishServerInfo(service: PubSubService, domains: readonly string[]): Promise<void> {
  return service.exclusive(async () => {
    let node = service.tree.get(SERVERINFO_NODE);
    if (node?.creator !== undefined) {
      // The XEP warns that users may create such a node: it is theirs, and the server does not take it over.
      service.ctx.log.warn({ service: service.jid, creator: node?.creator }, 'pubsub.serverinfo: node serverinfo belongs to an account; server information is not published there');
      return;
    }
    if (!node) {
      const config: NodeConfig = {
        ...service.defaults(), title: 'Server information (XEP-0485)', accessModel: 'open', publishModel: 'publishers',
        maxItems: 1, persistItems: true, payloadType: NS_SERVERINFO, sendLastPublishedItem: 'on_sub',
      };
      // Another server sharing the database may have created it meanwhile.
      node = (await service.tree.create(SERVERINFO_NODE, config, undefined)) ?? service.tree.get(SERVERINFO_NODE);
      if (!node) return;
    }
    const payload = serverInfoPayload(domains);
    const last = await service.lastItem(node);
    if (last?.payload.length === 1 && last.payload[0]!.toString() === payload.toString()) return;
    await service.publishAsServer(node, ITEM_ID, payload);
    service.ctx.log.info({ service: service.jid, domains }, 'published server information (XEP-0485)');
  });
}

/** The option is off: the node the server made for it goes, and its subscribers are told. */
export function withdrawServerInfo(service: PubSubService): Promise<void> {
  return service.exclusive(async () => {
    const node = service.tree.get(SERVERINFO_NODE);
    if (!node || node.creator !== undefined || node.config.payloadType !== NS_SERVERINFO) return;
    const subscribers = service.notifier.directRecipients(node);
    await service.tree.delete(node);
    await service.notifier.nodeEvent(node, xml('delete', { node: SERVERINFO_NODE }), subscribers);
    service.ctx.log.info({ service: service.jid }, 'pubsub.serverinfo is off: withdrew the server information node');
  });
}
