// Admin scripts (seed 001 section 11.14): administrators add, replace and remove ad-hoc commands
// at runtime with "New command script" and "Remove command script", on every component (the
// script becomes a command of the component it was added on, node
// http://jabber.org/protocol/admin#<command id>). Scripts in `script-dir` load at start; their
// description, command id and component come from `AS:Description:`, `AS:CommandId:` and
// `AS:Component:` header lines; "Save to disk" writes them there.
//
// Scripts are JavaScript, each run in a worker thread, in a node:vm context of its own there
// (never in the server's context), with a time limit: a script that throws or loops (even in
// promises) is stopped by terminating its worker and reported to the administrator, and the
// server goes on; a worker also has a memory limit. node:vm is not a security boundary: only
// server administrators may add or run scripts, as they may administer the server anyway.
//
// The API mirrors the seed's (Tigase's Groovy `Command` utility), with the same names:
//   packet                                  the request: packet.from, packet.to, packet.node, packet.domain
//   packet.commandResult(type)              a response of Command.DataType.form or .result
//   Command.getFieldValue(packet, name)     a submitted field's value, or null
//   Command.getFieldValues(packet, name)    all values of a -multi field, or null
//   Command.addTitle(res, title)            Command.addInstructions(res, text)
//   Command.addFieldValue(res, name, value, type?, label?)   a field (type defaults to text-single)
//   Command.addFieldMultiValue(res, name, values, type?, label?)
//   Command.addTextField(res, label, text)  a fixed (read-only) text
//   Command.addHiddenField(res, name, value)    Command.addNote(res, text, type?)
//   Iq.commandResultForm(packet), Iq.commandResult(packet)
//   send(xml)                               sends a stanza (XML text); its from is the component
//   log(...values)                          writes to the server log
//   Cluster.request(name, payload?, ms?)    a custom event to every cluster node (seed 004), resolving
//                                           to the replies [{ node, value } or { node, error }]
// A script whose header has `AS:ClusterEvent: <name>` also answers that custom event: it runs
// with packet.event, packet.payload and packet.fromNode set, and what it returns (text, or a
// response whose fields become { var: values }) is its node's reply; returning nothing is silence.
// A script returns its response (`return res`), or sets `result` (text) or `packet` (a response)
// like the seed's Python scripts. A response of type form asks for more (the script runs again
// with the submitted values); a result ends the command.
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { defineModule } from '../core/module-definition.js';
import type { ModuleContext } from '../core/modules.js';
import { StanzaError } from '../core/errors.js';
import { createStreamParser } from '../xml/parser.js';
import type { Element } from '../xml/element.js';
import { tryParseJid } from '../jid.js';
import { NS_ADMIN, commandRegistry, type AdhocCommand, type CommandReply, type CommandStep, type Note } from './adhoc/commands.js';
import { badPayload, fields, type FormField } from './adhoc/forms.js';

export const NODE_ADD_SCRIPT = 'add-script';
export const NODE_REMOVE_SCRIPT = 'del-script';
const LANGUAGES = [{ label: 'JavaScript', value: 'js' }];
const COMMAND_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Options {
  'script-dir': string;
  timeout: number;
}

export interface ScriptHeader {
  description?: string;
  commandId?: string;
  component?: string;
  /** The custom cluster event the script answers (`AS:ClusterEvent:`). */
  clusterEvent?: string;
}

/** Cluster-wide request names of script events, apart from the modules' own. */
const SCRIPT_EVENT = (name: string) => `script-event/${name}`;

/** Reads the `AS:Description:`, `AS:CommandId:`, `AS:Component:` and `AS:ClusterEvent:` lines (at least one space after the colon). */
export function parseScriptHeader(text: string): ScriptHeader {
  const line = (key: string) => new RegExp(`AS:${key}:[ \\t]+(.*?)\\s*$`, 'm').exec(text)?.[1]?.trim() || undefined;
  return { description: line('Description'), commandId: line('CommandId'), component: line('Component'), clusterEvent: line('ClusterEvent') };
}

