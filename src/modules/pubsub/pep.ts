// Personal Eventing Protocol (XEP-0163): every account's bare JID is a PubSub service of its
// own, run by the same engine as pubsub.<host> (service.ts) with the PEP profile: only the
// account creates and publishes (nodes created on first publish), nodes default to the presence
// access model, and notifications go, besides explicit subscribers, to the account's own
// resources and to contacts with a presence subscription (from/both) whose entity caps
// (caps.ts) carry `<node>+notify`. A resource that becomes available, or announces new caps,
// gets the last item of each node it is interested in. Services are loaded from storage on
// first use and kept; those of anonymous accounts live in memory (storage/ephemeral.ts) and are
// dropped with the account.
import type { ModuleContext } from '../../core/modules.js';
import type { Routed } from '../../core/events.js';
import type { ClientSession } from '../../core/session.js';
import { xml, type Element } from '../../xml/element.js';
import { AsteriskRules } from './asterisk.js';
import { EntityCaps, capsOf, sameCaps, type CapsReference } from './caps.js';
import type { PubSubNode } from './nodes.js';
import { NS_PUBSUB_OWNER, PubSubProtocol, serviceFeatures } from './protocol.js';
import { NS_PUBSUB, PubSubService, type ServiceLimits } from './service.js';
import { Subscriptions } from './subscriptions.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** XEP-0060 section 10 features a PEP service has on top of the generic ones (XEP-0163 section 9). */
export const PEP_FEATURES = ['auto-create', 'auto-subscribe', 'filtered-notifications', 'presence-notifications', 'presence-subscribe'];

interface PepService {
  service: PubSubService;
  protocol: PubSubProtocol;
}

const NO_ASTERISK = new AsteriskRules({
  enabled: false, 'device-state-node': 'device_state', 'mwi-node': 'message_waiting', autocreate: false,
  'validate-payloads': false, 'access-model': 'open', 'publish-model': 'open',
});

const hasFrom = (subscription: string) => subscription === 'from' || subscription === 'both';
const hasTo = (subscription: string) => subscription === 'to' || subscription === 'both';

/** The cluster-wide notice that an account's PEP changed on one node. */
const PEP_CHANGED = 'pep/changed';

export class PepServices {
  /** By account (bare JID). */
  private readonly loaded = new Map<string, Promise<PepService>>();
  /** The caps each available resource last announced, to tell a change from a repeated presence. */
  private readonly announced = new WeakMap<ClientSession, CapsReference | undefined>();

  private readonly stopListening: () => void;

  constructor(private readonly ctx: ModuleContext, private readonly limits: ServiceLimits, readonly caps: EntityCaps) {
    this.stopListening = ctx.cluster.handle(PEP_CHANGED, (payload, from) => {
      const bare = (payload as { bare?: unknown } | null)?.bare;
      if (from.node !== ctx.cluster.nodeName && typeof bare === 'string') this.loaded.delete(bare);
      return undefined;
    });
  }

  dispose(): void {
    this.stopListening();
  }

  /** The PEP service of an account, loaded from storage on first use. */
  get(bare: string): Promise<PepService> {
    let pep = this.loaded.get(bare);
    if (!pep) {
      pep = this.load(bare);
      this.loaded.set(bare, pep);
      pep.catch(() => this.loaded.delete(bare));
    }
    return pep;
  }

  private async load(bare: string): Promise<PepService> {
    const service: PubSubService = new PubSubService(bare, this.ctx, this.limits, NO_ASTERISK, undefined, {
      implicitRecipients: (node) => this.implicitRecipients(service, node),
    });
    await service.tree.load();
    return { service, protocol: new PubSubProtocol(service, new Subscriptions(service)) };
  }

  /** Whether an IQ to an account's bare JID is for its PEP service; if so, it is handled. */
  async handleIq(r: Routed): Promise<boolean> {
    const type = r.stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return false;
    const payload = r.stanza.elements()[0];
    const ns = payload?.attrs.xmlns;
    const ours = ns === NS_PUBSUB || ns === NS_PUBSUB_OWNER || ((ns === NS_DISCO_INFO || ns === NS_DISCO_ITEMS) && payload!.attrs.node !== undefined);
    if (!ours || !(await this.accountExists(r.to.bare, r.to.domain, r.to.local))) return false;
    await (await this.get(r.to.bare)).protocol.handle(r);
    // Other cluster nodes keep their own copy of this account's PEP: changed, they read it again.
    if (type === 'set' && this.ctx.cluster.enabled) {
      void this.ctx.cluster.request(PEP_CHANGED, { bare: r.to.bare })
        .catch((err: unknown) => this.ctx.log.warn({ err, account: r.to.bare }, 'could not tell the cluster of a PEP change'));
    }
    return true;
  }

