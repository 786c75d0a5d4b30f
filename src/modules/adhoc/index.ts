// Ad-hoc commands (XEP-0050) with data forms (XEP-0004): the protocol side of the commands
// modules register in the shared registry (./commands.ts). Commands belong to components that
// answer at <component>@<virtual host> (sess-man, vhost-man, ...); the virtual host's own JID
// answers for the session manager, where XEP-0133 clients look.
//
// Visibility (seed 001 section 11.14.2): a component, and each of its commands, is shown in disco
// only to those allowed to run at least one of them (administrators, or owners and administrators
// of a virtual host for the commands open to them); to everyone else the component does not exist,
// and running one of its commands is forbidden. Only local, authenticated, non-anonymous users run
// commands.
//
// Sessions: multi-stage commands keep a session per requester, with prev (back one stage), next,
// complete and cancel, and the error conditions of XEP-0050 section 4.6. Sessions expire after
// `session-timeout` seconds without a request.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineModule } from '../../core/module-definition.js';
import type { ModuleContext } from '../../core/modules.js';
import type { Routed } from '../../core/events.js';
import { StanzaError } from '../../core/errors.js';
import { resultFor } from '../../core/router.js';
import { Element, xml } from '../../xml/element.js';
import { NS_DISCO_INFO, NS_DISCO_ITEMS } from '../disco.js';
import { NS_COMMANDS, NS_DATA, FormValues, formElement, parseForm } from './forms.js';
import { SESSION_MANAGER, commandRegistry, type AdhocCommand, type CommandReply, type CommandRegistry, type Component } from './commands.js';

const ACTIONS = new Set(['execute', 'next', 'prev', 'complete', 'cancel']);
/** Open sessions one requester (full JID) may have; the oldest is dropped beyond it. */
const MAX_SESSIONS_PER_REQUESTER = 10;

interface CommandSession {
  id: string;
  node: string;
  component: string;
  /** The JID the command was sent to, as a string. */
  to: string;
  requester: string;
  state: Record<string, unknown>;
  /** The executing replies sent so far; the last is the form the requester sees. */
  history: Extract<CommandReply, { status: 'executing' }>[];
  expires: number;
}

function commandError(condition: 'malformed-action' | 'bad-action' | 'bad-sessionid' | 'session-expired', text: string): StanzaError {
  return new StanzaError(condition === 'session-expired' ? 'not-allowed' : 'bad-request', text, undefined, xml(condition, { xmlns: NS_COMMANDS }));
}

class AdhocService {
  private readonly sessions = new Map<string, CommandSession>();
  readonly registry: CommandRegistry;

  constructor(private readonly ctx: ModuleContext<{ 'session-timeout': number }>) {
    this.registry = commandRegistry(ctx);
  }

  private get timeoutMs(): number {
    return this.ctx.config['session-timeout'] * 1000;
  }

  /** Drops sessions that expired more than an hour ago (later ones still answer session-expired). */
  sweep(): void {
    const cutoff = Date.now() - 3600_000;
    for (const [id, s] of this.sessions) if (s.expires < cutoff) this.sessions.delete(id);
  }

  /** The bare JID of a requester allowed to use commands at all, else undefined. */
  private eligible(r: Routed): string | undefined {
    const origin = r.origin;
    if (!origin || origin.anonymous || origin.jid.bare !== r.from.bare) return undefined;
    return r.from.bare;
  }

  private async visibleCommands(component: Component, r: Routed): Promise<AdhocCommand[]> {
    const bare = this.eligible(r);
    return bare === undefined ? [] : this.registry.visible(component.name, bare, r.to.domain);
  }

  /** Components `r.from` may see on the host `r.to`, as disco items. */
  async hostItems(r: { from: Routed['from']; to: Routed['to']; origin?: Routed['origin'] }, items: Element[]): Promise<void> {
    for (const c of this.registry.components()) {
      const visible = await this.visibleCommands(c, { ...r, stanza: xml('iq') } as Routed);
      if (visible.length) items.push(xml('item', { jid: `${c.name}@${r.to.domain}`, name: c.label }));
    }
  }

  /** IQs to the virtual host itself: commands and command disco of the session manager. Claims what it answers. */
  async host(r: Routed): Promise<boolean> {
    const { stanza } = r;
    const payload = stanza.elements().length === 1 ? stanza.firstElement()! : undefined;
    if (!payload) return false;
    const type = stanza.attrs.type;
    if (type === 'set' && payload.is('command', NS_COMMANDS)) {
      await this.answer(r, () => this.execute(r, SESSION_MANAGER, payload));
      return true;
    }
    if (type !== 'get') return false;
    const node = payload.attrs.node;
    if (node === undefined) return false;
    const isInfo = payload.is('query', NS_DISCO_INFO);
    const isItems = payload.is('query', NS_DISCO_ITEMS);
    if (isItems && node === NS_COMMANDS) {
      await this.answer(r, () => this.commandItems(r, SESSION_MANAGER, node));
      return true;
    }
    if (isInfo && (node === NS_COMMANDS || this.registry.get(SESSION_MANAGER.name, node))) {
      await this.answer(r, () => this.nodeInfo(r, SESSION_MANAGER, node));
      return true;
    }
    return false;
  }