/** The script text with its header lines set to these values (replacing any it had). */
export function withScriptHeader(text: string, header: Required<Omit<ScriptHeader, 'clusterEvent'>>): string {
  const body = text.split('\n').filter((l) => !/AS:(Description|CommandId|Component):/.test(l)).join('\n').replace(/^\n+/, '');
  return `// AS:Description: ${header.description}\n// AS:CommandId: ${header.commandId}\n// AS:Component: ${header.component}\n${body}${body.endsWith('\n') ? '' : '\n'}`;
}

/**
 * The code of the worker thread a script runs in: the seed's API (packet, Command, Iq, send, log)
 * built inside the worker, the script in a fresh vm context there (no require, no process, no
 * eval), and what it produced posted back as plain data. The server terminates the worker when
 * the time limit passes, which stops any script, even one looping in promises.
 */
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const vm = require('node:vm');
const { code, filename, request } = workerData;
const text = (v) => (v === null || v === undefined ? '' : String(v));
class ScriptResponse {
  constructor(type) { this.type = type; this.title = undefined; this.instructions = []; this.fields = []; this.notes = []; }
}
class ScriptRequest {
  constructor(r) {
    this.from = r.from; this.to = r.to; this.node = r.node; this.domain = r.domain; this.action = r.action;
    this.event = r.event; this.payload = r.payload; this.fromNode = r.fromNode;
    Object.defineProperty(this, 'values', { value: new Map(r.values), enumerable: false });
  }
  commandResult(type) { return new ScriptResponse(type === 'form' ? 'form' : 'result'); }
  getFieldValue(name) { return Command.getFieldValue(this, name); }
}
const responseOf = (res) => {
  if (!(res instanceof ScriptResponse)) throw new TypeError('the first argument must be a response from packet.commandResult()');
  return res;
};
const Command = Object.freeze({
  DataType: Object.freeze({ form: 'form', result: 'result' }),
  getFieldValue(packet, name) {
    const values = packet instanceof ScriptRequest ? packet.values.get(text(name)) : undefined;
    return values && values.length ? values[0] : null;
  },
  getFieldValues(packet, name) {
    const values = packet instanceof ScriptRequest ? packet.values.get(text(name)) : undefined;
    return values && values.length ? [...values] : null;
  },
  addTitle(res, title) { responseOf(res).title = text(title); },
  addInstructions(res, t) { responseOf(res).instructions.push(text(t)); },
  addFieldValue(res, name, value, type, label) {
    responseOf(res).fields.push({ var: text(name), type: type ? text(type) : 'text-single', label: label === undefined ? undefined : text(label), values: [text(value)] });
  },
  addFieldMultiValue(res, name, values, type, label) {
    const list = Array.isArray(values) ? values.map(text) : [text(values)];
    responseOf(res).fields.push({ var: text(name), type: type ? text(type) : 'text-multi', label: label === undefined ? undefined : text(label), values: list });
  },
  addTextField(res, label, t) { responseOf(res).fields.push({ type: 'fixed', label: text(label), values: [text(t)] }); },
  addHiddenField(res, name, value) { responseOf(res).fields.push({ var: text(name), type: 'hidden', values: [text(value)] }); },
  addNote(res, t, type) { responseOf(res).notes.push({ type: type === 'warn' || type === 'error' ? type : 'info', text: text(t) }); },
});
const Iq = Object.freeze({
  commandResultForm: () => new ScriptResponse('form'),
  commandResult: () => new ScriptResponse('result'),
});
const packet = new ScriptRequest(request);
const sent = [];
const logs = [];
const asked = new Map();
let asks = 0;
parentPort.on('message', (m) => { const resolve = asked.get(m.id); asked.delete(m.id); if (resolve) resolve(m.replies); });
const Cluster = Object.freeze({
  request(name, payload, timeout) {
    const id = ++asks;
    parentPort.postMessage({ kind: 'cluster-request', id, name: text(name), payload: payload === undefined ? null : JSON.parse(JSON.stringify(payload)), timeout: typeof timeout === 'number' ? timeout : undefined });
    return new Promise((resolve) => asked.set(id, resolve));
  },
});
const sandbox = { packet, Command, Iq, Cluster, result: undefined, send: (x) => { sent.push(text(x)); }, log: (...v) => { logs.push(v.map(text).join(' ')); } };
vm.createContext(sandbox, { name: filename, codeGeneration: { strings: false, wasm: false } });
const plain = (out) => {
  if (out instanceof ScriptResponse) return { kind: 'response', type: out.type, title: out.title, instructions: out.instructions, fields: out.fields, notes: out.notes };
  if (out === undefined || out === null) return { kind: 'none' };
  return { kind: 'text', text: text(out) };
};
const finish = (value) => {
  const out = value !== undefined && value !== null ? value : sandbox.packet !== packet ? sandbox.packet : sandbox.result;
  parentPort.postMessage({ kind: 'outcome', ok: true, response: plain(out), sent, logs });
};
const fail = (e) => {
  const message = e && typeof e === 'object' && 'message' in e ? text(e.message) : text(e);
  parentPort.postMessage({ kind: 'outcome', ok: false, error: message, sent: [], logs });
};
try {
  const returned = new vm.Script('(function () {\n' + code + '\n})()', { filename, lineOffset: -1 }).runInContext(sandbox);
  if (returned && typeof returned.then === 'function') Promise.resolve(returned).then(finish, fail);
  else finish(returned);
} catch (e) {
  fail(e);
}
`;

/** What a script produced, as the worker posts it. */
type ScriptResponse =
  | { kind: 'response'; type: 'form' | 'result'; title?: string; instructions: string[]; fields: FormField[]; notes: Note[] }
  | { kind: 'none' }
  | { kind: 'text'; text: string };

type WorkerOutcome = { ok: true; response: ScriptResponse; sent: string[]; logs: string[] } | { ok: false; error: string; sent: string[]; logs: string[] };

/** Parses one stanza from XML text, in the jabber:client namespace. */
function parseStanza(text: string): Element {
  let found: Element | undefined;
  let failure: string | undefined;
  const parser = createStreamParser({
    streamStart: () => {},
    stanza: (el) => { found ??= el; },
    streamEnd: () => {},
    error: (_condition, message) => { failure = message; },
  }, { maxStanzaSize: 262144, maxDepth: 32 });
  parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>${text}`);
  if (failure !== undefined || !found) throw new Error(`send: not a stanza: ${failure ?? 'no element'}`);
  if (found.name !== 'message' && found.name !== 'presence' && found.name !== 'iq') throw new Error(`send: ${found.name} is not a stanza`);
  return found;
}