  /** Registered accounts, and anonymous ones while logged in. */
  private async accountExists(bare: string, domain: string, local: string): Promise<boolean> {
    return this.ctx.sessions.isOnline(bare) || this.ctx.storage.users.exists(domain, local);
  }

  /**
   * XEP-0163 section 4.3: the owner's available resources and the contacts subscribed to the
   * owner's presence that may read the node, each at the resources whose caps say +notify.
   */
  private async implicitRecipients(service: PubSubService, node: PubSubNode): Promise<string[]> {
    const notify = `${node.name}+notify`;
    const interested = (bare: string) => this.ctx.sessions.available(bare).filter((s) => this.caps.knownFeatures(s)?.has(notify) === true);
    const out = interested(service.jid).map((s) => s.jid.full);
    const { items } = await this.ctx.storage.roster.get(service.jid);
    for (const item of items) {
      if (!hasFrom(item.subscription)) continue;
      const sessions = interested(item.jid);
      if (sessions.length > 0 && (await service.access.mayReceiveFrom(node, item.jid))) out.push(...sessions.map((s) => s.jid.full));
    }
    return out;
  }

  /**
   * A resource's available presence: when it is the first one, or its caps changed, the caps are
   * resolved (in the background: the client answers our query on the stream this presence came
   * from) and the last items of the nodes it wants are sent to it, from its own account and from
   * each contact whose presence it receives (XEP-0163 section 4.3.2).
   */
  presence(session: ClientSession, stanza: Element): void {
    const caps = capsOf(stanza);
    const initial = session.presence === undefined;
    if (!initial && sameCaps(this.announced.get(session), caps)) return;
    this.announced.set(session, caps);
    if (!caps) return;
    void this.sendLastItems(session, stanza).catch((err: unknown) => this.ctx.log.error({ err, jid: session.jid.full }, 'PEP last items on presence failed'));
  }

  private async sendLastItems(session: ClientSession, stanza: Element): Promise<void> {
    const features = await this.caps.resolve(session, stanza);
    const wanted = [...(features ?? [])].filter((f) => f.endsWith('+notify')).map((f) => f.slice(0, -'+notify'.length));
    if (wanted.length === 0) return;
    const bare = session.jid.bare;
    const { items } = await this.ctx.storage.roster.get(bare);
    const owners = [bare, ...items.filter((i) => hasTo(i.subscription) && this.ctx.router.isLocalHost(i.jid.slice(i.jid.indexOf('@') + 1))).map((i) => i.jid)];
    for (const owner of owners) {
      const { service } = await this.get(owner);
      await service.exclusive(async () => {
        for (const name of wanted) {
          const node = service.tree.get(name);
          if (!node || node.isCollection || node.config.sendLastPublishedItem === 'never' || !node.config.deliverNotifications) continue;
          if (owner !== bare && !(await service.access.mayReceiveFrom(node, bare))) continue;
          const item = await service.lastItem(node);
          if (item) await service.notifier.lastItemTo(session.jid.full, node, item);
        }
      });
    }
  }

