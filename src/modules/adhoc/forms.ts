// Data forms (XEP-0004): building the forms commands send, and reading the ones clients submit.
import { Element, xml } from '../../xml/element.js';
import { JidError, parseJid } from '../../jid.js';
import { StanzaError } from '../../core/errors.js';

export const NS_DATA = 'jabber:x:data';
export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

export type FieldType = 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single' | 'text-multi' | 'text-private' | 'text-single';

export interface FormField {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values?: string[];
  options?: { label?: string; value: string }[];
}

export interface DataForm {
  type: 'form' | 'submit' | 'cancel' | 'result';
  title?: string;
  instructions?: string[];
  fields: FormField[];
  /** Table results (XEP-0004 3.4): the columns, then one row of fields per item. */
  reported?: FormField[];
  items?: FormField[][];
}

export function formElement(form: DataForm): Element {
  const x = xml('x', { xmlns: NS_DATA, type: form.type });
  if (form.title !== undefined) x.append(xml('title', null, form.title));
  for (const line of form.instructions ?? []) x.append(xml('instructions', null, line));
  if (form.reported) x.append(xml('reported', null, form.reported.map(fieldElement)));
  for (const item of form.items ?? []) x.append(xml('item', null, item.map(fieldElement)));
  for (const f of form.fields) x.append(fieldElement(f));
  return x;
}

function fieldElement(f: FormField): Element {
  return xml('field', { var: f.var, type: f.type, label: f.label },
    f.desc !== undefined ? xml('desc', null, f.desc) : undefined,
    f.required ? xml('required') : undefined,
    (f.values ?? []).map((v) => xml('value', null, v)),
    (f.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', null, o.value))));
}

export function parseForm(x: Element): DataForm {
  const type = x.attrs.type;
  if (type !== 'form' && type !== 'submit' && type !== 'cancel' && type !== 'result') throw new StanzaError('bad-request', 'a data form needs a type of form, submit, cancel or result');
  const fields = x.getChildren('field').map(parseField);
  return {
    type,
    title: x.getChildText('title'),
    instructions: x.getChildren('instructions').map((i) => i.text()),
    fields,
  };
}

function parseField(f: Element): FormField {
  return {
    var: f.attrs.var,
    type: f.attrs.type as FieldType | undefined,
    label: f.attrs.label,
    required: f.getChild('required') !== undefined,
    values: f.getChildren('value').map((v) => v.text()),
  };
}

/** The values of a submitted form, read by field name. Empty when nothing was submitted. */
export class FormValues {
  private readonly values = new Map<string, string[]>();
  /** Whether the request carried a form of type submit. */
  readonly submitted: boolean;

  constructor(form?: DataForm) {
    this.submitted = form?.type === 'submit';
    if (!this.submitted) return;
    for (const f of form!.fields) if (f.var !== undefined) this.values.set(f.var, f.values ?? []);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Every submitted field and its values. */
  entries(): [string, string[]][] {
    return [...this.values.entries()].map(([k, v]) => [k, [...v]]);
  }

  /** The first value, or undefined when the field is absent. */
  get(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }

  /** All values (a -multi field); empty when the field is absent. */
  all(name: string): string[] {
    return this.values.get(name) ?? [];
  }

  /** The first value, trimmed; undefined when absent or empty. */
  text(name: string): string | undefined {
    const v = this.get(name)?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** XEP-0004 booleans: 1/true and 0/false; `fallback` when absent or empty. */
  bool(name: string, fallback: boolean): boolean {
    const v = this.get(name)?.trim();
    if (v === undefined || v === '') return fallback;
    if (v === '1' || v === 'true') return true;
    if (v === '0' || v === 'false') return false;
    throw badPayload(`${name} must be a boolean (1, true, 0 or false)`);
  }

  /** The first value, which must be present and non-empty. */
  required(name: string, label = name): string {
    const v = this.text(name);
    if (v === undefined) throw badPayload(`${label} is required`);
    return v;
  }

  /** Every non-empty value of a -multi field, also split on commas and white space (as typed in one line). */
  list(name: string): string[] {
    return this.all(name).flatMap((v) => v.split(/[\s,]+/)).filter((v) => v !== '');
  }

  /** A bare JID (user@domain) field, normalised. */
  bareJid(name: string, label = name): string {
    return bareJidOf(this.required(name, label), label);
  }

  /** A whole number field; `fallback` when absent or empty. */
  integer(name: string, fallback: number, label = name): number {
    const v = this.text(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw badPayload(`${label} must be a whole number`);
    return n;
  }
}

/** Normalises `user@domain`; throws bad-payload naming the field when it is not one. */
export function bareJidOf(value: string, label: string): string {
  try {
    const jid = parseJid(value.trim());
    if (jid.local && jid.isBare()) return jid.bare;
  } catch (e) {
    if (!(e instanceof JidError)) throw e;
  }
  throw badPayload(`${label}: "${value}" is not a JID of the form user@domain`);
}

/** XEP-0050 4.6: the submitted form lacks or has a wrong value for a field. */
export function badPayload(text: string): StanzaError {
  return new StanzaError('bad-request', text, undefined, xml('bad-payload', { xmlns: NS_COMMANDS }));
}

// Field builders, as commands write their forms.
type FieldOptions = { label?: string; desc?: string; required?: boolean };
const field = (type: FieldType) => (name: string, value?: string | string[], options: FieldOptions = {}): FormField => ({
  var: name,
  type,
  ...options,
  values: value === undefined ? [] : Array.isArray(value) ? value : [value],
});

export const fields = {
  hidden: field('hidden'),
  text: field('text-single'),
  textMulti: field('text-multi'),
  password: field('text-private'),
  jid: field('jid-single'),
  jids: field('jid-multi'),
  boolean: (name: string, value: boolean | undefined, options: FieldOptions = {}): FormField =>
    ({ var: name, type: 'boolean', ...options, values: value === undefined ? [] : [value ? '1' : '0'] }),
  list: (name: string, value: string | undefined, choices: (string | { label?: string; value: string })[], options: FieldOptions = {}): FormField =>
    ({ var: name, type: 'list-single', ...options, values: value === undefined ? [] : [value], options: choices.map((c) => (typeof c === 'string' ? { value: c } : c)) }),
  fixed: (text: string, name?: string): FormField => ({ var: name, type: 'fixed', values: [text] }),
};
