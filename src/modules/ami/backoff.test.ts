import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './backoff.js';

describe('reconnection backoff', () => {
  it('doubles from the initial delay up to the ceiling, and starts again after a success', () => {
    const b = new Backoff({ initial: 1000, max: 60000 }, () => 0);
    assert.deepEqual(Array.from({ length: 9 }, () => b.next()), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    b.reset();
    assert.equal(b.next(), 1000);
  });

  it('takes off up to a fifth at random, so links do not retry in lockstep', () => {
    const b = new Backoff({ initial: 1000, max: 60000 }, () => 0.999);
    assert.deepEqual([b.next(), b.next()], [800, 1600]);
  });
});