  /**
   * A roster item of `owner` changed (XEP-0163 section 7, "re-calculate access controls"): a
   * contact who lost access (no longer subscribed to the owner's presence, or out of the allowed
   * groups) loses its subscriptions to the owner's nodes, and is told; a contact subscribed to the
   * owner's presence gets, at its interested resources, the last items it may now read.
   */
  async rosterChanged(owner: string, contact: string, subscription: string, removed: boolean): Promise<void> {
    const { service } = await this.get(owner);
    const interested = hasFrom(subscription) && !removed
      ? this.ctx.sessions.available(contact).map((s) => ({ session: s, features: this.caps.knownFeatures(s) })).filter((s) => s.features)
      : [];
    await service.exclusive(async () => {
      for (const node of [...service.tree.all()]) {
        const model = node.config.accessModel;
        const allowed = await service.access.mayReceiveFrom(node, contact);
        if (!allowed && (model === 'presence' || model === 'roster')) {
          for (const s of [...node.subscriptions.values()]) {
            if (s.jid !== contact && !s.jid.startsWith(`${contact}/`)) continue;
            await service.tree.unsubscribe(node, s);
            await service.notifier.subscriptionChanged(node, s, 'none');
          }
          continue;
        }
        if (!allowed || node.isCollection || node.config.sendLastPublishedItem === 'never' || !node.config.deliverNotifications) continue;
        const to = interested.filter((i) => i.features!.has(`${node.name}+notify`));
        const item = to.length > 0 ? await service.lastItem(node) : null;
        if (item) for (const { session } of to) await service.notifier.lastItemTo(session.jid.full, node, item);
      }
    });
  }

  /** disco#info of an account (XEP-0163 section 6): the pubsub/pep identity and the service's features. */
  accountInfo(extra: { identities: Element[]; features: string[] }): void {
    extra.identities.push(xml('identity', { category: 'pubsub', type: 'pep' }));
    extra.features.push(NS_PUBSUB, ...[...serviceFeatures(), ...PEP_FEATURES].map((f) => `${NS_PUBSUB}#${f}`));
  }

  /** disco#items of an account (XEP-0060 section 5.2): the nodes the requester may read. */
  async accountItems(owner: string, requester: string, items: Element[]): Promise<void> {
    const { service } = await this.get(owner);
    for (const node of service.tree.roots()) {
      if (requester === owner || (await service.access.mayReceiveFrom(node, requester))) {
        items.push(xml('item', { jid: owner, node: node.name, name: node.config.title || undefined }));
      }
    }
  }

  /** A resource went away: forget what it announced; an anonymous account's service goes with its last session. */
  sessionClosed(session: ClientSession): void {
    this.announced.delete(session);
    this.caps.forget(session.jid.full);
    if (session.anonymous && this.ctx.sessions.resources(session.jid.bare).length === 0) this.loaded.delete(session.jid.bare);
  }

  /** The account was deleted: its PEP nodes (and their items) go. */
  async accountDeleted(bare: string): Promise<void> {
    const { service } = await this.get(bare);
    await service.exclusive(async () => {
      for (const node of [...service.tree.all()]) await service.tree.delete(node);
    });
    this.loaded.delete(bare);
  }
}

/** Hooks the PEP services into routing, presence, disco and account lifecycle. */
export function hookPep(ctx: ModuleContext, peps: PepServices): () => void {
  const offs = [
    // Below the ad-hoc components (100), which claim only their own names.
    ctx.hooks.on('iq/bare', (r) => peps.handleIq(r), 50),
    // Answers to our caps queries come to the server's domain.
    ctx.hooks.on('iq/host', ({ stanza, from }) => {
      const type = stanza.attrs.type;
      return (type === 'result' || type === 'error') && peps.caps.answer(stanza, from.full);
    }, 200),
    // Above the presence module, which claims the broadcast: `origin.presence` is still the previous one.
    ctx.hooks.on('presence/broadcast', ({ stanza, origin }) => {
      if (stanza.attrs.type === undefined) peps.presence(origin, stanza);
    }, 90),
    ctx.hooks.on('session/closed', (session) => { peps.sessionClosed(session); }),
    ctx.hooks.on('disco/account-info', (q) => { peps.accountInfo(q); }),
    ctx.hooks.on('disco/account-items', (q) => peps.accountItems(q.to.bare, q.from.bare, q.items)),
    ctx.hooks.on('account/deleted', ({ domain, username }) => peps.accountDeleted(`${username}@${domain}`)),
    ctx.hooks.on('roster/changed', ({ owner, item, removed }) => {
      // In the background: the roster module pushes the change meanwhile, and a slow lookup must not hold it.
      void peps.rosterChanged(owner, item.jid, item.subscription, removed)
        .catch((err: unknown) => ctx.log.error({ err, owner, contact: item.jid }, 'PEP access check after a roster change failed'));
    }),
  ];
  return () => {
    for (const off of offs) off();
    peps.dispose();
    peps.caps.dispose();
  };
}
