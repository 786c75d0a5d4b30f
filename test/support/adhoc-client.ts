// A logged-in @xmpp/client with helpers to run ad-hoc commands (XEP-0050) and browse disco, as
// Psi or Gajim would: the tests drive every command through its forms over a real socket.
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import type { Element as XmppElement } from '@xmpp/xml';
import { startClient, type ClientOptions, type LiveClient } from './xmpp-client.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const NS_ADMIN = 'http://jabber.org/protocol/admin';
export const NS_DATA = 'jabber:x:data';


export interface CommandResult {
  command: XmppElement;
  status: string;
  sessionid: string | undefined;
  /** Actions offered (prev/next/complete), and the default one. */
  actions: string[];
  defaultAction: string | undefined;
  notes: { type: string; text: string }[];
  form: XmppElement | undefined;
  /** Values by field var. */
  values: Record<string, string[]>;
  /** Field types by var. */
  types: Record<string, string | undefined>;
}

export interface StanzaErrorInfo {
  condition: string;
  type: string;
  text: string | undefined;
  /** Application-specific condition (e.g. bad-payload), if any. */
  specific: string | undefined;
}

export interface Connected extends LiveClient {
  request(iq: XmppElement): Promise<XmppElement>;
  /** Sends an IQ and resolves to the stanza error it gets (fails if it gets a result). */
  requestError(iq: XmppElement): Promise<StanzaErrorInfo>;
  /** Runs one step of a command. `fields` fills a form of type submit. */
  command(to: string, node: string, options?: { action?: string; sessionid?: string; fields?: Record<string, string | string[]> }): Promise<CommandResult>;
  commandError(to: string, node: string, options?: { action?: string; sessionid?: string; fields?: Record<string, string | string[]> }): Promise<StanzaErrorInfo>;
  /** disco#items: [jid, node, name] per item. */
  items(to: string, node?: string): Promise<{ jid: string; node?: string; name?: string }[]>;
  stop(): Promise<void>;
}

export async function connectClient(port: number, username: string | undefined, options: ClientOptions = {}): Promise<Connected> {
  const live = await startClient(port, username, options);
  const { xmpp } = live;
  const self: Connected = {
    ...live,
    request: (iq) => xmpp.iqCaller.request(iq, 10_000),
    async requestError(iq) {
      let result: XmppElement | undefined;
      try {
        result = await xmpp.iqCaller.request(iq, 10_000);
      } catch (e) {
        const error = (e as { element?: XmppElement }).element;
        assert.ok(error, `expected a stanza error, got ${String(e)}`);
        return errorInfo(error!);
      }
      assert.fail(`expected an error, got ${result!.toString()}`);
    },
    async command(to, node, opts = {}) {
      const res = await xmpp.iqCaller.request(commandIq(to, node, opts), 10_000);
      return parseCommand(res.getChild('command', NS_COMMANDS)!);
    },
    commandError(to, node, opts = {}) {
      return self.requestError(commandIq(to, node, opts));
    },
    async items(to, node) {
      const res = await xmpp.iqCaller.request(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node })), 10_000);
      return res.getChild('query')!.getChildren('item').map((i: XmppElement) => ({ jid: i.attrs.jid, node: i.attrs.node, name: i.attrs.name }));
    },
    stop: () => xmpp.stop().then(() => undefined, () => undefined),
  };
  return self;
}

function commandIq(to: string, node: string, opts: { action?: string; sessionid?: string; fields?: Record<string, string | string[]> }): XmppElement {
  const x = opts.fields === undefined ? undefined : xml('x', { xmlns: NS_DATA, type: 'submit' },
    ...Object.entries(opts.fields).map(([k, v]) => xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((one) => xml('value', {}, one)))));
  return xml('iq', { type: 'set', to }, xml('command', { xmlns: NS_COMMANDS, node, action: opts.action, sessionid: opts.sessionid }, x));
}

export function parseCommand(command: XmppElement): CommandResult {
  const form = command.getChild('x', NS_DATA);
  const values: Record<string, string[]> = {};
  const types: Record<string, string | undefined> = {};
  for (const f of form?.getChildren('field') ?? []) {
    if (!f.attrs.var) continue;
    values[f.attrs.var] = f.getChildren('value').map((v: XmppElement) => v.text());
    types[f.attrs.var] = f.attrs.type;
  }
  const actionsEl = command.getChild('actions');
  return {
    command,
    status: command.attrs.status,
    sessionid: command.attrs.sessionid,
    actions: actionsEl ? actionsEl.children.filter((c): c is XmppElement => typeof c !== 'string').map((c) => c.name) : [],
    defaultAction: actionsEl?.attrs.execute,
    notes: command.getChildren('note').map((n: XmppElement) => ({ type: n.attrs.type, text: n.text() })),
    form,
    values,
    types,
  };
}

/** Reads an <error> element, or the one inside a stanza. */
export function errorInfo(stanzaOrError: XmppElement): StanzaErrorInfo {
  const error = stanzaOrError.is('error') ? stanzaOrError : stanzaOrError.getChild('error');
  assert.ok(error, `no <error> in ${stanzaOrError.toString()}`);
  const children = error!.children.filter((c): c is XmppElement => typeof c !== 'string');
  const condition = children.find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text');
  const specific = children.find((c) => c.attrs.xmlns !== 'urn:ietf:params:xml:ns:xmpp-stanzas');
  return { condition: condition?.name ?? '', type: error!.attrs.type, text: error!.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas') ?? undefined, specific: specific?.name };
}

/** Whether logging in works (and stops the client again). */
export async function canLogIn(port: number, username: string, domain = 'localhost', password = 'secret'): Promise<boolean> {
  try {
    const c = await connectClient(port, username, { domain, password });
    await c.stop();
    return true;
  } catch {
    return false;
  }
}
