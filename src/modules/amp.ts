// Advanced Message Processing (XEP-0079), the processor that carries offline messages (XEP-0160,
// offline.ts) as Tigase's does (seed 001 section 11.1). Its options are the seed's
// `'sess-man' { amp () { ... } }` block one to one: 'store-limit', 'user-store-limit-enable',
// 'quota-exceeded', 'msg-store-offline-paths', and `msgoffline (active: false) {}` written as
// `msgoffline: { active: false }`, which switches offline storage off and keeps AMP. Tigase also
// reads the first two from its separate `amp { }` component block; here both are this one section.
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import type { Routed } from '../core/events.js';
import type { ClientSession } from '../core/session.js';
import { StanzaError } from '../core/errors.js';
import { resultFor } from '../core/router.js';
import { Element, xml } from '../xml/element.js';
import { MATCHER_SYNTAX, NS_MSGOFFLINE, OfflineMessages } from './offline.js';

const NS_AMP = 'http://jabber.org/protocol/amp';
const NS_AMP_ERRORS = 'http://jabber.org/protocol/amp#errors';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

const CONDITIONS = ['deliver', 'expire-at', 'match-resource'];
const ACTIONS = ['alert', 'drop', 'error', 'notify'];
const DELIVER_VALUES = ['direct', 'forward', 'gateway', 'none', 'stored'];
const MATCH_RESOURCE_VALUES = ['any', 'exact', 'other'];
// XEP-0082 DateTime; 3.7.2 requires UTC.
const UTC_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]00:00)$/;

interface Rule {
  action: string;
  condition: string;
  value: string;
  element: Element;
}

function rulesOf(amp: Element): Rule[] {
  return amp.getChildren('rule').map((element) => ({
    action: element.attrs.action ?? '',
    condition: element.attrs.condition ?? '',
    value: element.attrs.value ?? '',
    element,
  }));
}

function hasValidValue({ condition, value }: Rule): boolean {
  switch (condition) {
    case 'deliver': return DELIVER_VALUES.includes(value);
    case 'match-resource': return MATCH_RESOURCE_VALUES.includes(value);
    default: return UTC_DATETIME.test(value) && !Number.isNaN(Date.parse(value));
  }
}

/** What the server would do with the message without AMP (XEP-0079 2.2.2). */
type Delivery = { method: 'direct'; resources: string[] } | { method: 'stored' | 'none' };

/** 3.7.2: the rule's time has come. */
function expired(rule: Rule, now: number): boolean {
  return now >= Date.parse(rule.value);
}

/** XEP-0079 3.7: whether a rule's condition holds. `intended` is the resource the sender addressed ('' for a bare JID). */
function conditionMet(rule: Rule, delivery: Delivery, intended: string, now: number): boolean {
  switch (rule.condition) {
    case 'deliver':
      return rule.value === delivery.method;
    case 'expire-at':
      return expired(rule, now);
    default: {
      // match-resource: offline storage is a destination without a resource (3.7.3).
      const destinations = delivery.method === 'direct' ? delivery.resources : delivery.method === 'stored' ? [''] : [];
      if (rule.value === 'exact') return destinations.includes(intended);
      if (rule.value === 'other') return destinations.some((d) => d !== intended);
      return destinations.some((d) => d !== ''); // any: delivered now to some resource
    }
  }
}

/** What a reply to the sender names of its message: the id, the original sender and recipient (2.2.5, 5.1), and the server replying. */
interface Original {
  id: string | undefined;
  sender: string;
  recipient: string;
  /** The server domain replying. */
  domain: string;
}

class AmpProcessor {
  /** Set once offline storage exists, which in turn asks this processor before each delivery. */
  offline: OfflineMessages | undefined;

  constructor(private readonly ctx: ModuleContext) {}

  /** XEP-0079 2.2 for a message to a local account; true when AMP consumed it. */
  async process({ stanza, from, to, origin }: Routed): Promise<boolean> {
    const amp = stanza.getChild('amp', NS_AMP);
    // A status marks a reply this server sent; errors are never processed.
    if (!amp || amp.attrs.status !== undefined || stanza.attrs.type === 'error') return false;
    const rules = rulesOf(amp);
    const original: Original = { id: stanza.attrs.id, sender: from.full, recipient: to.full, domain: to.domain };
    const rejection = await this.validate(original.id, rules, from.bare, to.bare);
    if (rejection) {
      this.toSender(xml('message', { from: original.domain, to: original.sender, id: original.id, type: 'error' }, amp, rejection.toElement()), origin);
      return true;
    }
    const delivery = await this.defaultDelivery({ stanza, from, to });
    const now = Date.now();
    const perHop = amp.attrs['per-hop'] === 'true';
    for (const rule of rules) {
      // 3.7.3: match-resource applies at the edge servers only; a per-hop ruleset ignores it.
      if (perHop && rule.condition === 'match-resource') continue;
      if (conditionMet(rule, delivery, to.resource, now) && this.execute(rule, original, origin)) return true;
    }
    // 5.1: a message a supporting server passes on names its original sender and recipient.
    amp.attrs.from = original.sender;
    amp.attrs.to = original.recipient;
    return false;
  }

