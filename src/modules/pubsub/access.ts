// Who may do what on a node: affiliations (XEP-0060 section 4.1, table 4), access models
// (section 4.5) for subscribing and retrieving, and publish models (pubsub#publish_model).
// Server administrators have owner rights on every node.
import type { ModuleContext } from '../../core/modules.js';
import { StanzaError } from '../../core/errors.js';
import { pubsubError } from './errors.js';
import type { Affiliation, PubSubNode } from './nodes.js';

export class AccessControl {
  constructor(private readonly ctx: ModuleContext) {}

  /** The affiliation that counts for permissions: administrators are owners everywhere. */
  affiliation(node: PubSubNode, bare: string): Affiliation {
    return this.ctx.isAdmin(bare) ? 'owner' : node.affiliation(bare);
  }

  isOwner(node: PubSubNode, bare: string): boolean {
    return this.affiliation(node, bare) === 'owner';
  }

  requireOwner(node: PubSubNode, bare: string): void {
    if (!this.isOwner(node, bare)) throw pubsubError('forbidden', undefined, `only owners of ${node.name} may do this`);
  }

  canPublish(node: PubSubNode, bare: string): boolean {
    const affiliation = this.affiliation(node, bare);
    if (affiliation === 'owner' || affiliation === 'publisher' || affiliation === 'publish-only') return true;
    if (affiliation === 'outcast') return false;
    switch (node.config.publishModel) {
      case 'open': return true;
      case 'subscribers': return [...node.subscriptions.values()].some((s) => s.state === 'subscribed' && bareOf(s.jid) === bare);
      case 'publishers': return false;
    }
  }

  /**
   * Retracting (section 7.2): owners and publishers any item; whoever may publish (publish-only,
   * or anyone under an open publish model) the items it published itself.
   */
  canRetract(node: PubSubNode, bare: string, itemPublisher: string): boolean {
    const affiliation = this.affiliation(node, bare);
    if (affiliation === 'owner' || affiliation === 'publisher') return true;
    return bareOf(itemPublisher) === bare && this.canPublish(node, bare);
  }

  /**
   * Throws the error of section 6.1.3 (subscribe) or 6.5.9 (retrieve) when the access model keeps
   * `bare` out. With `authorize`, subscribing is allowed (it becomes pending) but retrieving
   * needs an approved subscription.
   */
  async checkAccess(node: PubSubNode, bare: string, purpose: 'subscribe' | 'retrieve'): Promise<void> {
    const affiliation = this.affiliation(node, bare);
    if (affiliation === 'outcast') throw pubsubError('forbidden', undefined, `you are banned from ${node.name}`);
    if (affiliation === 'publish-only') throw pubsubError('forbidden', undefined, 'a publish-only affiliation may not subscribe or retrieve');
    if (affiliation !== 'none') return;
    switch (node.config.accessModel) {
      case 'open':
        return;
      case 'presence':
        if (await this.anyOwnerRoster(node, bare, (item) => item.subscription === 'from' || item.subscription === 'both')) return;
        throw pubsubError('not-authorized', 'presence-subscription-required', "only those subscribed to an owner's presence may access this node", 'auth');
      case 'roster': {
        const allowed = new Set(node.config.rosterGroupsAllowed);
        if (await this.anyOwnerRoster(node, bare, (item) => item.groups.some((g) => allowed.has(g)))) return;
        throw pubsubError('not-authorized', 'not-in-roster-group', "only contacts in the owners' allowed roster groups may access this node", 'auth');
      }
      case 'whitelist':
        throw pubsubError('not-allowed', 'closed-node', `${node.name} is open to its members only`);
      case 'authorize':
        if (purpose === 'subscribe') return;
        if ([...node.subscriptions.values()].some((s) => s.state === 'subscribed' && bareOf(s.jid) === bare)) return;
        throw pubsubError('not-authorized', 'not-subscribed', 'items of this node are for approved subscribers', 'auth');
    }
  }

  /**
   * Whether a subscriber of a collection may see items of one of its leaves (XEP-0248): the leaf's
   * access model applies as if the subscriber had subscribed to it. Roster lookups only for the
   * models that need them.
   */
  async mayReceiveFrom(node: PubSubNode, bare: string): Promise<boolean> {
    if (node.config.accessModel === 'open' && this.affiliation(node, bare) !== 'outcast') return true;
    try {
      await this.checkAccess(node, bare, 'retrieve');
      return true;
    } catch (e) {
      if (e instanceof StanzaError) return false;
      throw e;
    }
  }

  private async anyOwnerRoster(node: PubSubNode, bare: string, test: (item: { subscription: string; groups: string[] }) => boolean): Promise<boolean> {
    for (const owner of node.owners()) {
      const item = await this.ctx.storage.roster.getItem(owner, bare);
      if (item && test(item)) return true;
    }
    return false;
  }
}

export function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}