interface LoadedScript {
  id: string;
  description: string;
  component: string;
  text: string;
  compiled: vm.Script;
  remove: () => void;
}

class ScriptHost {
  private readonly scripts = new Map<string, LoadedScript>();
  private readonly registry;
  readonly dir: string;

  constructor(private readonly ctx: ModuleContext<Options>) {
    this.registry = commandRegistry(ctx);
    this.dir = resolve(ctx.config['script-dir']);
  }

  private key(component: string, id: string): string {
    return `${component} ${id}`;
  }

  list(component: string): LoadedScript[] {
    return [...this.scripts.values()].filter((s) => s.component === component).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Compiles a script; throws with the syntax error. */
  private compile(id: string, text: string): vm.Script {
    // Wrapped in a function so that a script may `return` its response, as in the seed.
    return new vm.Script(`(function () {\n${text}\n})()`, { filename: `${id}.js`, lineOffset: -1 });
  }

  /** Installs (or replaces) a script as a command of `component`. */
  install(id: string, description: string, component: string, text: string): void {
    if (!COMMAND_ID.test(id)) throw new Error(`command id "${id}" must be letters, digits, dots, dashes or underscores`);
    if (!this.registry.component(component)) throw new Error(`there is no component ${component} (known: ${this.registry.components().map((c) => c.name).join(', ')})`);
    const node = `${NS_ADMIN}#${id}`;
    const existing = this.registry.get(component, node);
    const key = this.key(component, id);
    if (existing && !this.scripts.has(key)) throw new Error(`${id} is a built-in command of ${component}; choose another command id`);
    const compiled = this.compile(id, text);
    const event = parseScriptHeader(text).clusterEvent;
    if (event !== undefined && !COMMAND_ID.test(event)) throw new Error(`cluster event "${event}" must be letters, digits, dots, dashes or underscores`);
    this.scripts.get(key)?.remove();
    const script: LoadedScript = { id, description, component, text, compiled, remove: () => {} };
    const command: AdhocCommand = {
      node,
      name: description,
      component,
      allowed: (bare) => this.ctx.isAdmin(bare),
      run: (step) => this.run(script, step),
    };
    const removeCommand = this.registry.add(command);
    let stopAnswering = () => {};
    if (event !== undefined) {
      try {
        stopAnswering = this.ctx.cluster.handle(SCRIPT_EVENT(event), (payload, from) => this.answerEvent(script, event, payload, from.node));
      } catch {
        removeCommand();
        throw new Error(`another script already answers the cluster event ${event}`);
      }
    }
    script.remove = () => { removeCommand(); stopAnswering(); };
    this.scripts.set(key, script);
  }

  uninstall(component: string, id: string): LoadedScript | undefined {
    const key = this.key(component, id);
    const script = this.scripts.get(key);
    if (!script) return undefined;
    script.remove();
    this.scripts.delete(key);
    return script;
  }

  fileOf(id: string): string {
    return join(this.dir, `${id}.js`);
  }

  /** Loads every .js file of the script directory. */
  async loadAll(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.ctx.log.warn({ err: e, dir: this.dir }, 'cannot read the admin script directory');
      return;
    }
    for (const name of names.sort()) {
      if (extname(name) !== '.js') {
        if (!name.startsWith('.')) this.ctx.log.warn({ file: name }, 'admin script skipped: only JavaScript (.js) scripts are supported');
        continue;
      }
      const file = join(this.dir, name);
      try {
        const text = await readFile(file, 'utf8');
        const header = parseScriptHeader(text);
        const id = header.commandId ?? basename(name, '.js');
        this.install(id, header.description ?? id, header.component ?? 'sess-man', text);
        this.ctx.log.info({ file, command: id }, 'admin script loaded');
      } catch (e) {
        this.ctx.log.error({ file, err: e }, 'admin script not loaded');
      }
    }
  }

