import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LoginLimiter } from './login-limiter.js';

describe('LoginLimiter', () => {
  it('refuses a key at the limit until its oldest failure leaves the window', () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter({ attempts: 3, windowMs: 60_000, now: () => now });
    limiter.fail('a');
    now += 10_000;
    limiter.fail('a');
    assert.equal(limiter.retryAfter('a'), 0, 'two failures: still allowed');
    now += 10_000;
    limiter.fail('a');
    assert.equal(limiter.retryAfter('a'), 40, 'the first failure leaves the window in 40 s');
    assert.equal(limiter.retryAfter('b'), 0, 'other keys are not affected');
    now += 39_000;
    assert.equal(limiter.retryAfter('a'), 1);
    now += 1_000;
    assert.equal(limiter.retryAfter('a'), 0, 'the first failure expired');
    limiter.fail('a');
    assert.ok(limiter.retryAfter('a') > 0, 'three failures within the window again');
  });

  it('forgets a key on reset', () => {
    const limiter = new LoginLimiter({ attempts: 1, windowMs: 60_000, now: () => 0 });
    limiter.fail('a');
    assert.ok(limiter.retryAfter('a') > 0);
    limiter.reset('a');
    assert.equal(limiter.retryAfter('a'), 0);
  });

  it('keeps at most maxKeys keys, dropping the expired and then the oldest', () => {
    let now = 0;
    const limiter = new LoginLimiter({ attempts: 1, windowMs: 1000, now: () => now, maxKeys: 2 });
    limiter.fail('old');
    now = 5000;
    limiter.fail('x');
    limiter.fail('y');
    assert.equal(limiter.retryAfter('old'), 0, 'expired');
    limiter.fail('z');
    assert.equal(limiter.retryAfter('x'), 0, 'the oldest key was dropped');
    assert.ok(limiter.retryAfter('y') > 0);
    assert.ok(limiter.retryAfter('z') > 0);
  });
});
