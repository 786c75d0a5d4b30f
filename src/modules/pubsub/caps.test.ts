// XEP-0115 verification strings, against the two worked examples of the XEP (section 5.2 and 5.3).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '../../xml/element.js';
import { capsHash, capsOf, sameCaps } from './caps.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const features = (...vars: string[]) => vars.map((v) => xml('feature', { var: v }));
const field = (name: string, ...values: string[]) => xml('field', { var: name }, values.map((v) => xml('value', null, v)));

describe('entity caps hash', () => {
  it('matches the simple example (Exodus)', () => {
    const query = xml('query', { xmlns: NS_DISCO_INFO },
      xml('identity', { category: 'client', name: 'Exodus 0.9.1', type: 'pc' }),
      features('http://jabber.org/protocol/muc', 'http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/disco#info'));
    assert.equal(capsHash(query, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  });

  it('matches the complex example (Psi: languages, an extended form, unordered input)', () => {
    const query = xml('query', { xmlns: NS_DISCO_INFO },
      xml('identity', { 'xml:lang': 'en', category: 'client', name: 'Psi 0.11', type: 'pc' }),
      xml('identity', { 'xml:lang': 'el', category: 'client', name: '\u03a8 0.11', type: 'pc' }),
      features('http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'http://jabber.org/protocol/muc'),
      xml('x', { xmlns: 'jabber:x:data', type: 'result' },
        field('FORM_TYPE', 'urn:xmpp:dataforms:softwareinfo'),
        field('software_version', '0.11'), field('ip_version', 'ipv6', 'ipv4'), field('os', 'Mac'), field('os_version', '10.5.1'), field('software', 'Psi')));
    assert.equal(capsHash(query, 'sha-1'), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
    assert.notEqual(capsHash(query, 'sha-256'), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
    assert.equal(capsHash(query, 'x-unknown'), undefined);
  });

  it('reads <c/> from presence, legacy ext included', () => {
    const presence = xml('presence', null, xml('c', { xmlns: 'http://jabber.org/protocol/caps', node: 'n', ver: '1.0', ext: 'a  b' }));
    assert.deepEqual(capsOf(presence), { node: 'n', ver: '1.0', hash: undefined, ext: ['a', 'b'] });
    assert.equal(capsOf(xml('presence')), undefined);
    assert.ok(sameCaps(capsOf(presence), capsOf(presence.clone())));
  });
});
