// Admin scripts (seed 001 section 11.14) over real sockets: the seed's two examples, shipped in
// scripts/admin/, load at start and run through their forms; "New command script" adds and
// replaces commands on a component and saves them to disk, "Remove command script" removes them;
// scripts that throw, loop or do not compile are reported without harming the server; only
// administrators see or run any of it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { xml } from '@xmpp/client';
import { startTestServer, type TestServer } from './support/server.js';
import { NS_ADMIN, connectClient, type Connected } from './support/adhoc-client.js';

const shipped = fileURLToPath(new URL('../scripts/admin/', import.meta.url));
const node = (id: string) => `${NS_ADMIN}#${id}`;

describe('admin scripts', () => {
  let t: TestServer;
  let dir: string;
  const open: Connected[] = [];
  const login = async (user: string, resource?: string) => {
    const c = await connectClient(t.port, user, { resource });
    open.push(c);
    return c;
  };
  const addScript = (c: Connected, to: string, id: string, text: string, extra: Record<string, string> = {}) =>
    c.command(to, 'add-script', { fields: { description: `Script ${id}`, 'command-id': id, language: 'js', 'script-text': text.split('\n'), 'save-to-disk': '0', ...extra } });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-scripts-'));
    cpSync(shipped, dir, { recursive: true });
    t = await startTestServer({ admins: ['admin@localhost'], scripts: { "script-dir": dir, timeout: 1500 } });
    await t.addUser('admin@localhost');
    await t.addUser('plain@localhost');
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the shipped examples at start: Hello World, and the one asking for the name', async () => {
    const admin = await login('admin');
    const commands = await admin.items('sess-man@localhost');
    assert.ok(commands.some((c) => c.node === node('hello') && c.name === 'Hello world script'));
    assert.ok(commands.some((c) => c.node === 'add-script' && c.name === 'New command script'));
    assert.ok(commands.some((c) => c.node === 'del-script' && c.name === 'Remove command script'));

    const hello = await admin.command('sess-man@localhost', node('hello'));
    assert.equal(hello.status, 'completed');
    assert.equal(hello.form!.attrs.type, 'result');
    assert.equal(hello.form!.getChildText('title'), 'Hello World Script');
    assert.equal(hello.form!.getChildText('instructions'), 'Hello admin, how are you?');

    const ask = await admin.command('localhost', node('hello-name'));
    assert.equal(ask.status, 'executing');
    assert.equal(ask.form!.attrs.type, 'form');
    assert.equal(ask.types.name, 'text-single');
    assert.equal(ask.form!.getChildText('instructions'), 'Please provide some details');
    const greet = await admin.command('localhost', node('hello-name'), { sessionid: ask.sessionid, fields: { name: 'Ann' } });
    assert.equal(greet.status, 'completed');
    assert.equal(greet.form!.getChildText('instructions'), 'Hello Ann, how are you?');
  });

  it('adds a script on a component, replaces it, saves it to disk, and it loads again after a restart', async () => {
    const admin = await login('admin');
    const form = await admin.command('vhost-man@localhost', 'add-script');
    for (const f of ['description', 'command-id', 'language', 'script-text', 'save-to-disk']) assert.ok(f in form.values, f);
    assert.deepEqual(form.values['save-to-disk'], ['1']);
    const loaded = await admin.command('vhost-man@localhost', 'add-script', {
      sessionid: form.sessionid,
      fields: { description: 'Count hosts', 'command-id': 'count-hosts', language: 'js', 'save-to-disk': '1',
        'script-text': ['const res = packet.commandResult(Command.DataType.result);', "Command.addFieldValue(res, 'hosts', 'v1', 'text-single', 'Version');", 'return res;'] },
    });
    assert.match(loaded.notes[0]!.text, /loaded successfully/);
    const file = join(dir, 'count-hosts.js');
    assert.match(readFileSync(file, 'utf8'), /^\/\/ AS:Description: Count hosts\n\/\/ AS:CommandId: count-hosts\n\/\/ AS:Component: vhost-man\n/);
    assert.deepEqual((await admin.command('vhost-man@localhost', node('count-hosts'))).values.hosts, ['v1']);
    // It belongs to the component it was added on.
    assert.equal((await admin.commandError('sess-man@localhost', node('count-hosts'))).condition, 'item-not-found');

    await admin.command('vhost-man@localhost', 'add-script', { fields: { description: 'Count hosts', 'command-id': 'count-hosts', 'save-to-disk': '1',
      'script-text': "const res = packet.commandResult('result'); Command.addFieldValue(res, 'hosts', 'v2'); return res;" } });
    assert.deepEqual((await admin.command('vhost-man@localhost', node('count-hosts'))).values.hosts, ['v2']);

    for (const c of open.splice(0)) await c.stop();
    t = await t.restart();
    const again = await login('admin');
    assert.deepEqual((await again.command('vhost-man@localhost', node('count-hosts'))).values.hosts, ['v2']);
  });

  it('gives scripts the seed API: result text, packet variable, fields, notes, and sending stanzas', async () => {
    const admin = await login('admin', 'console');
    const plain = await login('plain', 'pc');
    await addScript(admin, 'localhost', 'python-style', 'result = "Hello world!"');
    assert.deepEqual((await admin.command('localhost', node('python-style'))).notes, [{ type: 'info', text: 'Hello world!' }]);
    await addScript(admin, 'localhost', 'sum', [
      "const a = Command.getFieldValue(packet, 'num1');",
      "const b = Command.getFieldValue(packet, 'num2');",
      'if (a === null || b === null) {',
      '  const res = Iq.commandResultForm(packet);',
      "  Command.addTextField(res, 'Note', 'This is a JavaScript script!');",
      "  Command.addFieldValue(res, 'num1', '');",
      "  Command.addFieldValue(res, 'num2', '');",
      '  packet = res;',
      '} else {',
      '  result = String(Number(a) + Number(b));',
      '}',
    ].join('\n'));
    const ask = await admin.command('localhost', node('sum'));
    assert.equal(ask.status, 'executing');
    const sum = await admin.command('localhost', node('sum'), { sessionid: ask.sessionid, fields: { num1: '2', num2: '40' } });
    assert.deepEqual(sum.notes, [{ type: 'info', text: '42' }]);

    await addScript(admin, 'localhost', 'notify', [
      "send(`<message to='plain@localhost/pc' type='chat'><body>from ${packet.from}</body></message>`);",
      "const res = packet.commandResult('result');",
      "Command.addNote(res, 'sent', 'info');",
      "Command.addFieldMultiValue(res, 'who', [packet.domain, packet.to], 'text-multi', 'Where');",
      'return res;',
    ].join('\n'));
    const notified = await admin.command('localhost', node('notify'));
    assert.deepEqual(notified.notes, [{ type: 'info', text: 'sent' }]);
    assert.deepEqual(notified.values.who, ['localhost', 'localhost']);
    const msg = await plain.waitFor((s) => s.is('message') && s.getChildText('body') === `from ${admin.jid}`, 'message sent by the script');
    assert.equal(msg.attrs.from, 'localhost');
  });

  it('stops a script that throws, loops or does not compile, and reports it; the server goes on', async () => {
    const admin = await login('admin');
    await addScript(admin, 'localhost', 'boom', "throw new Error('kaput');");
    const boom = await admin.command('localhost', node('boom'));
    assert.equal(boom.status, 'completed');
    assert.equal(boom.notes[0]!.type, 'error');
    assert.match(boom.notes[0]!.text, /failed: kaput/);

    await addScript(admin, 'localhost', 'spin', 'while (true) {}');
    const started = Date.now();
    const spin = await admin.command('localhost', node('spin'));
    assert.ok(Date.now() - started < 3000, 'stopped by the time limit');
    assert.equal(spin.notes[0]!.type, 'error');
    assert.match(spin.notes[0]!.text, /timed out/);
    await addScript(admin, 'localhost', 'spin-async', 'return (async () => { for (;;) await null; })();');
    assert.match((await admin.command('localhost', node('spin-async'))).notes[0]!.text, /timed out/);
    await addScript(admin, 'localhost', 'no-eval', "return eval('1 + 1');");
    assert.equal((await admin.command('localhost', node('no-eval'))).notes[0]!.type, 'error');
    const pong = await admin.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(pong.attrs.type, 'result');

    const syntax = await admin.commandError('localhost', 'add-script', { fields: { description: 'x', 'command-id': 'broken', 'script-text': 'return (', 'save-to-disk': '0' } });
    assert.equal(syntax.condition, 'not-acceptable');
    assert.match(syntax.text ?? '', /not loaded: .*SyntaxError|not loaded: Unexpected/);
    const builtIn = await admin.commandError('localhost', 'add-script', { fields: { description: 'x', 'command-id': 'add-user', 'script-text': 'result = 1', 'save-to-disk': '0' } });
    assert.match(builtIn.text ?? '', /built-in command/);
  });

  it('removes a script and its file', async () => {
    const admin = await login('admin');
    await addScript(admin, 'localhost', 'temporary', 'result = "here"', { 'save-to-disk': '1' });
    assert.ok(existsSync(join(dir, 'temporary.js')));
    const form = await admin.command('localhost', 'del-script');
    assert.ok(form.command.getChild('x')!.getChildren('field')[0]!.getChildren('option').some((o) => o.getChildText('value') === 'temporary'));
    const removed = await admin.command('localhost', 'del-script', { sessionid: form.sessionid, fields: { 'command-id': 'temporary', 'remove-from-disk': '1' } });
    assert.match(removed.notes[0]!.text, /removed/);
    assert.equal(existsSync(join(dir, 'temporary.js')), false);
    assert.equal((await admin.commandError('localhost', node('temporary'))).condition, 'item-not-found');
  });

  it('is for administrators only', async () => {
    const plain = await login('plain');
    assert.ok(!(await plain.items('localhost', 'http://jabber.org/protocol/commands')).some((c) => c.node === node('hello')));
    assert.equal((await plain.commandError('localhost', node('hello'))).condition, 'forbidden');
    assert.equal((await plain.commandError('localhost', 'add-script', { fields: { description: 'x', 'command-id': 'evil', 'script-text': 'result = 1' } })).condition, 'forbidden');
  });
});