  /** IQs to a component's JID (<component>@<host>). Claims them all: a component is not an account. */
  async component(r: Routed, component: Component): Promise<void> {
    const { stanza } = r;
    const type = stanza.attrs.type;
    if (type === 'result' || type === 'error') return;
    await this.answer(r, async () => {
      const payloads = stanza.elements();
      const payload = payloads[0];
      if (!payload || payloads.length !== 1) throw new StanzaError('bad-request', 'an IQ get or set must have exactly one child element');
      if (type === 'set' && payload.is('command', NS_COMMANDS)) return this.execute(r, component, payload);
      // Hidden from those who may use none of its commands, as if it did not exist.
      const visible = await this.visibleCommands(component, r);
      if (visible.length === 0) throw new StanzaError('service-unavailable');
      if (type === 'get' && payload.is('query', NS_DISCO_INFO)) {
        const node = payload.attrs.node;
        if (node !== undefined) return this.nodeInfo(r, component, node);
        return xml('query', { xmlns: NS_DISCO_INFO },
          xml('identity', { category: 'component', type: 'generic', name: component.label }),
          [NS_COMMANDS, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS].map((f) => xml('feature', { var: f })));
      }
      if (type === 'get' && payload.is('query', NS_DISCO_ITEMS)) {
        const node = payload.attrs.node;
        if (node !== undefined && node !== NS_COMMANDS) throw new StanzaError('item-not-found');
        return this.commandItems(r, component, node);
      }
      throw new StanzaError('service-unavailable');
    });
  }

  private async commandItems(r: Routed, component: Component, node: string | undefined): Promise<Element> {
    const visible = await this.visibleCommands(component, r);
    return xml('query', { xmlns: NS_DISCO_ITEMS, node }, visible.map((c) => xml('item', { jid: r.to.bare, node: c.node, name: c.name })));
  }

  private async nodeInfo(r: Routed, component: Component, node: string): Promise<Element> {
    if (node === NS_COMMANDS) {
      return xml('query', { xmlns: NS_DISCO_INFO, node },
        xml('identity', { category: 'automation', type: 'command-list', name: `${component.label} commands` }));
    }
    const command = this.registry.get(component.name, node);
    const bare = this.eligible(r);
    if (!command || bare === undefined || !(await command.allowed(bare, r.to.domain))) throw new StanzaError('item-not-found');
    return xml('query', { xmlns: NS_DISCO_INFO, node },
      xml('identity', { category: 'automation', type: 'command-node', name: command.name }),
      xml('feature', { var: NS_COMMANDS }),
      xml('feature', { var: NS_DATA }));
  }

  /** Runs `work` and sends its payload as the result, or its error. */
  private async answer(r: Routed, work: () => Promise<Element | void>): Promise<void> {
    let payload: Element | void;
    try {
      payload = await work();
    } catch (e) {
      if (!(e instanceof StanzaError)) {
        this.ctx.log.error({ err: e, stanza: r.stanza.toString() }, 'ad-hoc command failed');
        e = new StanzaError('internal-server-error');
      }
      this.ctx.router.bounce(r.stanza, e as StanzaError, r.origin);
      return;
    }
    const reply = resultFor(r.stanza, payload);
    if (r.origin && reply.attrs.to === r.origin.jid.full) r.origin.send(reply);
    else await this.ctx.router.route(reply);
  }

