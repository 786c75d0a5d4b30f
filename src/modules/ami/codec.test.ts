import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AmiDecoder, AmiMessage, UnsafeValueError, encodeAction } from './codec.js';

function decoder(limits?: { maxLineLength: number; maxFields: number }) {
  const seen = { banner: [] as string[], messages: [] as AmiMessage[], garbage: [] as string[], fatal: [] as string[] };
  const d = new AmiDecoder({
    banner: (v) => seen.banner.push(v),
    message: (m) => seen.messages.push(m),
    garbage: (l) => seen.garbage.push(l),
    fatal: (r) => seen.fatal.push(r),
  }, limits);
  return { d, seen };
}

describe('AMI decoder', () => {
  it('reads the banner, then messages however the bytes are split', () => {
    const text = 'Asterisk Call Manager/7.0.3\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n'
      + 'Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: SIP/100\r\nState: INUSE\r\n\r\n';
    for (const size of [1, 3, 7, text.length]) {
      const { d, seen } = decoder();
      for (let i = 0; i < text.length; i += size) d.write(text.slice(i, i + size));
      assert.deepEqual(seen.banner, ['7.0.3']);
      assert.equal(seen.messages.length, 2);
      assert.equal(seen.messages[0]!.response, 'Success');
      assert.equal(seen.messages[0]!.actionId, '1');
      assert.equal(seen.messages[1]!.event, 'DeviceStateChange');
      assert.equal(seen.messages[1]!.get('device'), 'SIP/100', 'keys compared ignoring case');
      assert.deepEqual(seen.garbage, []);
    }
  });

  it('keeps colons inside values and accepts bare LF line ends', () => {
    const { d, seen } = decoder();
    d.write('Asterisk Call Manager/2.10.6\nEvent: PresenceStateChange\nPresentity: CustomPresence:alice\nMessage: back at 2: maybe\n\n');
    assert.equal(seen.messages[0]!.get('Presentity'), 'CustomPresence:alice');
    assert.equal(seen.messages[0]!.get('Message'), 'back at 2: maybe');
  });

  it('reports lines that are not Key: Value and goes on', () => {
    const { d, seen } = decoder();
    d.write('Asterisk Call Manager/7.0.3\r\nthis is noise\r\n\r\nEvent: X\r\n:no key\r\nA: b\r\n\r\n');
    assert.deepEqual(seen.garbage, ['this is noise', ':no key']);
    assert.equal(seen.messages.length, 1);
    assert.equal(seen.messages[0]!.get('A'), 'b');
  });

  it('ends the connection for a peer that is not AMI or breaks a limit', () => {
    const notAmi = decoder();
    notAmi.d.write('SSH-2.0-OpenSSH_9.2\r\n');
    assert.match(notAmi.seen.fatal[0]!, /not an Asterisk manager interface/);
    const long = decoder({ maxLineLength: 100, maxFields: 10 });
    long.d.write('Asterisk Call Manager/7.0.3\r\nEvent: ' + 'x'.repeat(200));
    assert.match(long.seen.fatal[0]!, /longer than 100 bytes/);
    long.d.write('\r\n\r\n');
    assert.equal(long.seen.messages.length, 0, 'nothing more after a fatal error');
    const many = decoder({ maxLineLength: 100, maxFields: 3 });
    many.d.write('Asterisk Call Manager/7.0.3\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n');
    assert.match(many.seen.fatal[0]!, /more than 3 fields/);
  });
});

describe('AMI actions', () => {
  it('are framed with CRLF and an empty line', () => {
    assert.equal(encodeAction('SetVar', 'sb-1', { Variable: 'DEVICE_STATE(Custom:SIP/100)', Value: 'INUSE' }),
      'Action: SetVar\r\nActionID: sb-1\r\nVariable: DEVICE_STATE(Custom:SIP/100)\r\nValue: INUSE\r\n\r\n');
  });

  it('refuse a value that would inject fields or end the message', () => {
    assert.throws(() => encodeAction('SetVar', 'sb-2', { Variable: 'DEVICE_STATE(Custom:x)', Value: 'INUSE\r\nAction: Originate' }), UnsafeValueError);
    assert.throws(() => encodeAction('SetVar', 'sb-3', { Variable: 'a\nb', Value: 'x' }), UnsafeValueError);
  });
});
