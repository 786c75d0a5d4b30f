// Node configuration (XEP-0060 section 16.4.3, pubsub#node_config) and subscription options
// (section 16.4.2, pubsub#subscribe_options): their typed form, defaults, and the translation
// to and from data forms. One table per form drives parsing, the forms shown to clients and the
// values compared by publish-options preconditions.
import { pubsubError } from './errors.js';
import { expectFormType, parseBoolean, type FormField, type SubmittedForm } from './forms.js';

export const FORM_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const FORM_SUBSCRIBE_OPTIONS = 'http://jabber.org/protocol/pubsub#subscribe_options';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
export const FORM_META_DATA = 'http://jabber.org/protocol/pubsub#meta-data';

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist', 'authorize'] as const;
export const PUBLISH_MODELS = ['publishers', 'subscribers', 'open'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export type PublishModel = (typeof PUBLISH_MODELS)[number];

export interface NodeConfig {
  nodeType: 'leaf' | 'collection';
  title: string;
  description: string;
  /** Namespace every payload must be in; empty for any (pubsub#type). */
  payloadType: string;
  deliverPayloads: boolean;
  deliverNotifications: boolean;
  persistItems: boolean;
  maxItems: number;
  /** Seconds after which an item is gone (pubsub#item_expire); 0 for never. */
  itemExpire: number;
  maxPayloadSize: number;
  accessModel: AccessModel;
  rosterGroupsAllowed: string[];
  publishModel: PublishModel;
  /** Whether subscriptions are allowed at all (pubsub#subscribe). */
  subscribe: boolean;
  notifyRetract: boolean;
  notifyDelete: boolean;
  notifyConfig: boolean;
  notifySub: boolean;
  sendLastPublishedItem: 'never' | 'on_sub' | 'on_sub_and_presence';
  notificationType: 'normal' | 'headline';
  /** The collections this node belongs to (XEP-0248). */
  collection: string[];
}

type FieldKind =
  | { kind: 'boolean' }
  | { kind: 'text' }
  | { kind: 'texts' }
  | { kind: 'count' }
  | { kind: 'choice'; choices: readonly string[] };

interface FieldSpec {
  var: string;
  label: string;
  type: FieldKind;
}

const choice = (choices: readonly string[]): FieldKind => ({ kind: 'choice', choices });

const NODE_CONFIG_FIELDS: { [K in keyof NodeConfig]: FieldSpec } = {
  nodeType: { var: 'pubsub#node_type', label: 'Leaf or collection node', type: choice(['leaf', 'collection']) },
  title: { var: 'pubsub#title', label: 'A friendly name for the node', type: { kind: 'text' } },
  description: { var: 'pubsub#description', label: 'A description of the node', type: { kind: 'text' } },
  payloadType: { var: 'pubsub#type', label: 'The namespace of the payloads', type: { kind: 'text' } },
  deliverPayloads: { var: 'pubsub#deliver_payloads', label: 'Deliver payloads with event notifications', type: { kind: 'boolean' } },
  deliverNotifications: { var: 'pubsub#deliver_notifications', label: 'Deliver event notifications', type: { kind: 'boolean' } },
  persistItems: { var: 'pubsub#persist_items', label: 'Persist items to storage', type: { kind: 'boolean' } },
  maxItems: { var: 'pubsub#max_items', label: 'Max number of items to persist', type: { kind: 'count' } },
  itemExpire: { var: 'pubsub#item_expire', label: 'Number of seconds after which to automatically purge items (0: never)', type: { kind: 'count' } },
  maxPayloadSize: { var: 'pubsub#max_payload_size', label: 'Max payload size in bytes', type: { kind: 'count' } },
  accessModel: { var: 'pubsub#access_model', label: 'Specify the subscriber model', type: choice(ACCESS_MODELS) },
  rosterGroupsAllowed: { var: 'pubsub#roster_groups_allowed', label: 'Roster groups allowed to subscribe', type: { kind: 'texts' } },
  publishModel: { var: 'pubsub#publish_model', label: 'Specify the publisher model', type: choice(PUBLISH_MODELS) },
  subscribe: { var: 'pubsub#subscribe', label: 'Whether to allow subscriptions', type: { kind: 'boolean' } },
  notifyRetract: { var: 'pubsub#notify_retract', label: 'Notify subscribers when items are removed from the node', type: { kind: 'boolean' } },
  notifyDelete: { var: 'pubsub#notify_delete', label: 'Notify subscribers when the node is deleted', type: { kind: 'boolean' } },
  notifyConfig: { var: 'pubsub#notify_config', label: 'Notify subscribers when the node configuration changes', type: { kind: 'boolean' } },
  notifySub: { var: 'pubsub#notify_sub', label: 'Notify owners about new subscribers and unsubscribes', type: { kind: 'boolean' } },
  sendLastPublishedItem: {
    var: 'pubsub#send_last_published_item', label: 'When to send the last published item', type: choice(['never', 'on_sub', 'on_sub_and_presence']),
  },
  notificationType: { var: 'pubsub#notification_type', label: 'Message type of event notifications', type: choice(['normal', 'headline']) },
  collection: { var: 'pubsub#collection', label: 'The collections with which the node is affiliated', type: { kind: 'texts' } },
};

const NODE_CONFIG_BY_VAR = new Map(Object.entries(NODE_CONFIG_FIELDS).map(([key, spec]) => [spec.var, key as keyof NodeConfig]));

/** The configuration a node gets when its creator says nothing (and the base of every node's). */
export function defaultNodeConfig(limits: { maxItems: number; maxPayloadSize: number }): NodeConfig {
  return {
    nodeType: 'leaf',
    title: '',
    description: '',
    payloadType: '',
    deliverPayloads: true,
    deliverNotifications: true,
    persistItems: true,
    maxItems: limits.maxItems,
    itemExpire: 0,
    maxPayloadSize: limits.maxPayloadSize,
    accessModel: 'open',
    rosterGroupsAllowed: [],
    publishModel: 'publishers',
    subscribe: true,
    notifyRetract: true,
    notifyDelete: true,
    notifyConfig: false,
    notifySub: false,
    sendLastPublishedItem: 'never',
    notificationType: 'headline',
    collection: [],
  };
}

/** A stored configuration over the current defaults: options added since it was written get their default. */
export function restoreNodeConfig(stored: Record<string, unknown>, defaults: NodeConfig): NodeConfig {
  const config = { ...defaults };
  for (const key of Object.keys(NODE_CONFIG_FIELDS) as (keyof NodeConfig)[]) {
    if (stored[key] !== undefined) (config as Record<string, unknown>)[key] = stored[key];
  }
  return config;
}

function formatValues(spec: FieldSpec, value: unknown): string[] {
  switch (spec.type.kind) {
    case 'boolean': return [value ? '1' : '0'];
    case 'texts': return value as string[];
    default: return value === '' ? [] : [String(value)];
  }
}

function parseValues(spec: FieldSpec, values: string[], limit: number | undefined): unknown {
  const invalid = () => pubsubError('not-acceptable', 'invalid-options', `invalid value for ${spec.var}`);
  const single = values[0] ?? '';
  switch (spec.type.kind) {
    case 'boolean': {
      const b = parseBoolean(single);
      if (b === undefined) throw invalid();
      return b;
    }
    case 'text': return single;
    case 'texts': return values.filter((v) => v !== '');
    case 'count': {
      // 'max' (XEP-0060 section 7.1.3.6's value for "as many as the service allows").
      if (single === 'max' && limit !== undefined) return limit;
      if (!/^\d+$/.test(single)) throw invalid();
      const n = Number(single);
      if (limit !== undefined && n > limit) throw invalid();
      return n;
    }
    case 'choice': {
      if (!spec.type.choices.includes(single)) throw invalid();
      return single;
    }
  }
}

/**
 * Applies a submitted node_config form to a configuration. Fields this service does not know
 * are ignored (clients fill in whole forms of other servers); known fields with invalid values
 * make the form not acceptable (XEP-0060 section 8.2.5.4).
 */
export function applyNodeConfigForm(form: SubmittedForm, base: NodeConfig, limits: { maxItems: number; maxPayloadSize: number }): NodeConfig {
  expectFormType(form, FORM_NODE_CONFIG);
  const config = { ...base };
  for (const [name, values] of form.fields) {
    const key = NODE_CONFIG_BY_VAR.get(name);
    if (!key) continue;
    const limit = key === 'maxItems' ? limits.maxItems : key === 'maxPayloadSize' ? limits.maxPayloadSize : undefined;
    (config as Record<string, unknown>)[key] = parseValues(NODE_CONFIG_FIELDS[key], values, limit);
  }
  return config;
}

/** The node_config form of a configuration (for configure, default and notify_config). */
export function nodeConfigFields(config: NodeConfig): FormField[] {
  return (Object.keys(NODE_CONFIG_FIELDS) as (keyof NodeConfig)[]).map((key) => {
    const spec = NODE_CONFIG_FIELDS[key];
    return {
      var: spec.var,
      label: spec.label,
      type: spec.type.kind === 'boolean' ? 'boolean' : spec.type.kind === 'choice' ? 'list-single' : spec.type.kind === 'texts' ? 'text-multi' : 'text-single',
      options: spec.type.kind === 'choice' ? spec.type.choices : undefined,
      values: formatValues(spec, config[key]),
    };
  });
}

/** A node option's value as a form carries it, for publish-options preconditions; undefined for unknown options. */
export function nodeConfigValues(config: NodeConfig, field: string): string[] | undefined {
  const key = NODE_CONFIG_BY_VAR.get(field);
  return key ? formatValues(NODE_CONFIG_FIELDS[key], config[key]) : undefined;
}

export function isNodeConfigField(field: string): boolean {
  return NODE_CONFIG_BY_VAR.has(field);
}

/** Subscription options (XEP-0060 section 6.3, XEP-0248 section 3 for the collection ones). */
export interface SubscriptionOptions {
  deliver: boolean;
  /** Presence <show> values at which notifications are wanted; empty for any. */
  showValues: string[];
  subscriptionType: 'items' | 'nodes';
  subscriptionDepth: '1' | 'all';
  /** 'presence' (ends when the subscriber goes offline), a date-time, or undefined for never. */
  expire?: string;
}

export function defaultSubscriptionOptions(): SubscriptionOptions {
  return { deliver: true, showValues: [], subscriptionType: 'items', subscriptionDepth: '1' };
}

export function restoreSubscriptionOptions(stored: Record<string, unknown>): SubscriptionOptions {
  return { ...defaultSubscriptionOptions(), ...(stored as Partial<SubscriptionOptions>) };
}

const SHOW_VALUES = ['away', 'chat', 'dnd', 'online', 'xa'];

/** Applies a submitted subscribe_options form; an invalid value is bad-request with invalid-options (section 6.3.7). */
export function applySubscriptionOptionsForm(form: SubmittedForm, base: SubscriptionOptions): SubscriptionOptions {
  expectFormType(form, FORM_SUBSCRIBE_OPTIONS);
  const invalid = (field: string) => pubsubError('bad-request', 'invalid-options', `invalid value for ${field}`);
  const options = { ...base };
  for (const [name, values] of form.fields) {
    const single = values[0] ?? '';
    switch (name) {
      case 'pubsub#deliver': {
        const b = parseBoolean(single);
        if (b === undefined) throw invalid(name);
        options.deliver = b;
        break;
      }
      case 'pubsub#show-values':
        if (values.some((v) => !SHOW_VALUES.includes(v))) throw invalid(name);
        options.showValues = values;
        break;
      case 'pubsub#subscription_type':
        if (single !== 'items' && single !== 'nodes') throw invalid(name);
        options.subscriptionType = single;
        break;
      case 'pubsub#subscription_depth':
        if (single !== '1' && single !== 'all') throw invalid(name);
        options.subscriptionDepth = single;
        break;
      case 'pubsub#expire':
        if (single === '') delete options.expire;
        else if (single === 'presence' || !Number.isNaN(Date.parse(single))) options.expire = single;
        else throw invalid(name);
        break;
      default:
        break; // options of other servers (digest, include_body, ...) are not offered here and have no effect
    }
  }
  return options;
}

export function subscriptionOptionsFields(options: SubscriptionOptions, forCollection: boolean): FormField[] {
  const fields: FormField[] = [
    { var: 'pubsub#deliver', type: 'boolean', label: 'Enable delivery?', values: [options.deliver ? '1' : '0'] },
    { var: 'pubsub#show-values', type: 'list-multi', label: 'Receive notifications only when your presence is one of these', options: SHOW_VALUES, values: options.showValues },
    { var: 'pubsub#expire', type: 'text-single', label: "When the subscription ends: a date-time, or 'presence'", values: options.expire ? [options.expire] : [] },
  ];
  if (forCollection) {
    fields.push(
      { var: 'pubsub#subscription_type', type: 'list-single', label: 'Receive items or new nodes', options: ['items', 'nodes'], values: [options.subscriptionType] },
      { var: 'pubsub#subscription_depth', type: 'list-single', label: 'How deep the subscription reaches', options: ['1', 'all'], values: [options.subscriptionDepth] },
    );
  }
  return fields;
}