  /**
   * 2.2.1: every rule must be understood and acceptable; the first kind of problem found is
   * answered, listing all rules that have it (section 8).
   */
  private async validate(id: string | undefined, rules: Rule[], sender: string, recipient: string): Promise<StanzaError | undefined> {
    // 1.3: replies are related to the request by its id.
    if (!id) return new StanzaError('bad-request', 'a message with AMP rules needs an id');
    if (rules.length === 0) return new StanzaError('bad-request', 'an <amp/> element needs at least one rule');
    const failing = (condition: 'bad-request' | 'not-acceptable', name: string, found: Rule[], text?: string) =>
      found.length > 0 ? new StanzaError(condition, text, 'modify', xml(name, { xmlns: NS_AMP }, found.map((r) => r.element))) : undefined;
    return failing('bad-request', 'unsupported-actions', rules.filter((r) => !ACTIONS.includes(r.action)))
      ?? failing('bad-request', 'unsupported-conditions', rules.filter((r) => !CONDITIONS.includes(r.condition)))
      ?? failing('not-acceptable', 'invalid-rules', rules.filter((r) => !hasValidValue(r)),
        'deliver takes direct, forward, gateway, none or stored; match-resource any, exact or other; expire-at a UTC date and time')
      // Section 9 (the RECOMMENDED choice): every condition can reveal whether the recipient is
      // online, so only those allowed to see its presence get anything but a silent drop.
      ?? (await this.maySeePresence(sender, recipient) ? undefined
        : failing('not-acceptable', 'invalid-rules', rules.filter((r) => r.action !== 'drop'),
          `only contacts allowed to see the presence of ${recipient} may ask for AMP replies`));
  }

  private async maySeePresence(sender: string, recipient: string): Promise<boolean> {
    if (sender === recipient) return true;
    const item = await this.ctx.storage.roster.getItem(recipient, sender);
    return item?.subscription === 'from' || item?.subscription === 'both';
  }

  /** Where the message module would put the message now (RFC 6121 8.5), without doing it. */
  private async defaultDelivery({ stanza, from, to }: Routed): Promise<Delivery> {
    const type = stanza.attrs.type ?? 'normal';
    if (to.resource && this.ctx.sessions.get(to.bare, to.resource)) return { method: 'direct', resources: [to.resource] };
    if (type === 'groupchat') return { method: 'none' };
    const targets = this.ctx.sessions.bareMessageRecipients(to.bare, type);
    if (targets.length > 0) return { method: 'direct', resources: targets.map((s) => s.jid.resource) };
    const kept = this.offline !== undefined && await this.ctx.storage.users.exists(to.domain, to.local)
      && await this.offline.wouldStore({ stanza, from, to });
    return { method: kept ? 'stored' : 'none' };
  }

  /** Runs a met rule's action (3.8); true when it replaces the default delivery. */
  private execute(rule: Rule, original: Original, origin?: ClientSession): boolean {
    const status = (action: string) => xml('amp', { xmlns: NS_AMP, status: action, from: original.sender, to: original.recipient }, rule.element);
    const reply = { from: original.domain, to: original.sender, id: original.id };
    switch (rule.action) {
      case 'notify':
        // 3.8.4: the default delivery still happens, and later rules are still processed.
        this.toSender(xml('message', reply, status('notify')), origin);
        return false;
      case 'alert':
        this.toSender(xml('message', reply, status('alert')), origin);
        return true;
      case 'error': {
        const failedRules = xml('failed-rules', { xmlns: NS_AMP_ERRORS }, rule.element);
        this.toSender(xml('message', { ...reply, type: 'error' }, status('error'),
          new StanzaError('undefined-condition', undefined, 'modify', failedRules).toElement()), origin);
        return true;
      }
      default: // drop: silently, and never stored (3.8.2)
        return true;
    }
  }

  /**
   * Before a stored message is written to its recipient: expire-at is judged at the time a
   * message is dispatched (3.7.2), and for a stored message that is now. The other conditions
   * were judged on receipt. True when the message is consumed instead of delivered.
   */
  async beforeOfflineDelivery(stanza: Element, session: ClientSession): Promise<boolean> {
    const amp = stanza.getChild('amp', NS_AMP);
    if (!amp || amp.attrs.status !== undefined) return false;
    const original: Original = { id: stanza.attrs.id, sender: stanza.attrs.from ?? '', recipient: stanza.attrs.to ?? session.jid.bare, domain: session.jid.domain };
    const now = Date.now();
    for (const rule of rulesOf(amp)) {
      if (rule.condition === 'expire-at' && expired(rule, now) && this.execute(rule, original)) return true;
    }
    return false;
  }

