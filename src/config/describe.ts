// Turns the configuration schema into a tree of documented options, and a configuration into a
// flat list of option values. `dump-config`, `check`, the load errors and config/example.yaml are
// all built from this, so the documentation cannot drift from what the loader accepts.
//
// The zod schema is read through z.toJSONSchema (input side: defaults as the user would write
// them), a stable public format, rather than through zod's internal definitions.
import { z } from 'zod';

export interface OptionSpec {
  key: string;
  description: string;
  hasDefault: boolean;
  default?: unknown;
  /** Must be given: no default and not optional (e.g. storage.url when storage.type is postgres). */
  required: boolean;
  /** Set for an option of one variant of a section, e.g. storage.url only when storage.type is postgres. */
  when?: { key: string; value: string };
  shape: OptionShape;
}

export type OptionShape =
  | { kind: 'value'; type: string }
  | { kind: 'section'; options: OptionSpec[] }
  /** Entries under keys chosen by the user, e.g. vhost-options keyed by domain. */
  | { kind: 'map'; keyName: string; entry: OptionShape };

export type PathSegment = string | number;

export interface OptionValue {
  path: PathSegment[];
  spec: OptionSpec;
  value: unknown;
}

interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
}

/** The options of an object schema (the full configuration schema, or one module's). */
export function describeSchema(schema: z.ZodObject): OptionSpec[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return sectionOptions(json);
}

function sectionOptions(json: JsonSchema): OptionSpec[] {
  const variants = json.oneOf ?? json.anyOf;
  if (variants) return variantOptions(variants, json.default);
  const required = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {}).map(([key, property]) => optionSpec(key, property, required.has(key)));
}

function optionSpec(key: string, json: JsonSchema, required: boolean): OptionSpec {
  const spec: OptionSpec = { key, description: json.description ?? '', hasDefault: 'default' in json, required, shape: shapeOf(json) };
  if (spec.hasDefault) spec.default = json.default;
  return spec;
}

function shapeOf(json: JsonSchema): OptionShape {
  const variants = json.oneOf ?? json.anyOf;
  // A choice between plain values (workers: auto or a number) is one value, not a section.
  if (variants?.every((v) => v.type !== 'object')) return { kind: 'value', type: variants.map(typeOf).join(' or ') };
  if (variants) return { kind: 'section', options: sectionOptions(json) };
  if (json.type === 'object' && json.properties) return { kind: 'section', options: sectionOptions(json) };
  if (json.type === 'object' && typeof json.additionalProperties === 'object') {
    return { kind: 'map', keyName: json.propertyNames?.title ?? 'name', entry: shapeOf(json.additionalProperties) };
  }
  return { kind: 'value', type: typeOf(json) };
}

/**
 * A discriminated union (storage: sqlite | postgres) reads as one section: the discriminator
 * option, then each variant's own options marked with the discriminator value they need.
 */
function variantOptions(variants: JsonSchema[], unionDefault: unknown): OptionSpec[] {
  const discriminator = Object.keys(variants[0]?.properties ?? {})
    .find((key) => variants.every((v) => v.properties?.[key]?.const !== undefined));
  if (!discriminator) return [];
  const values = variants.map((v) => String(v.properties![discriminator]!.const));
  const defaultValue = (unionDefault as Record<string, unknown> | undefined)?.[discriminator];
  const options: OptionSpec[] = [{
    key: discriminator,
    description: 'Selects which of the options below apply',
    hasDefault: defaultValue !== undefined,
    ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    required: defaultValue === undefined,
    shape: { kind: 'value', type: `one of: ${values.join(', ')}` },
  }];
  variants.forEach((variant, index) => {
    for (const option of sectionOptions(variant)) {
      if (option.key !== discriminator) options.push({ ...option, when: { key: discriminator, value: values[index]! } });
    }
  });
  return options;
}

function typeOf(json: JsonSchema): string {
  if (json.enum) return `one of: ${json.enum.join(', ')}`;
  if (json.const !== undefined) return JSON.stringify(json.const);
  switch (json.type) {
    case 'boolean': return 'true or false';
    case 'integer': return 'integer' + rangeOf(json);
    case 'number': return 'number' + rangeOf(json);
    case 'array': {
      const item = json.items ? typeOf(json.items) : 'value';
      return /^[\w ]+$/.test(item) ? `list of ${item}s` : `list, each ${item}`;
    }
    case 'string': return json.title ?? 'string';
    default: return json.title ?? json.type ?? 'value';
  }
}

function rangeOf(json: JsonSchema): string {
  // z.int() reports the safe-integer limits, which are not worth documenting.
  const min = json.minimum !== undefined && json.minimum > Number.MIN_SAFE_INTEGER ? json.minimum : undefined;
  const max = json.maximum !== undefined && json.maximum < Number.MAX_SAFE_INTEGER ? json.maximum : undefined;
  if (min !== undefined && max !== undefined) return `, ${min} to ${max}`;
  if (min !== undefined) return `, at least ${min}`;
  if (max !== undefined) return `, at most ${max}`;
  return '';
}

/**
 * Every option of a configuration with its value, one entry per leaf: a section expands into its
 * options (only those of the chosen variant), a map into its entries, and an empty map stays one
 * option. Options without a value (optional, not set) are included with `undefined`.
 */
export function optionValues(options: OptionSpec[], config: Record<string, unknown>, path: PathSegment[] = []): OptionValue[] {
  const out: OptionValue[] = [];
  for (const spec of options) {
    if (spec.when && config[spec.when.key] !== spec.when.value) continue;
    const value = config[spec.key];
    const optionPath = [...path, spec.key];
    if (spec.shape.kind === 'section') {
      out.push(...optionValues(spec.shape.options, asRecord(value), optionPath));
    } else if (spec.shape.kind === 'map' && spec.shape.entry.kind === 'section' && Object.keys(asRecord(value)).length > 0) {
      for (const [key, entry] of Object.entries(asRecord(value))) {
        out.push(...optionValues(spec.shape.entry.options, asRecord(entry), [...optionPath, key]));
      }
    } else {
      out.push({ path: optionPath, spec, value });
    }
  }
  return out;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : {};
}

/** The options directly under a path of the schema, or undefined when the path names no section. */
export function optionsAt(options: OptionSpec[], path: PathSegment[]): OptionSpec[] | undefined {
  let current: OptionShape = { kind: 'section', options };
  for (const segment of path) {
    if (current.kind === 'map') current = current.entry;
    else if (current.kind === 'section') {
      const next: OptionSpec | undefined = current.options.find((o) => o.key === segment);
      if (!next) return undefined;
      current = next.shape;
    } else return undefined;
  }
  if (current.kind === 'map') current = current.entry;
  return current.kind === 'section' ? current.options : undefined;
}

/**
 * An option path as users read it: keys joined with dots; list positions and keys that are not
 * plain words (a domain in vhost-options) in brackets, so that `vhost-options[example.com].anonymous-login`
 * cannot be misread.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number' || !/^[A-Za-z0-9_-]+$/.test(segment)) out += `[${segment}]`;
    else out += out ? `.${segment}` : segment;
  }
  return out;
}