  /** Runs a script for one step of its command, in a worker thread; what it does wrong is reported, never thrown. */
  private async run(script: LoadedScript, step: CommandStep): Promise<CommandReply> {
    const request = {
      from: step.requester.full, to: step.to.full, node: `${NS_ADMIN}#${script.id}`, domain: step.domain, action: step.action,
      values: step.values.entries(),
    };
    const outcome = await this.inWorker(script, request);
    for (const line of outcome.logs) this.ctx.log.info({ command: script.id, log: line }, 'admin script');
    if (!outcome.ok) {
      this.ctx.log.warn({ command: script.id, by: step.requester.bare, error: outcome.error }, 'admin script failed');
      return { status: 'completed', notes: [{ type: 'error', text: `The script ${script.id} failed: ${outcome.error}` }] };
    }
    const stanzas: Element[] = [];
    try {
      for (const text of outcome.sent) {
        const stanza = parseStanza(text);
        if (!stanza.attrs.to || !tryParseJid(stanza.attrs.to)) throw new Error('send: the stanza needs a valid to address');
        stanza.attrs.from = step.to.full;
        stanzas.push(stanza);
      }
    } catch (e) {
      return { status: 'completed', notes: [{ type: 'error', text: `The script ${script.id} failed: ${(e as Error).message}` }] };
    }
    for (const stanza of stanzas) void this.ctx.router.route(stanza);
    return replyOf(script, outcome.response);
  }

