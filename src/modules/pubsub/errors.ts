// PubSub errors: a stanza error condition plus, where XEP-0060 names one, the application
// condition of the pubsub#errors namespace (section 7.1.3 and the other error cases). The core
// adds the XEP-0086 code and echoes the request's payload.
import { StanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../../core/errors.js';
import { xml } from '../../xml/element.js';

export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';

/** The application-specific conditions of XEP-0060 section 14 (schema of pubsub#errors). */
export type PubSubCondition =
  | 'closed-node' | 'configuration-required' | 'invalid-jid' | 'invalid-options' | 'invalid-payload' | 'invalid-subid'
  | 'item-forbidden' | 'item-required' | 'jid-required' | 'max-items-exceeded' | 'max-nodes-exceeded' | 'nodeid-required'
  | 'not-in-roster-group' | 'not-subscribed' | 'payload-too-big' | 'payload-required' | 'pending-subscription'
  | 'precondition-not-met' | 'presence-subscription-required' | 'subid-required' | 'too-many-subscriptions' | 'unsupported'
  | 'unsupported-access-model';

export function pubsubError(condition: StanzaErrorCondition, pubsubCondition?: PubSubCondition, text?: string, type?: StanzaErrorType): StanzaError {
  const app = pubsubCondition ? xml(pubsubCondition, { xmlns: NS_PUBSUB_ERRORS }) : undefined;
  return new StanzaError(condition, text, type, app);
}

/** feature-not-implemented with <unsupported feature='...'/> (XEP-0060 section 10 names the features). */
export function unsupported(feature: string, text?: string): StanzaError {
  return new StanzaError('feature-not-implemented', text, undefined, xml('unsupported', { xmlns: NS_PUBSUB_ERRORS, feature }));
}

export const nodeNotFound = (node: string) => pubsubError('item-not-found', undefined, `no node ${node}`);
export const forbidden = (text: string) => pubsubError('forbidden', undefined, text);
