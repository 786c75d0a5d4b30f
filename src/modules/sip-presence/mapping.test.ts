import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseSipUri, parseMapping } from './mapping.js';

test('the seed example line, with and without the optional SID and presenceId', () => {
  const { phones, problems } = parseMapping([
    '# SIP URI, XMPP user, password, RID, SID, presenceId',
    '0123456789@@domain.example.com,username,password,123456',
    'sip:alice@Example.COM;transport=udp , alice@xmpp.example.com , "pa,ss" , 200, 7f3a, 12',
    '',
  ].join('\n'));
  assert.deepEqual(problems, []);
  assert.deepEqual(phones.get('0123456789@domain.example.com'), { uri: '0123456789@domain.example.com', line: 2, username: 'username', password: 'password', rid: 123456 });
  assert.deepEqual(phones.get('alice@example.com'), { uri: 'alice@example.com', line: 3, username: 'alice@xmpp.example.com', password: 'pa,ss', rid: 200, sid: '7f3a', presenceId: '12' });
});

test('a malformed row is reported with its line number and the rest loads', () => {
  const { phones, problems } = parseMapping([
    'a@example.com,a,secret,1',
    '"unterminated@example.com,b,secret,1',
    'not-a-uri,c,secret,1',
    'd@example.com,d',
    'e@example.com,,secret,1',
    'f@example.com,f,secret,twelve',
    'a@example.com,other,secret,1',
    'g@example.com,g,secret,1,sid,3,extra',
    'h@example.com,h,,',
  ].join('\n'));
  assert.deepEqual([...phones.keys()], ['a@example.com', 'h@example.com']);
  assert.equal(phones.get('h@example.com')!.rid, 123456, 'an empty RID is the seed default');
  assert.deepEqual(problems.map((p) => p.line), [2, 3, 4, 5, 6, 7, 8]);
  assert.match(problems[0]!.message, /not valid CSV/);
  assert.match(problems[1]!.message, /not-a-uri.*not a SIP URI/);
  assert.match(problems[2]!.message, /expected 4 to 6 fields.*found 2/);
  assert.match(problems[3]!.message, /username is empty/);
  assert.match(problems[4]!.message, /RID "twelve"/);
  assert.match(problems[5]!.message, /already mapped on line 1/);
  assert.match(problems[6]!.message, /found 7/);
});

test('SIP URIs compare in their normal form', () => {
  assert.equal(normaliseSipUri('"Bob" <sips:Bob@PBX.example.com:5061;transport=tls>'), 'Bob@pbx.example.com:5061');
  assert.equal(normaliseSipUri('sip:100@10.0.0.1?subject=x'), '100@10.0.0.1');
  assert.equal(normaliseSipUri('sip:example.com'), undefined);
  assert.equal(normaliseSipUri('@example.com'), undefined);
  assert.equal(normaliseSipUri('a b@example.com'), undefined);
});