  /** Runs a script as the answer of its node to a custom cluster event; a failure is the reply's error. */
  private async answerEvent(script: LoadedScript, event: string, payload: unknown, fromNode: string): Promise<unknown> {
    const domain = this.ctx.core['virtual-hosts'][0]!;
    const outcome = await this.inWorker(script, { from: '', to: domain, node: '', domain, action: 'event', values: [], event, payload, fromNode });
    for (const line of outcome.logs) this.ctx.log.info({ command: script.id, event, log: line }, 'admin script');
    if (!outcome.ok) throw new Error(`the script ${script.id} failed: ${outcome.error}`);
    for (const text of outcome.sent) {
      const stanza = parseStanza(text);
      if (!stanza.attrs.to || !tryParseJid(stanza.attrs.to)) throw new Error('send: the stanza needs a valid to address');
      stanza.attrs.from = domain;
      void this.ctx.router.route(stanza);
    }
    const response = outcome.response;
    if (response.kind === 'text') return response.text;
    if (response.kind === 'none') return undefined;
    return Object.fromEntries(response.fields.filter((f) => f.var !== undefined).map((f) => [f.var!, f.values]));
  }

  private inWorker(script: LoadedScript, request: unknown): Promise<WorkerOutcome> {
    const timeout = this.ctx.config.timeout;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: WorkerOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        resolve(outcome);
      };
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { code: script.text, filename: `${script.id}.js`, request },
        resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
        stdout: true,
        stderr: true,
      });
      const timer = setTimeout(() => settle({ ok: false, error: `Script execution timed out after ${timeout}ms`, sent: [], logs: [] }), timeout);
      worker.on('message', (m: WorkerOutcome | { kind: 'cluster-request'; id: number; name: string; payload: unknown; timeout?: number }) => {
        if (!('kind' in m) || m.kind !== 'cluster-request') {
          settle(m as WorkerOutcome);
          return;
        }
        // A script's custom event to every node; the answer goes back into its worker.
        const timeout = typeof m.timeout === 'number' && m.timeout > 0 ? Math.min(m.timeout, this.ctx.config.timeout) : undefined;
        void this.ctx.cluster.request(SCRIPT_EVENT(m.name), m.payload, { timeout })
          .then((replies) => { if (!settled) worker.postMessage({ id: m.id, replies }); },
            // The bus itself failed (not connected): the script ends with why, not at its timeout.
            (err: unknown) => settle({ ok: false, error: `Cluster.request failed: ${(err as Error).message}`, sent: [], logs: [] }));
      });
      worker.once('error', (e) => settle({ ok: false, error: e.message, sent: [], logs: [] }));
      worker.once('exit', (code) => settle({ ok: false, error: `the script stopped (exit code ${code})`, sent: [], logs: [] }));
    });
  }
}

function replyOf(script: LoadedScript, response: ScriptResponse): CommandReply {
  if (response.kind === 'response') {
    const form = { type: response.type, title: response.title, instructions: response.instructions, fields: response.fields };
    if (response.type === 'form') return { status: 'executing', form, actions: ['complete'], notes: response.notes };
    const empty = form.fields.length === 0 && form.instructions.length === 0 && form.title === undefined;
    return { status: 'completed', form: empty ? undefined : form, notes: response.notes };
  }
  if (response.kind === 'none') return { status: 'completed', notes: [{ type: 'info', text: `${script.description}: done` }] };
  return { status: 'completed', notes: [{ type: 'info', text: response.text }] };
}

