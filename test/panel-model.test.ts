// The operator panel's model (src/panel/client/model.ts) in Node, with @xmpp/xml elements as the
// page gets them: Asterisk aggregation, the six colours, flat and collection events, retract,
// purge and delete, and the contacts' presence.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { xml } from '@xmpp/client';
import { PanelModel, aggregate, category, type XmlLike } from '../src/panel/client/model.js';

const A = 'http://asterisk.org';
const EVENT = 'http://jabber.org/protocol/pubsub#event';
const state = (s: string, eid = 'e1') => xml('state', { xmlns: A, eid }, s);
const event = (node: string, ...children: unknown[]) =>
  xml('message', { from: 'pubsub.localhost' }, xml('event', { xmlns: EVENT }, xml('items', { node }, ...(children as never[])))) as unknown as XmlLike;
const item = (id: string, payload: unknown) => xml('item', { id }, payload as never);

describe('panel model', () => {
  it('aggregates like Asterisk and maps states to the six categories', () => {
    assert.equal(aggregate([]), 'INVALID');
    assert.equal(aggregate(['NOT_INUSE', 'UNAVAILABLE']), 'NOT_INUSE');
    assert.equal(aggregate(['RINGING', 'BUSY']), 'RINGINUSE');
    assert.equal(aggregate(['INUSE', 'BUSY']), 'BUSY');
    assert.deepEqual(['NOT_INUSE', 'RINGING', 'RINGINUSE', 'INUSE', 'BUSY', 'ONHOLD', 'UNAVAILABLE', 'UNKNOWN', 'INVALID'].map((s) => category(s as never)),
      ['idle', 'ringing', 'ringing', 'inuse', 'busy', 'onhold', 'unavailable', 'unavailable', 'unavailable']);
  });

  it('reads flat-mode events (item id = device) and collection events (leaf = device)', () => {
    const m = new PanelModel();
    assert.equal(m.applyEvent(event('device_state', item('SIP/100', state('INUSE')))), true);
    assert.equal(m.devices.get('SIP/100')?.state, 'INUSE');
    assert.equal(m.applyEvent(event('device_state', item('SIP/100', state('INUSE')))), false, 'no change, no redraw');
    m.applyEvent(event('device_state', item('SIP/100', state('RINGING', 'e2'))));
    assert.equal(m.devices.get('SIP/100')?.state, 'RINGINUSE');
    m.applyEvent(event('SIP/200', item('whatever', state('ONHOLD'))));
    assert.equal(m.devices.get('SIP/200')?.state, 'ONHOLD');
    m.applyEvent(event('message_waiting', item('1234@default', xml('mailbox', { xmlns: A, eid: 'e1' }, xml('NEWMSGS', {}, '2'), xml('OLDMSGS', {}, '7')))));
    assert.deepEqual([m.mailboxes.get('1234@default')?.newMessages, m.mailboxes.get('1234@default')?.oldMessages], [2, 7]);
    // Payloads that are not Asterisk's, or broken, change nothing.
    assert.equal(m.applyEvent(event('device_state', item('x', xml('state', { xmlns: 'urn:other' }, 'INUSE')))), false);
    assert.equal(m.applyEvent(event('device_state', item('x', state('DANCING')))), false);
    assert.equal(m.applyEvent(event('message_waiting', item('9@x', xml('mailbox', { xmlns: A }, xml('NEWMSGS', {}, '1'))))), false);
    // Retract removes one device; purge and delete a whole node.
    m.applyEvent(event('device_state', xml('retract', { id: 'SIP/100' })));
    assert.equal(m.devices.has('SIP/100'), false);
    m.applyEvent(xml('message', {}, xml('event', { xmlns: EVENT }, xml('purge', { node: 'SIP/200' }))) as unknown as XmlLike);
    assert.equal(m.devices.size, 0);
    m.applyEvent(xml('message', {}, xml('event', { xmlns: EVENT }, xml('delete', { node: 'message_waiting' }))) as unknown as XmlLike);
    assert.equal(m.mailboxes.size, 0);
  });

  it('keeps the roster and each contact\'s best resource', () => {
    const m = new PanelModel();
    m.applyRoster(xml('query', {}, xml('item', { jid: 'bob@x', name: 'Bob', subscription: 'both' }), xml('item', { jid: 'eve@x', subscription: 'to' })) as unknown as XmlLike, true);
    const bob = m.contacts.get('bob@x')!;
    assert.deepEqual(m.availability(bob), { show: 'offline', status: '' });
    m.applyPresence(xml('presence', { from: 'bob@x/desk' }, xml('show', {}, 'away'), xml('priority', {}, '1')) as unknown as XmlLike, 'me@x/panel');
    m.applyPresence(xml('presence', { from: 'bob@x/phone' }, xml('show', {}, 'dnd'), xml('status', {}, 'call'), xml('priority', {}, '5')) as unknown as XmlLike, 'me@x/panel');
    assert.deepEqual(m.availability(bob), { show: 'dnd', status: 'call' });
    m.applyPresence(xml('presence', { from: 'bob@x/phone', type: 'unavailable' }) as unknown as XmlLike, 'me@x/panel');
    assert.equal(m.availability(bob).show, 'away');
    m.applyRoster(xml('query', {}, xml('item', { jid: 'eve@x', subscription: 'remove' })) as unknown as XmlLike, false);
    assert.equal(m.contacts.has('eve@x'), false);
    m.resetLive();
    assert.equal(m.availability(bob).show, 'offline');
  });
});