  private async execute(r: Routed, component: Component, request: Element): Promise<Element> {
    const node = request.attrs.node;
    if (!node) throw new StanzaError('bad-request', 'the command has no node');
    const action = request.attrs.action ?? 'execute';
    if (!ACTIONS.has(action)) throw commandError('malformed-action', `${action} is not an ad-hoc command action`);
    const bare = this.eligible(r);
    if (bare === undefined) throw new StanzaError('forbidden', 'commands are for users of this server logged in with an account');
    const command = await this.registry.authorise(component.name, node, bare, r.to.domain);
    const x = request.getChild('x', NS_DATA);
    const values = new FormValues(x ? parseForm(x) : undefined);

    let session: CommandSession;
    let effective: 'execute' | 'next' | 'complete';
    const sessionid = request.attrs.sessionid;
    if (sessionid === undefined) {
      if (action === 'cancel') return xml('command', { xmlns: NS_COMMANDS, node, status: 'canceled' });
      if (action === 'prev') throw commandError('bad-action', 'there is no previous stage before the command started');
      session = this.open(node, component, r);
      effective = 'execute';
    } else {
      const found = this.sessions.get(sessionid);
      if (!found || found.requester !== r.from.full || found.node !== node || found.to !== r.to.full) {
        throw commandError('bad-sessionid', 'no such command session');
      }
      if (found.expires < Date.now()) {
        this.sessions.delete(sessionid);
        throw commandError('session-expired', 'the command session expired; run the command again');
      }
      session = found;
      session.expires = Date.now() + this.timeoutMs;
      if (action === 'cancel') {
        this.sessions.delete(session.id);
        return xml('command', { xmlns: NS_COMMANDS, node, sessionid: session.id, status: 'canceled' });
      }
      const current = session.history[session.history.length - 1];
      if (action === 'prev') {
        if (session.history.length < 2) throw commandError('bad-action', 'there is no previous stage');
        session.history.pop();
        return this.commandElement(session, session.history[session.history.length - 1]!);
      }
      const offered = current?.actions ?? ['complete'];
      effective = action === 'execute' ? (current?.defaultAction ?? offered[offered.length - 1] ?? 'complete') : action as 'next' | 'complete';
      if (current && !offered.includes(effective)) throw commandError('bad-action', `${effective} is not possible at this stage`);
    }

    let reply: CommandReply;
    try {
      reply = await command.run({
        requester: r.from, session: r.origin!, to: r.to, domain: r.to.domain, action: effective, values,
        stage: session.history.length, state: session.state, request: r.stanza,
      });
    } catch (e) {
      // A form lacking a field may be submitted again; other errors end the session.
      const resubmittable = e instanceof StanzaError && e.appCondition?.name === 'bad-payload';
      if (!resubmittable) this.sessions.delete(session.id);
      throw e;
    }
    if (reply.status === 'completed') {
      this.sessions.delete(session.id);
      return this.commandElement(session, reply);
    }
    session.history.push(reply);
    return this.commandElement(session, reply);
  }

  private open(node: string, component: Component, r: Routed): CommandSession {
    const mine = [...this.sessions.values()].filter((s) => s.requester === r.from.full);
    if (mine.length >= MAX_SESSIONS_PER_REQUESTER) this.sessions.delete(mine[0]!.id);
    const session: CommandSession = {
      id: `${node.slice(node.lastIndexOf('#') + 1)}:${randomUUID()}`,
      node, component: component.name, to: r.to.full, requester: r.from.full, state: {}, history: [],
      expires: Date.now() + this.timeoutMs,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  private commandElement(session: CommandSession, reply: CommandReply): Element {
    const el = xml('command', { xmlns: NS_COMMANDS, node: session.node, sessionid: session.id, status: reply.status });
    if (reply.status === 'executing') {
      const offered = reply.actions ?? ['complete'];
      const actions = session.history.length > 1 ? ['prev', ...offered] : offered;
      el.append(xml('actions', { execute: reply.defaultAction ?? offered[offered.length - 1] }, actions.map((a) => xml(a))));
    }
    for (const n of reply.notes ?? []) el.append(xml('note', { type: n.type }, n.text));
    if (reply.form) el.append(formElement(reply.form));
    return el;
  }
}

export default defineModule({
  name: 'adhoc',
  description: 'Ad-hoc commands (XEP-0050) with data forms (XEP-0004), per component (sess-man@<host>, vhost-man@<host>, ...): the protocol behind the admin commands',
  specs: ['XEP-0050', 'XEP-0004'],
  features: [NS_COMMANDS],
  config: z.object({
    'session-timeout': z.number().int().min(10).default(600)
      .describe('Seconds a multi-stage command session waits for the next request before it expires'),
  }).strict(),
  setup(ctx) {
    const service = new AdhocService(ctx);
    const offHost = ctx.hooks.on('iq/host', (r) => service.host(r), 100);
    const offBare = ctx.hooks.on('iq/bare', async (r) => {
      const component = service.registry.component(r.to.local);
      if (!component) return false;
      await service.component(r, component);
      return true;
    }, 100);
    const offItems = ctx.hooks.on('disco/host-items', async (q) => {
      const origin = [...ctx.sessions.resources(q.from.bare)].find((s) => s.jid.full === q.from.full);
      await service.hostItems({ from: q.from, to: q.to, origin }, q.items);
    });
    const timer = setInterval(() => service.sweep(), 60_000);
    timer.unref();
    return () => { offHost(); offBare(); offItems(); clearInterval(timer); };
  },
});
