// Micro-benchmark of the XML stream parsers (src/xml/parser.ts: STREAM_PARSERS).
//
//   node --import tsx bench/parser.ts            all workloads
//   node --import tsx bench/parser.ts chat       only the workloads whose name contains "chat"
//
// Feeds the same client-to-server traffic, as Buffers cut the way a socket delivers it, through
// each implementation and reports throughput (MB/s of UTF-8 input, stanzas/s) and garbage
// collection during the run (count and time of scavenges / mark-sweeps, per MB of input), a
// proxy for how much each allocates. Workloads:
//   chat        synthesised chat-server traffic: messages (bodies with entities, non-ASCII, chat
//               states, receipts), presence with caps, roster/disco/ping iqs; one stanza per chunk
//   asterisk    the client-to-server chunks recorded in test/fixtures/asterisk/*.log, replayed
//               as recorded, then bursts of Asterisk device-state PubSub publishes, ~4 KB chunks
//   bulk-64k    both mixed, cut in 64 KiB chunks (a busy socket)
//   trickle-16  both mixed, cut in 16-byte chunks (worst case: every token split)
// Each run parses a fresh stream of at least 4 MB; the figure is the median of the runs,
// implementations interleaved.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PerformanceObserver } from 'node:perf_hooks';
import { STREAM_PARSERS, type ParserLimits } from '../src/xml/parser.js';
import { Utf8StreamDecoder } from '../src/xml/fast-parser.js';
import { rng } from '../test/support/rng.js';

const HEADER = `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='localhost' version='1.0'>`;
const LIMITS: ParserLimits = { maxStanzaSize: 262144, maxDepth: 32 };
const TARGET_BYTES = 4 << 20;
const RUNS = Number(process.env.RUNS) || 7;
const WARMUP = 2;

// ---------------------------------------------------------------------------------------------
// Traffic

const PUBLISH = (id: string, device: string, state: string) =>
  `<iq type='set' to='pubsub.localhost' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='device_state'><item id='${device}'><state xmlns='http://asterisk.org' eid='00:11:22:33:44:55' cachable='1'>${state}</state></item></publish></pubsub></iq>`;
const MWI = (id: string, mailbox: string, n: number) =>
  `<iq type='set' to='pubsub.localhost' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='message_waiting'><item id='${mailbox}'><mailbox xmlns='http://asterisk.org' eid='00:11:22:33:44:55'><NEWMSGS>${n}</NEWMSGS><OLDMSGS>${n * 2}</OLDMSGS></mailbox></item></publish></pubsub></iq>`;

function chatStanzas(count: number): string[] {
  const rnd = rng(42);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const users = ['alice', 'bob', 'carol', 'dave', 'eve', 'frank', 'grace', 'heidi'];
  const jid = () => `${pick(users)}@localhost/${pick(['phone', 'laptop', 'Conversations.x2Ab', 'gajim'])}`;
  const texts = ['ok', 'see you at 5', "I'll be there in 10 minutes &amp; bring the slides", 'Thanks! 👍', 'Can you call me back? It&apos;s about the &lt;deploy&gt; tomorrow',
    'Привет, как дела?', '会議は15時からです', 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'];
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const id = (n * 7919).toString(36);
    const r = rnd();
    if (r < 0.45) {
      out.push(`<message to='${jid()}' type='chat' id='${id}' xml:lang='en'><body>${pick(texts)}</body><active xmlns='http://jabber.org/protocol/chatstates'/>` +
        (rnd() < 0.5 ? `<request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='${id}-0f4c'/>` : '') + (rnd() < 0.3 ? `<thread>t${id}</thread>` : '') + `</message>`);
    } else if (r < 0.55) {
      out.push(`<message to='${jid()}' type='chat' id='${id}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    } else if (r < 0.75) {
      out.push(`<presence${rnd() < 0.3 ? ` to='${pick(users)}@localhost' type='subscribed'` : ''}><show>${pick(['away', 'chat', 'dnd', 'xa'])}</show><status>${pick(texts)}</status><priority>${Math.floor(rnd() * 10)}</priority>` +
        `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`);
    } else if (r < 0.85) {
      out.push(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    } else if (r < 0.92) {
      out.push(`<iq type='get' id='${id}'><query xmlns='jabber:iq:roster' ver='ver${n % 100}'/></iq>`);
    } else {
      out.push(`<iq type='result' id='${id}' to='${jid()}'><query xmlns='http://jabber.org/protocol/disco#info' node='http://conversations.im#q07IKJEyjvHSyhy//CH0CxmKi8w='>` +
        `<identity category='client' type='phone' name='Conversations'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/chatstates'/>` +
        `<feature var='urn:xmpp:receipts'/><feature var='urn:xmpp:ping'/><feature var='http://jabber.org/protocol/disco#info'/></query></iq>`);
    }
  }
  return out;
}

