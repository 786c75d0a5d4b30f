// The SIP phone state model of perl-bosh (seed 003), exactly as its diagram draws it:
//   online           → still-online | onthephone | offline
//   still-online     → still-online (re-REGISTER) | onthephone | offline
//   onthephone       → still-online (call ends) | still-onthephone (session keep-alive)
//   still-onthephone → still-online (call ends) | still-onthephone (the next keep-alive)
//   offline          → online (sign-on: the first report after a termination)
// The still-onthephone self-loop is the seed's text ("during a longer call, the resource will be
// in this state"); the picture leaves it implicit.
//
// What a report that is not one of these edges does (an invalid transition): it is logged by the
// caller and the phone goes to the nearest valid state. A report says which of three things the
// phone is (registered, in a call, gone); whether that is the first report (online, onthephone)
// or a refresh (still-*) follows from the current state, so the nearest valid state is:
//   - offline reported: offline (a deregistration in a call ends the call too);
//   - online or still-online reported: online from offline (the sign-on was missed, e.g. the
//     bridge restarted), still-online otherwise (a second sign-on is a re-registration; a sign-on
//     in a call means the phone restarted and the call is over);
//   - onthephone or still-onthephone reported: onthephone when not in a call (the call start was
//     missed), still-onthephone when already in one.
// Every valid edge is its own nearest state, so the rule is one function for both.
export const PHONE_STATES = ['online', 'still-online', 'onthephone', 'still-onthephone', 'offline'] as const;
export type PhoneState = (typeof PHONE_STATES)[number];

/** What the phone's presence says: only a change of this is broadcast. */
export type Availability = 'available' | 'on-the-phone' | 'offline';

const EDGES: Readonly<Record<PhoneState, readonly PhoneState[]>> = {
  'offline': ['online'],
  'online': ['still-online', 'onthephone', 'offline'],
  'still-online': ['still-online', 'onthephone', 'offline'],
  'onthephone': ['still-online', 'still-onthephone'],
  'still-onthephone': ['still-online', 'still-onthephone'],
};

export function isPhoneState(s: string): s is PhoneState {
  return (PHONE_STATES as readonly string[]).includes(s);
}

export function isValidTransition(from: PhoneState, to: PhoneState): boolean {
  return EDGES[from].includes(to);
}

export function availabilityOf(state: PhoneState): Availability {
  if (state === 'offline') return 'offline';
  return state === 'onthephone' || state === 'still-onthephone' ? 'on-the-phone' : 'available';
}

export interface Transition {
  from: PhoneState;
  reported: PhoneState;
  /** The state the phone is in afterwards. */
  to: PhoneState;
  /** The report was an edge of the model (otherwise `to` is the nearest valid state). */
  valid: boolean;
  /** The presence changes (a refresh or a repeated report changes nothing). */
  changed: boolean;
}

export function transition(from: PhoneState, reported: PhoneState): Transition {
  const valid = isValidTransition(from, reported);
  let to: PhoneState;
  if (valid) to = reported;
  else if (reported === 'offline') to = 'offline';
  else if (availabilityOf(reported) === 'available') to = from === 'offline' ? 'online' : 'still-online';
  else to = availabilityOf(from) === 'on-the-phone' ? 'still-onthephone' : 'onthephone';
  return { from, reported, to, valid, changed: availabilityOf(from) !== availabilityOf(to) };
}
