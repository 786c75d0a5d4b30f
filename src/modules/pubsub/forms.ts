// Data forms (XEP-0004) as PubSub uses them: reading a submitted form into field values, and
// writing forms and results. Which fields mean what is config.ts's business.
import { xml, type Element } from '../../xml/element.js';
import { pubsubError } from './errors.js';

export const NS_DATA = 'jabber:x:data';

export interface SubmittedForm {
  /**
   * Every FORM_TYPE value of the form. XEP-0068 expects one; COMPAT: Asterisk's node
   * configuration form carries two (pubsub#owner, then pubsub#node_config), so callers look for
   * the one they need among all of them.
   */
  formTypes: string[];
  /** Values by field name, FORM_TYPE excluded. */
  fields: Map<string, string[]>;
}

/**
 * Reads a submitted form. A form that is not one (wrong namespace, type other than submit, a
 * field without a name or given twice) is a bad request (XEP-0004 section 3.1).
 */
export function readSubmittedForm(x: Element): SubmittedForm {
  if (!x.is('x', NS_DATA)) throw pubsubError('bad-request', undefined, 'expected a jabber:x:data form');
  if (x.attrs.type !== 'submit') throw pubsubError('bad-request', undefined, "a submitted form has type='submit'");
  const formTypes: string[] = [];
  const fields = new Map<string, string[]>();
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var;
    if (!name) throw pubsubError('bad-request', undefined, 'a submitted field needs a var');
    const values = field.getChildren('value').map((v) => v.text());
    if (name === 'FORM_TYPE') {
      formTypes.push(...values);
      continue;
    }
    if (fields.has(name)) throw pubsubError('bad-request', undefined, `field ${name} is given twice`);
    fields.set(name, values);
  }
  return { formTypes, fields };
}

/** Checks that a form is of the expected type; a form without FORM_TYPE is accepted as that type. */
export function expectFormType(form: SubmittedForm, formType: string): void {
  if (form.formTypes.length > 0 && !form.formTypes.includes(formType)) {
    throw pubsubError('bad-request', undefined, `expected a form of type ${formType}`);
  }
}

export interface FormField {
  var: string;
  type?: 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single' | 'text-multi' | 'text-private' | 'text-single';
  label?: string;
  values: string[];
  /** Choices of a list field. */
  options?: readonly string[];
}

/** A form (type 'form' to fill in, 'result' to report, 'submit' to send) with its FORM_TYPE first. */
export function formElement(type: 'form' | 'result' | 'submit', formType: string, fields: FormField[]): Element {
  return xml('x', { xmlns: NS_DATA, type },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, formType)),
    fields.map((f) => xml('field', { var: f.var, type: f.type, label: f.label },
      (f.options ?? []).map((o) => xml('option', null, xml('value', null, o))),
      f.values.map((v) => xml('value', null, v)))));
}

/** XEP-0004 booleans: '1'/'true' and '0'/'false'. */
export function parseBoolean(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}
