// The NATS URL setting: servers and credentials (nats.js wants them apart).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { natsServers } from './nats-bus.js';

describe('cluster.nats-url', () => {
  it('takes several servers, and user and password (or a token) out of the URLs', () => {
    assert.deepEqual(natsServers('nats://10.0.0.5:4222'), { servers: ['nats://10.0.0.5:4222'], user: undefined, pass: undefined });
    assert.deepEqual(natsServers('nats://sw:s%40cret@10.0.0.5:4222, nats://10.0.0.6:4222'),
      { servers: ['nats://10.0.0.5:4222', 'nats://10.0.0.6:4222'], user: 'sw', pass: 's@cret' });
    assert.deepEqual(natsServers('tls://t0ken@nats.example.com:4222'), { servers: ['tls://nats.example.com:4222'], token: 't0ken' });
  });
});
