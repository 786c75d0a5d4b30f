// The ZeroMQ transport (res_zmq_manager, the seed's cmd_port / evt_port) beside standard AMI:
// one simulated Asterisk reached over ZeroMQ, one over TCP, states relayed both ways, and the
// ZeroMQ link rebuilt after its Asterisk stops answering or restarts.
import { describe, it, before, after } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import assert from 'node:assert/strict';
import { AmiSimulator } from './support/ami-simulator.js';
import { amiConfigSchema } from '../src/modules/ami/config.js';
import { checkAmiLinks } from '../src/modules/ami/probe.js';

// zeromq is an optional dependency (prebuilt for Linux x64 and arm64): without it there is nothing to test.
const zeromqMissing = await import('zeromq').then(() => false, () => 'the optional zeromq package is not installed');

describe('AMI relay over ZeroMQ (res_zmq_manager)', { skip: zeromqMissing }, () => {
  let t: TestServer;
  let z: AmiSimulator;
  let tcp: AmiSimulator;

  before(async () => {
    z = new AmiSimulator('Z');
    tcp = new AmiSimulator('T');
    const ports = await z.startZmq();
    await tcp.start();
    z.changeDevice('SIP/500', 'BUSY');
    t = await startTestServer({
      ami: {
        'request-timeout': 400,
        'keepalive-interval': 300,
        'reconnect-initial': 50,
        'reconnect-max': 300,
        servers: [
          { name: 'Z', host: '127.0.0.1', transport: 'zmq', 'cmd-port': ports.cmd, 'evt-port': ports.evt },
          { name: 'T', host: '127.0.0.1', port: tcp.port, username: 'relay', secret: 'amipw' },
        ],
      },
    });
  });

  after(async () => {
    await t?.stop(true);
    await z?.stopZmq();
    await tcp?.stop();
  });

  it('switchboard check asks res_zmq_manager for CoreStatus', async () => {
    const config = amiConfigSchema.parse({ servers: [{ name: 'Z', host: '127.0.0.1', transport: 'zmq', 'cmd-port': z.zmqPorts!.cmd, 'evt-port': z.zmqPorts!.evt }] });
    const { lines, warnings } = await checkAmiLinks(config);
    assert.match(lines[1]!, /^Z: zmq 127\.0\.0\.1 cmd \d+ evt \d+: answering \(up since \d{4}-\d\d-\d\d /);
    assert.deepEqual(warnings, []);
  });

  it('resynchronises from DeviceStateList over ZeroMQ and relays both ways', async () => {
    await tcp.waitFor(() => tcp.devices.get('Custom:SIP/500') === 'BUSY', 'the listed state of Z');
    z.changeDevice('SIP/501', 'INUSE');
    await tcp.waitFor(() => tcp.devices.get('Custom:SIP/501') === 'INUSE', 'a published event of Z');
    tcp.changeDevice('SIP/600', 'RINGING');
    await z.waitFor(() => z.devices.get('Custom:SIP/600') === 'RINGING', 'a SetVar to Z over its REQ socket');
  });

  it('rebuilds the link after its Asterisk hangs, then restarts', async () => {
    z.freezeZmq();
    tcp.changeDevice('SIP/601', 'BUSY');
    await z.stopZmq();
    await z.startZmq();
    await z.waitFor(() => z.devices.get('Custom:SIP/601') === 'BUSY', 'the change made while Z hung, after the restart');
    z.changeDevice('SIP/502', 'ONHOLD');
    await tcp.waitFor(() => tcp.devices.get('Custom:SIP/502') === 'ONHOLD', 'events from the restarted Z');
  });

  it('notices a quick restart that ZeroMQ hid by its CoreStartupTime, and resynchronises', async () => {
    await z.stopZmq();
    z.changeDevice('SIP/503', 'BUSY');
    await z.startZmq();
    // Published while no subscriber could hear it: only the resynchronisation brings it.
    await tcp.waitFor(() => tcp.devices.get('Custom:SIP/503') === 'BUSY', 'SIP/503 from the list after the restart');
  });
});
