// What the admin web UI changes, it changes by running the registered ad-hoc commands (VHost
// Manager, XEP-0133) on behalf of the logged-in administrator: the same access rules, validation
// and messages as over XMPP. Here: posted HTML form fields to a submitted data form, and a
// command's StanzaError to an HTTP status and message.
import type { ModuleContext } from '../../core/modules.js';
import { StanzaError, type StanzaErrorCondition } from '../../core/errors.js';
import type { JID } from '../../jid.js';
import { commandRegistry, type CommandReply } from '../adhoc/commands.js';
import { FormValues, type DataForm } from '../adhoc/forms.js';

export type CommandOutcome =
  | { ok: true; reply: CommandReply; message: string }
  | { ok: false; status: number; message: string };

const HTTP_STATUS: Partial<Record<StanzaErrorCondition, number>> = {
  'bad-request': 400,
  'not-acceptable': 400,
  'jid-malformed': 400,
  forbidden: 403,
  'not-allowed': 403,
  'not-authorized': 403,
  'item-not-found': 404,
  conflict: 409,
};

/** The fields of a posted HTML form (see html.ts dataForm): `_bool` and `_multi` name boolean and multi-line fields. */
export function postedFields(body: URLSearchParams): Map<string, string[]> {
  const booleans = new Set(body.getAll('_bool'));
  const multi = new Set(body.getAll('_multi'));
  const fields = new Map<string, string[]>();
  for (const [name, value] of body) {
    if (name.startsWith('_')) continue;
    const values = multi.has(name) ? value.split(/\r?\n/).filter((line) => line.trim() !== '') : [value];
    fields.set(name, [...(fields.get(name) ?? []), ...values]);
  }
  for (const name of booleans) fields.set(name, [fields.get(name)?.includes('1') ? '1' : '0']);
  return fields;
}

export function submitted(fields: ReadonlyMap<string, string[]> | Record<string, string>): FormValues {
  const entries = fields instanceof Map ? [...fields.entries()] : Object.entries(fields).map(([k, v]) => [k, [v]] as [string, string[]]);
  const form: DataForm = { type: 'submit', fields: entries.map(([name, values]) => ({ var: name, values })) };
  return new FormValues(form);
}

/** The text of a completed command's notes, for the page that follows. */
function summary(reply: CommandReply): string {
  return (reply.notes ?? []).map((n) => n.text).join(' ') || 'Done.';
}

/**
 * Runs one stage of a command as `admin` (bare JID with a resource naming the web UI), addressed
 * to the administrator's own virtual host, as an XMPP client would. `values` undefined asks for the
 * command's form.
 */
export async function runCommand(ctx: ModuleContext, admin: JID, component: string, node: string, values?: FormValues): Promise<CommandOutcome> {
  try {
    const reply = await commandRegistry(ctx).execute(component, node, { requester: admin, domain: admin.domain, values: values ?? new FormValues() });
    return { ok: true, reply, message: summary(reply) };
  } catch (e) {
    if (!(e instanceof StanzaError)) throw e;
    return { ok: false, status: HTTP_STATUS[e.condition] ?? 500, message: e.text ?? e.condition.replaceAll('-', ' ') };
  }
}

/** The form of a command's first stage (or of the stage `values` lead to). */
export async function commandForm(ctx: ModuleContext, admin: JID, component: string, node: string, values?: FormValues): Promise<DataForm | string> {
  const outcome = await runCommand(ctx, admin, component, node, values);
  if (!outcome.ok) return outcome.message;
  return outcome.reply.status === 'executing' ? outcome.reply.form : outcome.message;
}
