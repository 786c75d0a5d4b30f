// The SIP presence bridge with `workers: 2` (two cluster nodes in one machine sharing the
// listening sockets), through the real command: only the worker serving the domain services
// runs the bridge; reports posted over HTTP land on either worker and are all applied by that
// one; table rows are applied once; when it is killed the other worker takes the bridge over.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from './support/server.js';
import { WorkersProcess, writeWorkersConfig } from './support/workers-process.js';
import { sqliteTable, writeMapping, type ProxyTable } from './support/sip-presence.js';
import { openStorage } from '../src/storage/index.js';
import { deriveCredentials } from '../src/auth/credentials.js';

const TOKEN = 'sip-presence-workers-token-0123456789';
const URI = 'sip:100@pbx.example.com';

/** One POST on a connection of its own, so that the primary hands it to the next worker. */
function post(port: number, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, path: '/sip-presence/events', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, 'content-length': Buffer.byteLength(data), connection: 'close' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('SIP presence bridge with workers: 2', () => {
  let dir: string;
  let primary: WorkersProcess;
  let table: ProxyTable;
  let httpPort: number;

  /** The bridge's lines about applied reports (debug 'phone state', or an invalid transition's warning). */
  const applied = (from = 0) => primary.lines.slice(from).filter((l) => typeof l.source === 'string' && (l.msg === 'phone state' || /^invalid transition/.test(l.msg ?? '')));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-sip-workers-'));
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    const storage = await openStorage(buildConfig({}, dataDir).storage, dataDir);
    await storage.users.create('localhost', 'alice', deriveCredentials('secret'));
    await storage.close();
    const mapping = writeMapping(dir, [`${URI},alice,,123456`]);
    table = sqliteTable(join(dir, 'proxy.db'));
    const { file, ports } = await writeWorkersConfig(dir, {
      'data-dir': dataDir,
      log: { level: 'debug' },
      'sip-presence': {
        enabled: true, mapping,
        table: { enabled: true, driver: 'sqlite', path: join(dir, 'proxy.db'), interval: 0.1 },
        http: { enabled: true, token: TOKEN },
      },
    });
    httpPort = ports.http;
    primary = await WorkersProcess.start(file, dir);
  });

  after(async () => {
    primary?.kill();
    await table?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the bridge in the serving worker only, feeds it from both, and moves it when that worker dies', async () => {
    const running = await primary.logged((l) => l.msg?.startsWith('SIP presence bridge starting') === true, 'a worker running the bridge');
    await primary.logged((l) => l.msg?.startsWith('SIP presence bridge idle') === true && l.worker !== running.worker, 'an idle worker');

    // Each POST on a new connection: the primary deals them out to the workers in turn.
    const sequence = ['online', 'onthephone', 'still-onthephone', 'still-online'];
    let state = 'offline';
    for (const reported of sequence) {
      const answer = await post(httpPort, { uri: URI, state: reported });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(answer.json.applied, [{ uri: '100@pbx.example.com', from: state, reported, to: reported, valid: true }], 'one bridge keeps the state');
      state = reported;
    }
    await new Promise<void>((resolve) => { const check = () => (applied().length >= sequence.length ? resolve() : setTimeout(check, 50)); check(); });
    assert.deepEqual(applied().map((l) => l.worker), sequence.map(() => running.worker), 'applied by the running worker only');
    assert.ok(applied().some((l) => String(l.source).includes('via node')), 'some reports came through the other worker');

    for (const reported of ['onthephone', 'still-onthephone', 'still-online']) {
      const before = applied().length;
      await table.insert(URI, reported);
      await primary.logged((l) => typeof l.source === 'string' && l.source.startsWith('table row ') && l.to === reported, `row ${reported} applied`, 0);
      assert.equal(applied().length, before + 1);
    }
    const rows = applied().filter((l) => String(l.source).startsWith('table row '));
    assert.deepEqual(rows.map((l) => [l.worker, l.from, l.to]), [[running.worker, 'still-online', 'onthephone'],
      [running.worker, 'onthephone', 'still-onthephone'], [running.worker, 'still-onthephone', 'still-online']]);

    const ready = await primary.logged((l) => l.msg === 'worker ready' && l.worker === running.worker, 'the running worker ready');
    const from = primary.lines.length;
    process.kill(ready.pid!, 'SIGKILL');
    const takeover = await primary.logged((l) => l.msg?.startsWith('SIP presence bridge starting') === true, 'the other worker taking over', from);
    assert.notEqual(takeover.worker, running.worker);
    // Its phone state starts afresh, as after a restart: the phone signs on again.
    await table.insert(URI, 'online');
    const row = await primary.logged((l) => typeof l.source === 'string' && l.source.startsWith('table row ') && l.to === 'online', 'the row applied after the takeover', from);
    assert.equal(row.worker, takeover.worker);
    assert.equal(row.from, 'offline');
  });
});
