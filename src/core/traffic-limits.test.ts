import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TrafficFormatError, TrafficLimiter, formatTrafficRule, parseTrafficThrottling } from './traffic-limits.js';
import { TokenBucket } from './rate-limit.js';

describe('cm-ht-traffic-throttling format', () => {
  it("parses the seed's example", () => {
    assert.deepEqual(parseTrafficThrottling('xmpp:25k:0:disc,bin:200m:0:disc'), [
      { type: 'xmpp', perMinute: 25_000, lifetime: 0, action: 'disc' },
      { type: 'bin', perMinute: 200_000_000, lifetime: 0, action: 'disc' },
    ]);
  });

  it('accepts plain numbers, g, upper case, spaces and a single rule; empty means no limits', () => {
    assert.deepEqual(parseTrafficThrottling(' XMPP:2500:1G:Drop '), [{ type: 'xmpp', perMinute: 2500, lifetime: 1e9, action: 'drop' }]);
    assert.deepEqual(parseTrafficThrottling('bin:20m:0:disc, xmpp:0:100:drop').map(formatTrafficRule), ['bin:20000000:0:disc', 'xmpp:0:100:drop']);
    assert.deepEqual(parseTrafficThrottling(''), []);
  });

  const bad: [string, RegExp][] = [
    ['xmpp:25k:0', /must have four parts/],
    ['xmpp:25k:0:disc:extra', /must have four parts/],
    ['tcp:25k:0:disc', /type must be xmpp \(stanzas\) or bin \(bytes\), not "tcp"/],
    ['xmpp:25k:0:kick', /action must be disc \(disconnect\) or drop, not "kick"/],
    ['xmpp:25x:0:disc', /per-minute amount must be a whole number.*not "25x"/],
    ['xmpp:25k:-1:disc', /lifetime amount must be a whole number.*not "-1"/],
    ['xmpp:1.5k:0:disc', /per-minute amount/],
    ['xmpp::0:disc', /per-minute amount/],
    ['xmpp:1k:0:disc,,bin:1m:0:disc', /empty entry/],
    ['xmpp:1k:0:disc,xmpp:2k:0:drop', /xmpp is limited twice/],
    ['xmpp:99999999999999999g:0:disc', /per-minute amount/],
  ];
  for (const [spec, message] of bad) {
    it(`refuses "${spec}" with a clear message`, () => {
      assert.throws(() => parseTrafficThrottling(spec), (e: unknown) => e instanceof TrafficFormatError && message.test(e.message));
    });
  }
});

describe('TrafficLimiter', () => {
  it('allows the per-minute amount, breaks past it, and starts over the next minute', () => {
    let now = 0;
    const limiter = new TrafficLimiter(parseTrafficThrottling('xmpp:3:0:drop'), () => now);
    assert.equal(limiter.countStanza(), undefined);
    assert.equal(limiter.countStanza(), undefined);
    assert.equal(limiter.countStanza(), undefined);
    const breach = limiter.countStanza();
    assert.equal(breach?.scope, 'minute');
    assert.equal(breach?.first, true);
    assert.equal(breach?.description, 'more than 3 stanzas per minute');
    assert.equal(limiter.countStanza()?.first, false, 'one report per minute');
    now += 60_000;
    assert.equal(limiter.countStanza(), undefined, 'a new minute');
  });

  it('enforces lifetime limits across minutes', () => {
    let now = 0;
    const limiter = new TrafficLimiter(parseTrafficThrottling('xmpp:0:5:disc'), () => now);
    for (let i = 0; i < 5; i++) { assert.equal(limiter.countStanza(), undefined); now += 60_000; }
    const breach = limiter.countStanza();
    assert.equal(breach?.scope, 'lifetime');
    assert.equal(breach?.rule.action, 'disc');
    assert.match(breach!.description, /more than 5 stanzas over the connection's lifetime/);
  });

  it('counts bytes; a bin drop limit drops the stanzas that follow until the minute ends', () => {
    let now = 0;
    const limiter = new TrafficLimiter(parseTrafficThrottling('bin:1k:0:drop'), () => now);
    assert.equal(limiter.countBytes(600), undefined);
    assert.equal(limiter.countStanza(), undefined);
    const breach = limiter.countBytes(600);
    assert.equal(breach?.rule.type, 'bin');
    assert.equal(breach?.description, 'more than 1000 bytes per minute');
    assert.equal(limiter.countStanza()?.rule.type, 'bin', 'the stanza carried by those bytes is dropped');
    now += 60_000;
    assert.equal(limiter.countStanza(), undefined);
  });

  it('a bin disc limit breaks at the bytes only; zeros mean no limit', () => {
    const limiter = new TrafficLimiter(parseTrafficThrottling('bin:10:0:disc,xmpp:0:0:disc'));
    assert.equal(limiter.countBytes(11)?.rule.action, 'disc');
    assert.equal(limiter.countStanza(), undefined);
    assert.equal(new TrafficLimiter(parseTrafficThrottling('xmpp:0:0:disc')).active, false);
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 4, () => now);
    assert.deepEqual(Array.from({ length: 5 }, () => bucket.take()), [true, true, true, true, false]);
    now += 500; // one token back at 2 a second
    assert.equal(bucket.take(), true);
    assert.equal(bucket.take(), false);
    now += 10_000; // refills up to the burst only
    assert.deepEqual(Array.from({ length: 5 }, () => bucket.take()), [true, true, true, true, false]);
  });
});
