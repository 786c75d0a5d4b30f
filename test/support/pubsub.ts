// Small helpers for PubSub tests over raw sockets: logged-in clients, IQs to the service with
// unique ids, data forms, and checks of error replies (condition, XEP-0086 code, echoed payload).
import assert from 'node:assert/strict';
import type { Element } from '../../src/xml/element.js';
import { RawClient } from './raw-client.js';
import type { TestServer } from './server.js';

export const SERVICE = 'pubsub.localhost';
export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';

/** A client of `user@localhost` (password 'pw'), bound to `resource`, with initial presence sent unless told otherwise. */
export async function connect(t: TestServer, user: string, resource = 'r', presence = true): Promise<RawClient> {
  const client = await RawClient.connect(t.port);
  await client.login(user, 'pw', 'localhost', resource);
  if (presence) client.send('<presence/>');
  return client;
}

let counter = 0;

/** Sends an IQ (to the PubSub service unless `to` says otherwise) and returns the reply. */
export async function iq(client: RawClient, body: string, type: 'get' | 'set' = 'set', to = SERVICE): Promise<Element> {
  const id = `t${++counter}`;
  client.send(`<iq type='${type}' to='${to}' id='${id}'>${body}</iq>`);
  return client.waitForName('iq', { id });
}

export const pubsub = (body: string) => `<pubsub xmlns='${NS_PUBSUB}'>${body}</pubsub>`;
export const owner = (body: string) => `<pubsub xmlns='${NS_OWNER}'>${body}</pubsub>`;

/** A submitted data form with FORM_TYPE and the given fields. */
export function form(formType: string, fields: Record<string, string | string[]>): string {
  const values = (v: string | string[]) => (Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join('');
  return `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${formType}</value></field>`
    + Object.entries(fields).map(([name, v]) => `<field var='${name}'>${values(v)}</field>`).join('') + '</x>';
}

export const nodeConfig = (fields: Record<string, string | string[]>) => form(NODE_CONFIG, fields);

/** A result, or a failure that shows the error. */
export function assertResult(reply: Element): void {
  assert.equal(reply.attrs.type, 'result', `expected a result, got ${reply}`);
}

/** An error with the given condition, its XEP-0086 code, the PubSub condition if any, and the request's payload echoed. */
export function assertError(reply: Element, condition: string, code: number, pubsubCondition?: string): void {
  assert.equal(reply.attrs.type, 'error', `expected an error, got ${reply}`);
  const error = reply.getChild('error')!;
  assert.ok(error.getChild(condition, 'urn:ietf:params:xml:ns:xmpp-stanzas'), `expected ${condition}, got ${reply}`);
  assert.equal(error.attrs.code, String(code), `code of ${reply}`);
  if (pubsubCondition) assert.ok(error.getChild(pubsubCondition, NS_ERRORS), `expected ${pubsubCondition}, got ${reply}`);
  assert.ok(reply.elements().length > 1, `the request's payload is echoed: ${reply}`);
}

/** Event messages from the service received so far, removed from the client's queue. */
export function takeEvents(client: RawClient): Element[] {
  const events = client.stanzas.filter((s) => s.name === 'message' && s.attrs.from === SERVICE && s.getChild('event', NS_EVENT));
  for (const e of events) client.stanzas.splice(client.stanzas.indexOf(e), 1);
  return events;
}

/** Waits for an event message from the service that matches. */
export function nextEvent(client: RawClient, match: (event: Element) => boolean = () => true): Promise<Element> {
  return client.waitFor((s) => s.name === 'message' && s.attrs.from === SERVICE && !!s.getChild('event', NS_EVENT) && match(s.getChild('event', NS_EVENT)!),
    3000, 'a PubSub event');
}

export const asteriskState = (state: string, eid = '00:11:22:33:44:55') => `<state xmlns='http://asterisk.org' eid='${eid}' cachable='1'>${state}</state>`;