/** Client-to-server payloads recorded in the Asterisk fixtures, minus stream headers and closes. */
function asteriskRecorded(): Buffer[] {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'asterisk');
  const out: Buffer[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.log') && !f.includes('malformed')).sort()) {
    const data = readFileSync(join(dir, f));
    let pos = 0;
    for (;;) {
      const h = data.indexOf('### ', pos);
      if (h < 0) break;
      const eol = data.indexOf('\n', h);
      const line = data.subarray(h, eol).toString();
      const m = / C>S len=(\d+)$/.exec(line);
      const len = m ? Number(m[1]) : 0;
      const payload = data.subarray(eol + 1, eol + 1 + len);
      pos = eol + 1 + len;
      const text = payload.toString();
      if (!m || len === 0 || text.includes('<stream:stream') || text.includes('</stream:stream>') || text.includes('<<EOF>>')) continue;
      out.push(Buffer.from(payload));
    }
  }
  return out;
}

function asteriskBurst(count: number): string[] {
  const rnd = rng(7);
  const states = ['NOT_INUSE', 'INUSE', 'BUSY', 'RINGING', 'ONHOLD', 'UNAVAILABLE'];
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const id = 'a' + n.toString(36).padStart(4, 'a');
    out.push(rnd() < 0.85 ? PUBLISH(id, rnd() < 0.3 ? 'Custom:mystate' : `SIP/${1000 + Math.floor(rnd() * 200)}`, states[Math.floor(rnd() * states.length)]!)
      : MWI(id, `${100 + Math.floor(rnd() * 50)}@default`, Math.floor(rnd() * 5)));
  }
  return out;
}

/** Joins stanzas into chunks of about `size` bytes, cutting only between stanzas (as a client writes them). */
function packed(stanzas: string[], size: number): Buffer[] {
  const out: Buffer[] = [];
  let cur = '';
  for (const s of stanzas) {
    cur += s;
    if (Buffer.byteLength(cur) >= size) { out.push(Buffer.from(cur)); cur = ''; }
  }
  if (cur) out.push(Buffer.from(cur));
  return out;
}

/** Cuts a byte stream every `size` bytes, wherever that falls (inside tags and UTF-8 characters too). */
function cut(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let k = 0; k < data.length; k += size) out.push(data.subarray(k, k + size));
  return out;
}

interface Workload { name: string; chunks: Buffer[]; bytes: number; stanzas: number }

function workload(name: string, body: Buffer[], stanzas: number): Workload {
  const chunks = [Buffer.from(HEADER), ...body];
  return { name, chunks, bytes: chunks.reduce((n, c) => n + c.length, 0), stanzas };
}

function repeatTo<T>(items: T[], size: (t: T) => number, target: number): T[] {
  const out: T[] = [];
  let total = 0;
  while (total < target) for (const t of items) { out.push(t); total += size(t); }
  return out;
}

function countStanzas(chunks: Buffer[]): number {
  let n = 0;
  const p = new STREAM_PARSERS.fast!({ streamStart() {}, stanza() { n++; }, streamEnd() {}, error(c, t) { throw new Error(`benchmark traffic rejected: ${c} ${t}`); } }, LIMITS);
  for (const c of chunks) p.write(c);
  return n;
}