  /** 2.1.1: the node listing each supported action and condition. */
  answerDiscoNode({ stanza, origin }: Routed): boolean {
    const query = stanza.getChild('query', NS_DISCO_INFO);
    if (stanza.attrs.type !== 'get' || query?.attrs.node !== NS_AMP || stanza.elements().length !== 1) return false;
    const features = [NS_AMP, ...ACTIONS.map((a) => `${NS_AMP}?action=${a}`), ...CONDITIONS.map((c) => `${NS_AMP}?condition=${c}`)];
    this.toSender(resultFor(stanza, xml('query', { xmlns: NS_DISCO_INFO, node: NS_AMP },
      xml('identity', { category: 'server', type: 'im', name: 'Switchboard AMP support' }),
      features.map((f) => xml('feature', { var: f })))), origin);
    return true;
  }

  private toSender(reply: Element, origin?: ClientSession): void {
    if (origin && reply.attrs.to === origin.jid.full) origin.send(reply);
    else void this.ctx.router.route(reply);
  }
}

export default defineModule({
  name: 'amp',
  description: "Advanced Message Processing (XEP-0079), carrying offline messages (XEP-0160) with per-sender limits: Tigase's 'sess-man' { amp () { ... } } (and amp { }) settings, same names",
  specs: ['XEP-0079', 'XEP-0160', 'XEP-0203', 'XEP-0334'],
  features: [NS_AMP],
  config: z.object({
    'store-limit': z.number().int().min(1).default(100)
      .describe('Offline messages kept per pair of sender and recipient bare JIDs; this one applies to every user'),
    'user-store-limit-enable': z.boolean().default(false)
      .describe("Let each user set its own limit with <iq type='set'><msgoffline xmlns='msgoffline' limit='N'/></iq> (limit='false' goes back to store-limit); kept in the user's settings (offline-msgs, store-limit)"),
    'quota-exceeded': z.enum(['error', 'drop']).default('error')
      .describe('A message over the limit: error sends the sender service-unavailable explaining the quota, drop discards it silently'),
    'msg-store-offline-paths': z.array(z.string().regex(MATCHER_SYNTAX,
      "a matcher is an optional '-', then /message/<child>[/<child>...], then optionally [namespace], e.g. /message/received[urn:xmpp:receipts]"))
      .default([])
      .describe("Which messages to store besides normal and chat messages with a body, checked in order, the first match deciding: '/message/received[urn:xmpp:receipts]' stores messages with that child in that namespace, '/message/store-offline' with that child in any namespace, a leading '-' means do not store"),
    msgoffline: z.object({
      active: z.boolean().default(true).describe('Store messages for users who are offline (XEP-0160); false switches storage off and keeps AMP'),
    }).strict().prefault({}).describe("Offline storage: Tigase's msgoffline (active: false) {} inside amp ()"),
  }).strict(),
  setup(ctx) {
    const options = ctx.config;
    const processor = new AmpProcessor(ctx);
    for (const step of ['message/bare', 'message/full'] as const) ctx.hooks.on(step, (r) => processor.process(r), 100);
    ctx.hooks.on('iq/host', (r) => processor.answerDiscoNode(r), 100);
    if (!options.msgoffline.active) return;

    const offline = new OfflineMessages(ctx, {
      storeLimit: options['store-limit'],
      userStoreLimitEnable: options['user-store-limit-enable'],
      quotaExceeded: options['quota-exceeded'],
      paths: options['msg-store-offline-paths'],
    }, (stanza, session) => processor.beforeOfflineDelivery(stanza, session));
    processor.offline = offline;
    ctx.feature(NS_MSGOFFLINE);
    ctx.hooks.on('message/undeliverable', (r) => offline.store(r));
    // After AMP, before the message module: nothing overtakes the stored messages being written out.
    for (const step of ['message/bare', 'message/full'] as const) ctx.hooks.on(step, (r) => offline.holdBehindFlush(r), 50);
    // XEP-0160 2: delivered when the user next sends initial presence, after its roster exchange;
    // a resource with negative priority never gets messages sent to the bare JID.
    ctx.hooks.on('presence/initial', (session) => (session.priority >= 0 ? offline.deliver(session) : undefined));
    if (options['user-store-limit-enable']) ctx.iq('account', NS_MSGOFFLINE, offline.limitIq());
    return offline.listen();
  },
});
