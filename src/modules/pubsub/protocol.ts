// The wire side of a PubSub service: stanzas addressed to its domain become operations of
// service.ts and subscriptions.ts, their outcomes become replies (XEP-0060 sections 5-8, XEP-0030
// disco of the service and its nodes). Each request runs inside the service's exclusive section,
// and its reply is written before any follow-up (the last published items a subscribe is owed).
import type { Routed } from '../../core/events.js';
import { StanzaError, errorReply } from '../../core/errors.js';
import { resultFor } from '../../core/router.js';
import { Element, xml } from '../../xml/element.js';
import type { JID } from '../../jid.js';
import type { ClientSession } from '../../core/session.js';
import { bareOf } from './access.js';
import { FORM_META_DATA, FORM_SUBSCRIBE_OPTIONS, subscriptionOptionsFields } from './config.js';
import { pubsubError, unsupported } from './errors.js';
import { NS_DATA, formElement, parseBoolean, readSubmittedForm, type SubmittedForm } from './forms.js';
import type { Subscription } from './nodes.js';
import { itemElement } from './notify.js';
import { NS_PUBSUB, type PubSubService } from './service.js';
import { FORM_SUBSCRIBE_AUTHORIZATION, type Subscriptions } from './subscriptions.js';

export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** XEP-0060 section 10 features this service implements. */
const FEATURES = [
  'access-authorize', 'access-open', 'access-presence', 'access-roster', 'access-whitelist', 'collections', 'config-node',
  'create-and-configure', 'create-nodes', 'delete-items', 'delete-nodes', 'instant-nodes', 'item-ids', 'last-published',
  'manage-subscriptions', 'member-affiliation', 'meta-data', 'modify-affiliations', 'multi-collection', 'outcast-affiliation',
  'persistent-items', 'publish', 'publish-options', 'publish-only-affiliation', 'publisher-affiliation', 'purge-nodes',
  'retract-items', 'retrieve-affiliations', 'retrieve-default', 'retrieve-items', 'retrieve-subscriptions', 'subscribe',
  'subscription-notifications', 'subscription-options',
];

/** The features of a service, as disco#info lists them after `${NS_PUBSUB}#`. */
export function serviceFeatures(): readonly string[] {
  return FEATURES;
}

interface Outcome {
  result?: Element;
  /** Work that follows the reply. */
  after?: () => Promise<void>;
}

export class PubSubProtocol {
  constructor(private readonly service: PubSubService, private readonly subscriptions: Subscriptions) {}

  async handle(r: Routed): Promise<void> {
    const { stanza } = r;
    if (stanza.name === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) return this.iq(r);
    if (stanza.name === 'message' && stanza.attrs.type !== 'error') return this.message(r);
    // Presence to the service, and replies (result, error) to anything it sent: nothing to do.
  }

  private async iq(r: Routed): Promise<void> {
    const { stanza, from, origin } = r;
    const [payload, ...extra] = stanza.elements();
    // RFC 6120 8.2.3: one child. COMPAT: Asterisk's retried publish also carries the old <error>.
    if (!payload || (extra.length > 0 && !this.service.asterisk.acceptsTrailing(extra))) {
      this.reply(r, errorReply(stanza, new StanzaError('bad-request', 'an IQ get or set must have exactly one child element')));
      return;
    }
    const retried = extra.length > 0;
    await this.service.exclusive(async () => {
      let outcome: Outcome;
      try {
        outcome = await this.dispatch(stanza.attrs.type as 'get' | 'set', payload, from, origin);
      } catch (e) {
        this.reply(r, this.errorFor(stanza, e, retried && payload.getChild('publish') !== undefined));
        return;
      }
      this.reply(r, resultFor(stanza, outcome.result));
      try {
        await outcome.after?.();
      } catch (e) {
        this.service.ctx.log.error({ err: e, service: this.service.jid }, 'follow-up of a PubSub request failed');
      }
    });
  }

