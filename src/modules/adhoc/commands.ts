// The ad-hoc command registry (XEP-0050) that modules add their commands to. Commands belong to
// components, as in Tigase (seed 001 section 11.14.2): each component answers at
// <name>@<virtual host> (sess-man@example.com, vhost-man@example.com) and lists its own
// commands; the virtual host's own JID is the session manager too, where XEP-0133 clients look.
//
// One registry per server, found through the server's hooks object, so that modules share it
// without importing each other: `commandRegistry(ctx).add({...})`.
import { parseJid, type JID } from '../../jid.js';
import type { Element } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import type { ModuleContext } from '../../core/modules.js';
import type { ClientSession } from '../../core/session.js';
import type { DataForm, FormValues } from './forms.js';

export const NS_ADMIN = 'http://jabber.org/protocol/admin';

export interface Component {
  /** Local part of its JID on every virtual host: `sess-man` answers at sess-man@<host>. */
  name: string;
  /** What disco shows, e.g. "Session Manager". */
  label: string;
}

export const SESSION_MANAGER: Component = { name: 'sess-man', label: 'Session Manager' };
export const VHOST_MANAGER: Component = { name: 'vhost-man', label: 'VHost Manager' };

export interface CommandStep {
  /** Who runs the command (full JID of a local, authenticated, non-anonymous session, or of an administrator of the admin web UI). */
  requester: JID;
  /** The session the request came from; absent when the command runs outside XMPP (`CommandRegistry.execute`). */
  session?: ClientSession;
  /** The address the command was sent to: the component's JID or the virtual host's. */
  to: JID;
  /** The virtual host the command was addressed on. */
  domain: string;
  /** 'execute' for the first request and for the default action of later ones. */
  action: 'execute' | 'next' | 'complete';
  /** Values of the form submitted with this request (`values.submitted` is false when there was none). */
  values: FormValues;
  /** 0 for the first request of a session, then the number of stages answered so far. */
  stage: number;
  /** Kept between the stages of one session. */
  state: Record<string, unknown>;
  /** The IQ as received; absent when the command runs outside XMPP. */
  request?: Element;
}

export interface Note {
  type: 'info' | 'warn' | 'error';
  text: string;
}

export type CommandReply =
  | {
    status: 'executing';
    form: DataForm;
    /** Actions offered besides prev (added when there is a previous stage); default ['complete']. */
    actions?: ('next' | 'complete')[];
    /** What action='execute' means at this stage; default the last of `actions`. */
    defaultAction?: 'next' | 'complete';
    notes?: Note[];
  }
  | { status: 'completed'; form?: DataForm; notes?: Note[] };

export interface AdhocCommand {
  /** The command node, e.g. http://jabber.org/protocol/admin#add-user. */
  node: string;
  /** What disco shows. */
  name: string;
  /** Component name (SESSION_MANAGER.name, ...). */
  component: string;
  /**
   * Whether `requester` (a bare JID) may see and run the command on the virtual host `domain`.
   * Commands it may not run are not listed to it, and running them is forbidden.
   */
  allowed(requester: string, domain: string): boolean | Promise<boolean>;
  run(step: CommandStep): CommandReply | Promise<CommandReply>;
}

export class CommandRegistry {
  private readonly componentsByName = new Map<string, Component>();
  private readonly commands = new Map<string, Map<string, AdhocCommand>>();

  constructor() {
    this.defineComponent(SESSION_MANAGER);
    this.defineComponent(VHOST_MANAGER);
  }

  defineComponent(component: Component): void {
    if (!this.componentsByName.has(component.name)) this.componentsByName.set(component.name, component);
  }

  component(name: string): Component | undefined {
    return this.componentsByName.get(name);
  }

  components(): Component[] {
    return [...this.componentsByName.values()];
  }

