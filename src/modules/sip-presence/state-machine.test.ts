import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PHONE_STATES, availabilityOf, isPhoneState, transition, type PhoneState } from './state-machine.js';

// Every (current, reported) pair: the state afterwards, whether the seed's diagram has the edge,
// and whether the presence changes. Written out in full rather than derived, so that the table
// is the specification the function is checked against.
const EXPECTED: [PhoneState, PhoneState, PhoneState, boolean, boolean][] = [
  // from offline: only sign-on is an edge
  ['offline', 'online', 'online', true, true],
  ['offline', 'still-online', 'online', false, true],
  ['offline', 'onthephone', 'onthephone', false, true],
  ['offline', 'still-onthephone', 'onthephone', false, true],
  ['offline', 'offline', 'offline', false, false],
  // from online
  ['online', 'online', 'still-online', false, false],
  ['online', 'still-online', 'still-online', true, false],
  ['online', 'onthephone', 'onthephone', true, true],
  ['online', 'still-onthephone', 'onthephone', false, true],
  ['online', 'offline', 'offline', true, true],
  // from still-online (re-REGISTERs loop)
  ['still-online', 'online', 'still-online', false, false],
  ['still-online', 'still-online', 'still-online', true, false],
  ['still-online', 'onthephone', 'onthephone', true, true],
  ['still-online', 'still-onthephone', 'onthephone', false, true],
  ['still-online', 'offline', 'offline', true, true],
  // from onthephone
  ['onthephone', 'online', 'still-online', false, true],
  ['onthephone', 'still-online', 'still-online', true, true],
  ['onthephone', 'onthephone', 'still-onthephone', false, false],
  ['onthephone', 'still-onthephone', 'still-onthephone', true, false],
  ['onthephone', 'offline', 'offline', false, true],
  // from still-onthephone (keep-alives loop)
  ['still-onthephone', 'online', 'still-online', false, true],
  ['still-onthephone', 'still-online', 'still-online', true, true],
  ['still-onthephone', 'onthephone', 'still-onthephone', false, false],
  ['still-onthephone', 'still-onthephone', 'still-onthephone', true, false],
  ['still-onthephone', 'offline', 'offline', false, true],
];

test('every transition of the seed model, and the nearest valid state for the others', () => {
  assert.equal(EXPECTED.length, PHONE_STATES.length ** 2);
  for (const [from, reported, to, valid, changed] of EXPECTED) {
    assert.deepEqual(transition(from, reported), { from, reported, to, valid, changed }, `${from} + ${reported}`);
  }
});

test('the seed model has exactly eleven edges (the still-onthephone self-loop from its text)', () => {
  const edges = EXPECTED.filter(([, , , valid]) => valid).map(([f, r]) => `${f}>${r}`);
  assert.deepEqual(edges.sort(), [
    'offline>online',
    'online>offline', 'online>onthephone', 'online>still-online',
    'onthephone>still-online', 'onthephone>still-onthephone',
    'still-online>offline', 'still-online>onthephone', 'still-online>still-online',
    'still-onthephone>still-online', 'still-onthephone>still-onthephone',
  ].sort());
});

test('a refresh never changes what the presence says', () => {
  assert.equal(transition('online', 'still-online').changed, false);
  assert.equal(transition('onthephone', 'still-onthephone').changed, false);
  assert.equal(availabilityOf('still-online'), 'available');
  assert.equal(availabilityOf('still-onthephone'), 'on-the-phone');
});

test('only the five seed states are states', () => {
  for (const s of PHONE_STATES) assert.ok(isPhoneState(s));
  for (const s of ['ringing', 'Online', '', 'still_online', 'busy']) assert.ok(!isPhoneState(s), s);
});