export function createScriptCommands(ctx: ModuleContext<Options>, host: ScriptHost, component: string): AdhocCommand[] {
  const adminOnly = (bare: string) => ctx.isAdmin(bare);
  return [
    {
      node: NODE_ADD_SCRIPT,
      name: 'New command script',
      component,
      allowed: adminOnly,
      async run(step) {
        if (!step.values.submitted) {
          return {
            status: 'executing',
            actions: ['complete'],
            form: {
              type: 'form',
              title: 'New command script',
              instructions: [`Adds a command to this component, or replaces the script with the same command id. The command node is ${NS_ADMIN}#<command id>.`],
              fields: [
                fields.text('description', undefined, { label: 'Description', required: true }),
                fields.text('command-id', undefined, { label: 'Command id', required: true }),
                fields.list('language', 'js', LANGUAGES, { label: 'Language' }),
                fields.textMulti('script-text', undefined, { label: 'Script text', required: true }),
                fields.boolean('save-to-disk', true, { label: 'Save to disk' }),
              ],
            },
          };
        }
        const description = step.values.required('description', 'Description');
        const id = step.values.required('command-id', 'Command id');
        const language = step.values.text('language') ?? 'js';
        if (language !== 'js') throw badPayload(`language ${language} is not supported: scripts are JavaScript (js)`);
        const text = step.values.all('script-text').join('\n');
        if (text.trim() === '') throw badPayload('Script text is required');
        const save = step.values.bool('save-to-disk', true);
        try {
          host.install(id, description, component, text);
        } catch (e) {
          throw new StanzaError('not-acceptable', `the script was not loaded: ${(e as Error).message}`);
        }
        ctx.log.info({ command: id, component, by: step.requester.bare }, 'admin script loaded');
        const notes: Note[] = [{ type: 'info', text: `Script loaded successfully: ${NS_ADMIN}#${id} on ${component}.` }];
        if (save) {
          const file = host.fileOf(id);
          try {
            await mkdir(host.dir, { recursive: true });
            await writeFile(file, withScriptHeader(text, { description, commandId: id, component }));
            notes.push({ type: 'info', text: `Saved to ${file}.` });
          } catch (e) {
            notes.push({ type: 'warn', text: `It could not be saved to disk (${(e as Error).message}); it is loaded until the server stops.` });
          }
        }
        return { status: 'completed', notes };
      },
    },
    {
      node: NODE_REMOVE_SCRIPT,
      name: 'Remove command script',
      component,
      allowed: adminOnly,
      async run(step) {
        const scripts = host.list(component);
        if (!step.values.submitted) {
          if (scripts.length === 0) return { status: 'completed', notes: [{ type: 'info', text: 'There is no script on this component.' }] };
          return {
            status: 'executing',
            actions: ['complete'],
            form: {
              type: 'form',
              title: 'Remove command script',
              fields: [
                fields.list('command-id', scripts[0]!.id, scripts.map((s) => ({ label: `${s.description} (${s.id})`, value: s.id })), { label: 'Command id', required: true }),
                fields.boolean('remove-from-disk', true, { label: 'Remove from disk' }),
              ],
            },
          };
        }
        const id = step.values.required('command-id', 'Command id');
        if (!host.uninstall(component, id)) throw new StanzaError('item-not-found', `there is no script ${id} on this component`);
        const notes: Note[] = [{ type: 'info', text: `Script ${id} removed.` }];
        if (step.values.bool('remove-from-disk', true)) {
          const file = host.fileOf(id);
          try {
            const onDisk = parseScriptHeader(await readFile(file, 'utf8'));
            if ((onDisk.component ?? 'sess-man') === component) {
              await unlink(file);
              notes.push({ type: 'info', text: `Removed ${file}.` });
            }
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') notes.push({ type: 'warn', text: `${file} could not be removed (${(e as Error).message}).` });
          }
        }
        ctx.log.info({ command: id, component, by: step.requester.bare }, 'admin script removed');
        return { status: 'completed', notes };
      },
    },
  ];
}

export default defineModule({
  name: 'scripts',
  description: "Admin scripts (seed 001 section 11.14): JavaScript ad-hoc commands added, replaced and removed at runtime, loaded at start from Tigase's script directory",
  config: z.object({
    'script-dir': z.string().min(1).default('scripts/admin')
      .describe("Directory of the admin scripts loaded at start and written by \"Save to disk\" (Tigase's --script-dir), relative to the working directory"),
    timeout: z.number().int().min(10).default(2000).describe('Milliseconds a script may run before it is stopped and the failure reported'),
  }).strict(),
  async setup(ctx) {
    const host = new ScriptHost(ctx);
    const registry = commandRegistry(ctx);
    const removers = registry.components().flatMap((c) => createScriptCommands(ctx, host, c.name).map((cmd) => registry.add(cmd)));
    await host.loadAll();
    return () => {
      for (const r of removers) r();
      for (const c of registry.components()) for (const s of host.list(c.name)) host.uninstall(c.name, s.id);
    };
  },
});
