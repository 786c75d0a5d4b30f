// Stream errors (RFC 6120 4.9) and stanza errors (RFC 6120 8.3), the one catalogue of both.
import { Element, xml } from '../xml/element.js';

export const NS_STREAMS = 'http://etherx.jabber.org/streams';
export const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';
export const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone' | 'host-unknown'
  | 'improper-addressing' | 'internal-server-error' | 'invalid-from' | 'invalid-namespace' | 'invalid-xml'
  | 'not-authorized' | 'not-well-formed' | 'policy-violation' | 'remote-connection-failed' | 'reset'
  | 'resource-constraint' | 'restricted-xml' | 'see-other-host' | 'system-shutdown' | 'undefined-condition'
  | 'unsupported-encoding' | 'unsupported-feature' | 'unsupported-stanza-type' | 'unsupported-version';

export class StreamError extends Error {
  constructor(readonly condition: StreamErrorCondition, readonly text?: string) {
    super(text ? `${condition}: ${text}` : condition);
  }

  toElement(): Element {
    return xml('stream:error', null,
      xml(this.condition, { xmlns: NS_STREAM_ERRORS }),
      this.text ? xml('text', { xmlns: NS_STREAM_ERRORS, 'xml:lang': 'en' }, this.text) : undefined);
  }
}

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

// Default type and XEP-0086 legacy code per condition. COMPAT: Asterisk res_xmpp reads the
// `code` attribute of every PubSub error without checking it exists, so every error carries it.
const CONDITIONS = {
  'bad-request': ['modify', 400],
  conflict: ['cancel', 409],
  'feature-not-implemented': ['cancel', 501],
  forbidden: ['auth', 403],
  gone: ['cancel', 302],
  'internal-server-error': ['wait', 500],
  'item-not-found': ['cancel', 404],
  'jid-malformed': ['modify', 400],
  'not-acceptable': ['modify', 406],
  'not-allowed': ['cancel', 405],
  'not-authorized': ['auth', 401],
  'payment-required': ['auth', 402],
  'policy-violation': ['modify', 406],
  'recipient-unavailable': ['wait', 404],
  redirect: ['modify', 302],
  'registration-required': ['auth', 407],
  'remote-server-not-found': ['cancel', 404],
  'remote-server-timeout': ['wait', 504],
  'resource-constraint': ['wait', 500],
  'service-unavailable': ['cancel', 503],
  'subscription-required': ['auth', 407],
  'undefined-condition': ['wait', 500],
  'unexpected-request': ['wait', 400],
} as const satisfies Record<string, readonly [StanzaErrorType, number]>;

export type StanzaErrorCondition = keyof typeof CONDITIONS;

export class StanzaError extends Error {
  readonly type: StanzaErrorType;

  /** `appCondition` is an application-specific child of <error>, e.g. a PubSub condition. */
  constructor(readonly condition: StanzaErrorCondition, readonly text?: string, type?: StanzaErrorType, readonly appCondition?: Element) {
    super(text ? `${condition}: ${text}` : condition);
    this.type = type ?? CONDITIONS[condition][0];
  }

  get code(): number {
    return CONDITIONS[this.condition][1];
  }

  toElement(by?: string): Element {
    return xml('error', { type: this.type, code: this.code, by },
      xml(this.condition, { xmlns: NS_STANZAS }),
      this.text ? xml('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, this.text) : undefined,
      this.appCondition);
  }
}

/**
 * The error reply to a stanza: addresses swapped, type='error', the original payload echoed
 * (RFC 6120 8.3.1 allows it; COMPAT: Asterisk needs the echoed <pubsub> to know which node failed).
 */
export function errorReply(stanza: Element, error: StanzaError, from?: string): Element {
  const attrs: Record<string, string> = { type: 'error' };
  const replyFrom = stanza.attrs.to ?? from;
  if (replyFrom !== undefined) attrs.from = replyFrom;
  if (stanza.attrs.from !== undefined) attrs.to = stanza.attrs.from;
  if (stanza.attrs.id !== undefined) attrs.id = stanza.attrs.id;
  if (stanza.attrs.xmlns !== undefined) attrs.xmlns = stanza.attrs.xmlns;
  const children = stanza.children.filter((c) => typeof c !== 'string' && c.name !== 'error');
  return new Element(stanza.name, attrs, [...children, error.toElement()]);
}
