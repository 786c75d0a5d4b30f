// Server-rendered HTML for the admin web UI: an escaping template tag, the page layout, and data
// forms (XEP-0004) as HTML forms, so the pages show exactly the forms the ad-hoc commands send
// over XMPP. The tag is a few lines of our own: pages are small and a template engine would be a
// dependency for what string escaping already does.
import type { DataForm, FormField } from '../adhoc/forms.js';

/** Markup that is already safe: interpolated as is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function piece(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** `html\`<p>${text}</p>\``: every interpolated value is escaped unless it is Html; arrays are joined. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => { out += piece(v) + strings[i + 1]!; });
  return new Html(out);
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface PageFrame {
  title: string;
  /** The logged-in administrator's bare JID; without one the page has no navigation. */
  admin?: string;
  csrf?: string;
  /** Which navigation entry is current. */
  section?: string;
  flash?: Flash;
  body: Html;
}

const SECTIONS: [path: string, label: string][] = [
  ['/admin/', 'Overview'],
  ['/admin/domains', 'Domains'],
  ['/admin/users', 'Users'],
  ['/admin/sessions', 'Sessions'],
  ['/admin/pubsub', 'PubSub'],
  ['/admin/cluster', 'Cluster'],
  ['/admin/stats', 'Statistics'],
];

export function page(frame: PageFrame): string {
  const nav = frame.admin === undefined ? '' : html`
    <nav>
      <strong class="brand">Switchboard admin</strong>
      ${SECTIONS.map(([path, label]) => html`<a href="${path}"${new Html(frame.section === path ? ' aria-current="page"' : '')}>${label}</a>`)}
      <a href="/panel/" class="external">Operator panel</a>
      <form method="post" action="/admin/logout" class="logout">
        <input type="hidden" name="_csrf" value="${frame.csrf}">
        <span class="who">${frame.admin}</span> <button type="submit">Log out</button>
      </form>
    </nav>`;
  const flash = frame.flash ? html`<p class="flash ${frame.flash.kind}" role="${frame.flash.kind === 'error' ? 'alert' : 'status'}">${frame.flash.text}</p>` : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · Switchboard admin</title>
<link rel="stylesheet" href="/admin/assets/admin.css">
<script src="/admin/assets/admin.js" defer></script>
</head>
<body>
${nav}
<main>
<h1>${frame.title}</h1>
${flash}
${frame.body}
</main>
</body>
</html>
`.text;
}

export interface FormRendering {
  /** Distinguishes the HTML ids of several forms on one page. */
  id: string;
  action: string;
  csrf: string;
  submit: string;
  /** Values to show instead of the form's own (a submission that was refused). */
  values?: ReadonlyMap<string, string[]>;
  /** Extra hidden inputs (e.g. the domain a form is about). */
  hidden?: Record<string, string>;
  /** Asks before submitting (with JavaScript). */
  confirm?: string;
  className?: string;
}

/**
 * A data form as an HTML form. Unchecked checkboxes send nothing, so the names of boolean fields
 * go in `_bool` (absent means false); those of multi-line fields in `_multi` (one value a line).
 * Password fields are never filled in.
 */
export function dataForm(form: DataForm, r: FormRendering): Html {
  const valuesOf = (f: FormField) => (f.var !== undefined && r.values?.has(f.var) ? r.values.get(f.var)! : f.values ?? []);
  const fieldHtml = (f: FormField): Html => {
    const name = f.var ?? '';
    const id = `${r.id}-${name}`;
    const values = valuesOf(f);
    const label = html`<label for="${id}">${f.label ?? name}${f.required ? html`<span class="required" title="required"> *</span>` : ''}</label>`;
    const desc = f.desc ? html`<small>${f.desc}</small>` : '';
    switch (f.type) {
      case 'hidden':
        return html`<input type="hidden" name="${name}" value="${values[0] ?? ''}">`;
      case 'fixed':
        return html`<p class="fixed">${values.join(' ')}</p>`;
      case 'boolean': {
        const checked = values[0] === '1' || values[0] === 'true';
        return html`<div class="field check"><input type="hidden" name="_bool" value="${name}"><input type="checkbox" id="${id}" name="${name}" value="1"${new Html(checked ? ' checked' : '')}> ${label} ${desc}</div>`;
      }
      case 'text-private':
        return html`<div class="field">${label}<input type="password" id="${id}" name="${name}" autocomplete="new-password"${new Html(f.required ? ' required' : '')}>${desc}</div>`;
      case 'text-multi':
      case 'jid-multi':
        return html`<div class="field">${label}<input type="hidden" name="_multi" value="${name}"><textarea id="${id}" name="${name}" rows="3">${values.join('\n')}</textarea>${desc}</div>`;
      case 'list-single':
      case 'list-multi': {
        const options = (f.options ?? []).map((o) => html`<option value="${o.value}"${new Html(values.includes(o.value) ? ' selected' : '')}>${o.label ?? o.value}</option>`);
        return html`<div class="field">${label}<select id="${id}" name="${name}"${new Html(f.type === 'list-multi' ? ' multiple' : '')}>${options}</select>${desc}</div>`;
      }
      default:
        return html`<div class="field">${label}<input type="text" id="${id}" name="${name}" value="${values[0] ?? ''}"${new Html(f.required ? ' required' : '')}>${desc}</div>`;
    }
  };
  const hidden = Object.entries(r.hidden ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`);
  return html`<form method="post" action="${r.action}" id="${r.id}" class="${r.className ?? 'command'}"${new Html(r.confirm ? html` data-confirm="${r.confirm}"`.text : '')}>
    <input type="hidden" name="_csrf" value="${r.csrf}">${hidden}
    ${(form.instructions ?? []).map((i) => html`<p class="instructions">${i}</p>`)}
    ${form.fields.map(fieldHtml)}
    <button type="submit">${r.submit}</button>
  </form>`;
}

/** A table of rows; cells are escaped unless Html. */
export function table(headers: string[], rows: unknown[][], empty = 'None.'): Html {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map((row) => html`<tr>${row.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody></table>`;
}