  /** Adds a command, replacing one with the same node on the same component; returns a remover. */
  add(command: AdhocCommand): () => void {
    if (!this.componentsByName.has(command.component)) throw new Error(`unknown component ${command.component}`);
    let byNode = this.commands.get(command.component);
    if (!byNode) this.commands.set(command.component, (byNode = new Map()));
    byNode.set(command.node, command);
    return () => { if (byNode!.get(command.node) === command) byNode!.delete(command.node); };
  }

  get(component: string, node: string): AdhocCommand | undefined {
    return this.commands.get(component)?.get(node);
  }

  /** The commands of a component, in the order they were added. */
  list(component: string): AdhocCommand[] {
    return [...(this.commands.get(component)?.values() ?? [])];
  }

  /**
   * The command, if `requester` (a bare JID) may run it on `domain`; else throws the stanza error
   * to answer: item-not-found for an unknown command, forbidden without the right.
   */
  async authorise(component: string, node: string, requester: string, domain: string): Promise<AdhocCommand> {
    const command = this.get(component, node);
    if (!command) throw new StanzaError('item-not-found', `no command ${node} on ${this.component(component)?.label ?? component}`);
    if (!(await command.allowed(requester, domain))) throw new StanzaError('forbidden', `you are not allowed to run ${command.name} on ${domain}`);
    return command;
  }

  /**
   * Runs one stage of a command outside XMPP, on behalf of `requester` (the admin web UI): the same
   * access check and the same `run` as a request to <component>@<domain>, without a command
   * session. With a submitted form it is the submission; without, the first stage. Errors are
   * thrown as StanzaError, as over XMPP.
   */
  async execute(component: string, node: string, request: { requester: JID; domain: string; values: FormValues }): Promise<CommandReply> {
    const command = await this.authorise(component, node, request.requester.bare, request.domain);
    return command.run({
      requester: request.requester,
      to: parseJid(`${component}@${request.domain}`),
      domain: request.domain,
      action: request.values.submitted ? 'complete' : 'execute',
      values: request.values,
      stage: request.values.submitted ? 1 : 0,
      state: {},
    });
  }

  /** The commands of a component `requester` may run on `domain`. */
  async visible(component: string, requester: string, domain: string): Promise<AdhocCommand[]> {
    const out: AdhocCommand[] = [];
    for (const c of this.list(component)) if (await c.allowed(requester, domain)) out.push(c);
    return out;
  }
}

const registries = new WeakMap<object, CommandRegistry>();

/** The server's command registry (one per server: keyed by its hooks object). */
export function commandRegistry(ctx: Pick<ModuleContext, 'hooks'>): CommandRegistry {
  let r = registries.get(ctx.hooks);
  if (!r) registries.set(ctx.hooks, (r = new CommandRegistry()));
  return r;
}

/** Who may do what: server administrators (the `admins` option) everywhere; owners and administrators of a virtual host on it. */
export function accessRules(ctx: Pick<ModuleContext, 'isAdmin' | 'vhosts'>) {
  return {
    isAdmin: (bare: string) => ctx.isAdmin(bare),
    /** May manage the users of `domain`. */
    managesDomain(bare: string, domain: string): boolean {
      if (ctx.isAdmin(bare)) return true;
      const v = ctx.vhosts.get(domain);
      return v !== undefined && (v.owner === bare || v.administrators.includes(bare));
    },
    /** Manages the users of at least one virtual host. */
    managesAnyDomain(bare: string): boolean {
      return ctx.isAdmin(bare) || ctx.vhosts.managedBy(bare).length > 0;
    },
    /** May change or remove the virtual host itself: server administrators and its owner. */
    ownsDomain(bare: string, domain: string): boolean {
      return ctx.isAdmin(bare) || ctx.vhosts.get(domain)?.owner === bare;
    },
  };
}

/** A command of one form: the form first, then its submission. */
export function oneForm(
  form: (step: CommandStep) => DataForm | Promise<DataForm>,
  submit: (step: CommandStep) => CommandReply | Promise<CommandReply>,
): (step: CommandStep) => Promise<CommandReply> {
  return async (step) => {
    if (step.values.submitted) return submit(step);
    return { status: 'executing', form: await form(step), actions: ['complete'] };
  };
}