  private errorFor(stanza: Element, e: unknown, retriedPublish: boolean): Element {
    if (!(e instanceof StanzaError)) {
      this.service.ctx.log.error({ err: e, stanza: stanza.toString() }, 'PubSub request failed');
      return errorReply(stanza, new StanzaError('internal-server-error'));
    }
    // COMPAT: Asterisk answers a 404 on publish by creating the node and publishing again. If the
    // retry fails the same way (its create failed too), echoing the payload would start the next
    // round, forever; without the echo Asterisk drops the error silently.
    if (retriedPublish && e.condition === 'item-not-found') return errorReply(new Element('iq', stanza.attrs), e);
    return errorReply(stanza, e);
  }

  private reply(r: Routed, reply: Element): void {
    if (r.origin) r.origin.send(reply);
    else void this.service.ctx.router.route(reply);
  }

  private dispatch(type: 'get' | 'set', payload: Element, from: JID, origin: ClientSession | undefined): Promise<Outcome> | Outcome {
    switch (payload.attrs.xmlns) {
      case NS_PUBSUB: return type === 'set' ? this.entitySet(payload, from, origin) : this.entityGet(payload, from);
      case NS_PUBSUB_OWNER: return type === 'set' ? this.ownerSet(payload, from) : this.ownerGet(payload, from);
      case NS_DISCO_INFO: if (type === 'get') return this.discoInfo(payload.attrs.node); break;
      case NS_DISCO_ITEMS: if (type === 'get') return this.discoItems(payload.attrs.node, from); break;
    }
    throw new StanzaError('service-unavailable');
  }

