// Asterisk device states and how Asterisk combines the states several servers report for one
// device (ast_devstate_aggregate; shared/testdata/asterisk/README.md). Neutral ground: the PubSub
// module (states published over XMPP) and the AMI relay (states learned over AMI) both use it.

/** Device states Asterisk knows (ast_devstate_val); anything else is not a state it reports. */
export const DEVICE_STATES = ['UNKNOWN', 'NOT_INUSE', 'INUSE', 'BUSY', 'INVALID', 'UNAVAILABLE', 'RINGING', 'RINGINUSE', 'ONHOLD'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export function isDeviceState(value: string): value is DeviceState {
  return (DEVICE_STATES as readonly string[]).includes(value);
}

/** From least to most significant: the aggregate is the highest reported. */
const AGGREGATION_ORDER: readonly DeviceState[] = ['INVALID', 'UNKNOWN', 'UNAVAILABLE', 'NOT_INUSE', 'ONHOLD', 'RINGING', 'INUSE', 'BUSY', 'RINGINUSE'];

/** The highest state in AGGREGATION_ORDER, except that RINGING together with INUSE, ONHOLD or BUSY makes RINGINUSE. */
export function aggregateDeviceState(states: Iterable<DeviceState>): DeviceState {
  let result: DeviceState = 'INVALID';
  let ringing = false;
  let busy = false;
  for (const state of states) {
    if (AGGREGATION_ORDER.indexOf(state) > AGGREGATION_ORDER.indexOf(result)) result = state;
    if (state === 'RINGING') ringing = true;
    if (state === 'INUSE' || state === 'ONHOLD' || state === 'BUSY') busy = true;
  }
  return ringing && busy ? 'RINGINUSE' : result;
}