function buildWorkloads(): Workload[] {
  const chat = chatStanzas(4000);
  const chatBody = repeatTo(chat.map((s) => Buffer.from(s)), (b) => b.length, TARGET_BYTES);
  const recorded = asteriskRecorded();
  const burst = packed(asteriskBurst(4000), 4096);
  const asteriskBody = repeatTo([...recorded, ...burst], (b) => b.length, TARGET_BYTES);
  const mixed = Buffer.concat(repeatTo([...chat.map((s) => Buffer.from(s)), ...recorded, ...burst], (b) => b.length, TARGET_BYTES));
  const all = [
    workload('chat', chatBody, 0),
    workload('asterisk', asteriskBody, 0),
    workload('bulk-64k', cut(mixed, 65536), 0),
    workload('trickle-16', cut(mixed, 16), 0),
  ];
  for (const w of all) w.stanzas = countStanzas(w.chunks);
  return all;
}

// ---------------------------------------------------------------------------------------------
// Measurement

const gc = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    if (kind === 1) gc.minor++; else if (kind === 2 || kind === 4) gc.major++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const settle = () => new Promise<void>((r) => setTimeout(r, 20));

interface Sample { ns: number; minor: number; major: number; gcMs: number }

async function runOnce(impl: string, w: Workload): Promise<Sample> {
  await settle();
  const before = { ...gc };
  let stanzas = 0;
  let names = 0;
  const handlers = {
    streamStart() {},
    stanza(el: { name: string }) { stanzas++; names += el.name.length; },
    streamEnd() {},
    error(c: string, t: string) { throw new Error(`${impl} rejected ${w.name}: ${c} ${t}`); },
  };
  let ns: number;
  if (impl === 'decode only') {
    const d = new Utf8StreamDecoder();
    const t0 = process.hrtime.bigint();
    for (const c of w.chunks) names += d.decode(c).length;
    ns = Number(process.hrtime.bigint() - t0);
    stanzas = w.stanzas;
  } else {
    const t0 = process.hrtime.bigint();
    const p = new STREAM_PARSERS[impl]!(handlers, LIMITS);
    for (const c of w.chunks) p.write(c);
    ns = Number(process.hrtime.bigint() - t0);
  }
  if (stanzas !== w.stanzas || names < 0) throw new Error(`${impl} parsed ${stanzas} stanzas of ${w.name}, expected ${w.stanzas}`);
  await settle();
  return { ns, minor: gc.minor - before.minor, major: gc.major - before.major, gcMs: gc.ms - before.ms };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<void> {
  const filter = process.argv[2];
  const workloads = buildWorkloads().filter((w) => !filter || w.name.includes(filter));
  const impls = [...Object.keys(STREAM_PARSERS), 'decode only'];
  console.log(`node ${process.version}, ${RUNS} runs (+${WARMUP} warm-up) per workload and implementation, median shown\n`);
  const rows: string[][] = [['workload', 'chunks', 'MB', 'stanzas', 'implementation', 'MB/s', 'stanzas/s', 'µs/stanza', 'GC/MB (scav+ms)', 'vs saxes']];
  for (const w of workloads) {
    const samples: Record<string, Sample[]> = Object.fromEntries(impls.map((i) => [i, []]));
    for (let r = 0; r < RUNS + WARMUP; r++) {
      for (const impl of r % 2 ? [...impls].reverse() : impls) {
        const s = await runOnce(impl, w);
        if (r >= WARMUP) samples[impl]!.push(s);
      }
    }
    const mb = w.bytes / 1e6;
    const saxesNs = median(samples.saxes!.map((s) => s.ns));
    for (const impl of impls) {
      const ns = median(samples[impl]!.map((s) => s.ns));
      const minor = median(samples[impl]!.map((s) => s.minor + s.major));
      const gcMs = median(samples[impl]!.map((s) => s.gcMs));
      rows.push([w.name, String(w.chunks.length), mb.toFixed(1), String(w.stanzas), impl,
        (mb / (ns / 1e9)).toFixed(1), impl === 'decode only' ? '' : Math.round(w.stanzas / (ns / 1e9)).toLocaleString('en'),
        impl === 'decode only' ? '' : (ns / 1e3 / w.stanzas).toFixed(2),
        `${(minor / mb).toFixed(2)} / ${(gcMs / mb).toFixed(2)}ms`, impl === 'saxes' ? '1.00x' : `${(saxesNs / ns).toFixed(2)}x`]);
    }
  }
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  for (const r of rows) console.log(r.map((c, k) => (k >= 5 || k === 1 || k === 2 || k === 3 ? c.padStart(widths[k]!) : c.padEnd(widths[k]!))).join('  '));
}

await main();