  private async entitySet(pubsub: Element, from: JID, origin: ClientSession | undefined): Promise<Outcome> {
    const action = firstAction(pubsub);
    const node = action.attrs.node;
    switch (action.name) {
      case 'create': {
        const name = await this.service.create(from, node, formIn(pubsub.getChild('configure')));
        return { result: node === undefined ? xml('pubsub', { xmlns: NS_PUBSUB }, xml('create', { node: name })) : undefined };
      }
      case 'publish': {
        const items = action.getChildren('item');
        if (items.length > 1) throw pubsubError('bad-request', 'invalid-payload', 'one item per publish');
        const id = await this.service.publish(from, required(node), items[0], formIn(pubsub.getChild('publish-options')));
        return { result: id === undefined ? undefined : xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node }, xml('item', { id }))) };
      }
      case 'retract': {
        // Section 7.2 (schema): one or more <item/> per retract.
        const ids = action.getChildren('item').map((i) => i.attrs.id);
        await this.service.retract(from, required(node), ids, parseBoolean(action.attrs.notify) === true);
        return {};
      }
      case 'subscribe': {
        const form = formIn(pubsub.getChild('options'));
        const subscription = await this.subscriptions.subscribe(from, required(node), action.attrs.jid, form);
        const options = form && xml('options', { node, jid: subscription.jid, subid: subscription.subid },
          formElement('result', FORM_SUBSCRIBE_OPTIONS, subscriptionOptionsFields(subscription.options, this.service.tree.get(subscription.node)!.isCollection)));
        // The requesting resource itself takes the last items when it subscribed its own account.
        const session = origin && bareOf(subscription.jid) === from.bare && !subscription.jid.includes('/') ? origin : undefined;
        return {
          result: xml('pubsub', { xmlns: NS_PUBSUB }, subscriptionElement(subscription, true), options),
          after: () => this.subscriptions.sendLastItems(subscription, session),
        };
      }
      case 'unsubscribe':
        await this.subscriptions.unsubscribe(from, required(node), action.attrs.jid, action.attrs.subid);
        return {};
      case 'options': {
        const form = formIn(action);
        if (!form) throw pubsubError('bad-request', 'invalid-options', 'an options form is required');
        await this.subscriptions.setOptions(from, required(node), action.attrs.jid, action.attrs.subid, form);
        return {};
      }
    }
    throw unsupported(action.name);
  }

  private async entityGet(pubsub: Element, from: JID): Promise<Outcome> {
    const action = firstAction(pubsub);
    const node = action.attrs.node;
    const wrap = (...children: Element[]) => ({ result: xml('pubsub', { xmlns: NS_PUBSUB }, children) });
    switch (action.name) {
      case 'items': {
        const ids = action.getChildren('item').map((i) => i.attrs.id).filter((id): id is string => id !== undefined);
        const max = action.attrs.max_items === undefined ? undefined : Number(action.attrs.max_items);
        if (max !== undefined && !(Number.isInteger(max) && max >= 0)) throw pubsubError('bad-request', undefined, 'max_items is a count');
        const items = await this.service.items(from, required(node), { ids: ids.length ? ids : undefined, max });
        return wrap(xml('items', { node }, items.map((i) => itemElement(i, true))));
      }
      case 'subscriptions':
        return wrap(xml('subscriptions', { node }, this.subscriptions.of(from, node).map((s) => subscriptionElement(s, node === undefined))));
      case 'affiliations':
        return wrap(xml('affiliations', { node }, this.subscriptions.affiliationsOf(from, node).map((a) => xml('affiliation', a))));
      case 'options':
        return wrap(xml('options', { node, jid: action.attrs.jid, subid: action.attrs.subid },
          this.subscriptions.optionsForm(from, required(node), action.attrs.jid, action.attrs.subid)));
      case 'default':
        return wrap(xml('default', null, this.subscriptions.defaultOptionsForm()));
    }
    throw unsupported(action.name);
  }

  private async ownerSet(pubsub: Element, from: JID): Promise<Outcome> {
    const action = firstAction(pubsub);
    const node = required(action.attrs.node);
    switch (action.name) {
      case 'configure': {
        const form = formIn(action);
        if (!form) throw pubsubError('bad-request', undefined, 'a configuration form is required');
        await this.service.configure(from, node, form);
        return {};
      }
      case 'delete':
        await this.service.delete(from, node, action.getChild('redirect')?.attrs.uri);
        return {};
      case 'purge':
        await this.service.purge(from, node);
        return {};
      case 'subscriptions':
        await this.subscriptions.manage(from, node, action.getChildren('subscription').map((s) => ({ jid: s.attrs.jid, state: s.attrs.subscription, subid: s.attrs.subid })));
        return {};
      case 'affiliations':
        await this.subscriptions.setAffiliations(from, node, action.getChildren('affiliation').map((a) => ({ jid: a.attrs.jid, affiliation: a.attrs.affiliation })));
        return {};
    }
    throw unsupported(action.name);
  }

  private ownerGet(pubsub: Element, from: JID): Outcome {
    const action = firstAction(pubsub);
    const wrap = (child: Element) => ({ result: xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, child) });
    switch (action.name) {
      case 'configure':
        return wrap(xml('configure', { node: action.attrs.node }, this.service.configurationForm(from, required(action.attrs.node))));
      case 'default': {
        const type = action.getChild('x', NS_DATA)?.getChildren('field').find((f) => f.attrs.var === 'pubsub#node_type')?.getChildText('value');
        return wrap(xml('default', null, this.service.defaultConfigurationForm(type === 'collection' ? 'collection' : 'leaf')));
      }
      case 'subscriptions': {
        const node = required(action.attrs.node);
        return wrap(xml('subscriptions', { node }, this.subscriptions.ofNode(from, node).map((s) => subscriptionElement(s, false))));
      }
      case 'affiliations': {
        const node = required(action.attrs.node);
        return wrap(xml('affiliations', { node }, this.subscriptions.affiliations(from, node).map(([jid, affiliation]) => xml('affiliation', { jid, affiliation }))));
      }
    }
    throw unsupported(action.name);
  }

  /** XEP-0060 section 5.1 (the service) and 5.3/5.4 (a node, with its meta-data form). */
  private discoInfo(name: string | undefined): Outcome {
    if (name === undefined) {
      const features = [...FEATURES, ...(this.service.limits.autoCreate ? ['auto-create'] : [])];
      return {
        result: xml('query', { xmlns: NS_DISCO_INFO },
          xml('identity', { category: 'pubsub', type: 'service', name: 'Switchboard PubSub' }),
          [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PUBSUB].map((f) => xml('feature', { var: f })),
          features.map((f) => xml('feature', { var: `${NS_PUBSUB}#${f}` }))),
      };
    }
    const node = this.service.node(name);
    const c = node.config;
    const meta = formElement('result', FORM_META_DATA, [
      { var: 'pubsub#title', values: c.title ? [c.title] : [] },
      { var: 'pubsub#description', values: c.description ? [c.description] : [] },
      { var: 'pubsub#type', values: c.payloadType ? [c.payloadType] : [] },
      { var: 'pubsub#access_model', values: [c.accessModel] },
      { var: 'pubsub#publish_model', values: [c.publishModel] },
      { var: 'pubsub#owner', type: 'jid-multi', values: node.owners() },
      { var: 'pubsub#creator', type: 'jid-single', values: node.creator ? [node.creator] : [] },
      { var: 'pubsub#creation_date', values: [node.createdAt.toISOString()] },
      { var: 'pubsub#num_subscribers', values: [String(new Set([...node.subscriptions.values()].map((s) => s.jid)).size)] },
    ]);
    return {
      result: xml('query', { xmlns: NS_DISCO_INFO, node: name },
        xml('identity', { category: 'pubsub', type: node.isCollection ? 'collection' : 'leaf', name: c.title || undefined }),
        xml('feature', { var: NS_PUBSUB }), meta),
    };
  }

  /** Section 5.2 (the node hierarchy: top nodes, then each collection's children) and 5.5 (a leaf's items). */
  private async discoItems(name: string | undefined, from: JID): Promise<Outcome> {
    const query = (children: Element[]) => ({ result: xml('query', { xmlns: NS_DISCO_ITEMS, node: name }, children) });
    const nodeItem = (n: { name: string; config: { title: string } }) => xml('item', { jid: this.service.jid, node: n.name, name: n.config.title || undefined });
    if (name === undefined) return query(this.service.tree.roots().map(nodeItem));
    const node = this.service.node(name);
    if (node.isCollection) return query([...node.children].map((c) => nodeItem(this.service.tree.get(c)!)));
    const items = await this.service.items(from, name, {});
    return query(items.map((i) => xml('item', { jid: this.service.jid, name: i.id })));
  }

  /** Section 8.6: an owner's answer to a subscription approval request. */
  private async message(r: Routed): Promise<void> {
    const x = r.stanza.getChild('x', NS_DATA);
    if (!x) return;
    let form: SubmittedForm;
    try {
      form = readSubmittedForm(x);
    } catch {
      return; // a form of another kind, or a cancelled one: not an answer
    }
    if (!form.formTypes.includes(FORM_SUBSCRIBE_AUTHORIZATION)) return;
    await this.service.exclusive(async () => {
      try {
        await this.subscriptions.answerAuthorization(r.from, form);
      } catch (e) {
        if (!(e instanceof StanzaError)) throw e;
        this.service.ctx.router.bounce(r.stanza, e, r.origin);
      }
    });
  }
}

/** The first child of <pubsub> names the action; publish-options, configure and options follow it. */
function firstAction(pubsub: Element): Element {
  const action = pubsub.firstElement();
  if (!action) throw pubsubError('bad-request', undefined, 'the <pubsub> element names no action');
  return action;
}

function required(node: string | undefined): string {
  if (node === undefined || node === '') throw pubsubError('bad-request', 'nodeid-required', 'a node attribute is required');
  return node;
}

/** The submitted data form inside a <configure>, <options> or <publish-options>, if any. */
function formIn(container: Element | undefined): SubmittedForm | undefined {
  const x = container?.getChild('x', NS_DATA);
  return x ? readSubmittedForm(x) : undefined;
}

function subscriptionElement(s: Subscription, withNode: boolean): Element {
  return xml('subscription', { node: withNode ? s.node : undefined, jid: s.jid, subid: s.subid, subscription: s.state });
}
