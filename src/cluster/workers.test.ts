// The `workers` option: auto or a number of processes, nothing else; auto means one per core.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { workerCount, workersSchema } from './workers.js';

describe('workers option', () => {
  it('defaults to one process, so nothing changes unless asked', () => {
    assert.equal(workersSchema.parse(undefined), 1);
    assert.equal(workerCount(workersSchema.parse(undefined)), 1);
  });

  it('takes auto (one worker per core) or a number', () => {
    assert.equal(workerCount(workersSchema.parse('auto')), availableParallelism());
    assert.equal(workerCount(workersSchema.parse(3)), 3);
  });

  it('refuses anything else with a message that says what is allowed', () => {
    for (const bad of [0, -1, 1.5, 257, 'lots', '2', true]) {
      const result = workersSchema.safeParse(bad);
      assert.equal(result.success, false, `${JSON.stringify(bad)} is refused`);
    }
    assert.match(workersSchema.safeParse('lots').error!.issues[0]!.message, /auto or a number of processes/);
  });
});
