import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fields } from '../adhoc/forms.js';
import { dataForm, html } from './html.js';
import { postedFields } from './run-command.js';

describe('admin web HTML', () => {
  it('escapes every interpolated value unless it is already markup', () => {
    const name = `<script>alert("x")</script>&'`;
    assert.equal(html`<p title="${name}">${name}</p>`.text,
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>');
    assert.equal(html`<ul>${['a<', html`<b>b</b>`]}</ul>`.text, '<ul>a&lt;<b>b</b></ul>');
    assert.equal(html`${undefined}${null}${false}${0}`.text, '0');
  });

  it('renders a data form as HTML fields that post back as the same data form', () => {
    const form = dataForm({
      type: 'form', instructions: ['Fill <in>'], fields: [
        fields.hidden('FORM_TYPE', 'urn:x'),
        fields.text('domain', 'a"b', { label: 'Domain', required: true }),
        fields.boolean('enabled', true, { label: 'Enabled' }),
        fields.boolean('tls', false),
        fields.password('password', 'never shown'),
        fields.jids('admins', ['x@y', 'z@y']),
        fields.list('max', '50', ['25', '50']),
        fields.fixed('Just text'),
      ],
    }, { id: 'f', action: '/admin/x', csrf: 'tok', submit: 'Go', values: new Map([['tls', ['1']]]) }).text;
    assert.match(form, /<input type="hidden" name="_csrf" value="tok">/);
    assert.match(form, /<p class="instructions">Fill &lt;in&gt;<\/p>/);
    assert.match(form, /id="f-domain" name="domain" value="a&quot;b" required/);
    assert.match(form, /name="_bool" value="enabled"><input type="checkbox" id="f-enabled" name="enabled" value="1" checked>/);
    assert.match(form, /id="f-tls" name="tls" value="1" checked>/, 'the values given override the form\'s');
    assert.doesNotMatch(form, /never shown/, 'passwords are never filled in');
    assert.match(form, /name="_multi" value="admins"><textarea id="f-admins" name="admins" rows="3">x@y\nz@y<\/textarea>/);
    assert.match(form, /<option value="50" selected>50<\/option>/);
    assert.match(form, /<p class="fixed">Just text<\/p>/);
  });

  it('reads posted fields: unchecked boxes are false, multi-line fields one value a line, own fields left out', () => {
    const posted = postedFields(new URLSearchParams([
      ['_csrf', 't'], ['_bool', 'enabled'], ['_bool', 'tls'], ['tls', '1'], ['_multi', 'admins'], ['admins', 'a@b\r\n\r\nc@d\n'], ['domain', ' x '],
    ]));
    assert.deepEqual(Object.fromEntries(posted), { enabled: ['0'], tls: ['1'], admins: ['a@b', 'c@d'], domain: [' x '] });
  });
});
