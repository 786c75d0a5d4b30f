// Replays the client side of an Asterisk wire capture (test/fixtures/asterisk) against a test
// server, byte for byte: each Asterisk connection becomes a raw client, each captured C>S chunk
// is sent as it was, and a bare close or a reset in the capture is a bare TCP close here. After
// every chunk (and every MARK, the CLI or admin actions taken during the capture) the replay
// waits for the server to go quiet and records what each simulated Asterisk received, so tests
// can check replies and notifications step by step.
import { readFileSync } from 'node:fs';
import { createStreamParser } from '../../src/xml/parser.js';
import type { Element } from '../../src/xml/element.js';
import { RawClient } from './raw-client.js';
import { TRANSCRIPTS_DIR, readTranscript, type TranscriptRecord } from './transcript.js';

export type ReplayEvent = { kind: 'record'; record: TranscriptRecord } | { kind: 'mark'; text: string };

/** The capture's records and MARK lines, in file order. */
export function readReplayEvents(name: string): ReplayEvent[] {
  const text = readFileSync(TRANSCRIPTS_DIR + name, 'utf8');
  const records = readTranscript(name);
  const events: ReplayEvent[] = [];
  let next = 0;
  // Record headers and MARK lines; a MARK's own text is not a record header, so the two never mix.
  for (const m of text.matchAll(/^### (?:MARK \S+ (.*)|(\S+) conn=\d+ \S+ (?:OPEN|CLOSE|C>S|S>C) len=\d+)$/gm)) {
    if (m[1] !== undefined) events.push({ kind: 'mark', text: m[1] });
    else events.push({ kind: 'record', record: records[next++]! });
  }
  return events;
}

/** One step of a replay: a chunk an Asterisk sent (or a MARK), and what everyone received until the server was quiet. */
export interface ReplayStep {
  /** `a1`, `a2`, or `MARK`. */
  agent: string;
  conn: number;
  /** The stanzas of the chunk, parsed (empty for stream headers, SASL and closes). */
  sent: Element[];
  mark?: string;
  /** Stanzas received during the step, by agent. */
  received: Map<string, Element[]>;
}

/** Parses a chunk of stanzas as a client sends them after the stream header. */
export function parseChunk(data: string): Element[] {
  const out: Element[] = [];
  const parser = createStreamParser({ streamStart: () => undefined, stanza: (el) => { out.push(el); }, streamEnd: () => undefined, error: () => undefined },
    { maxStanzaSize: 10_000_000, maxDepth: 100 });
  parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>${data}`);
  return out;
}

export class AsteriskReplay {
  /** The connection of each agent, while it is open. */
  readonly clients = new Map<string, RawClient>();
  readonly steps: ReplayStep[] = [];

  constructor(private readonly port: number, private readonly quietMs = 40) {}

  /** Runs the whole capture; `onMark` performs a MARK's action (e.g. an admin's publish) and may return what it sent. */
  async run(name: string, onMark: (text: string) => Promise<Element[] | void> = async () => undefined): Promise<ReplayStep[]> {
    for (const event of readReplayEvents(name)) {
      if (event.kind === 'mark') {
        const sent = (await onMark(event.text)) ?? [];
        await this.step({ agent: 'MARK', conn: 0, sent, mark: event.text });
        continue;
      }
      const { record } = event;
      if (record.kind === 'OPEN') {
        this.clients.set(record.agent, await RawClient.connect(this.port));
      } else if (record.kind === 'C>S EOF' || (record.kind === 'C>S' && record.data.startsWith('<<ERROR'))) {
        // Asterisk stopped (or died): a bare TCP close, no </stream:stream>, no unavailable presence.
        await this.step({ agent: record.agent, conn: record.conn, sent: [] });
        const client = this.clients.get(record.agent);
        this.clients.delete(record.agent);
        client?.destroy();
        await client?.closed;
      } else if (record.kind === 'C>S') {
        const client = this.clients.get(record.agent)!;
        const header = record.data.startsWith('<?xml');
        if (header) client.restartParser();
        client.send(record.data);
        const sent = header || record.data.startsWith('<auth') ? [] : parseChunk(record.data);
        await this.step({ agent: record.agent, conn: record.conn, sent });
      }
    }
    for (const client of this.clients.values()) client.destroy();
    return this.steps;
  }

  /** Closes what is still open. */
  close(): void {
    for (const client of this.clients.values()) client.destroy();
  }

  private async step(step: Omit<ReplayStep, 'received'>): Promise<void> {
    const client = this.clients.get(step.agent);
    if (client) await this.answered(client, step.sent);
    await this.settle();
    const received = new Map<string, Element[]>();
    for (const [agent, client] of this.clients) received.set(agent, client.stanzas.splice(0));
    this.steps.push({ ...step, received });
  }

  /** Waits (up to 20 s, for loaded CI machines) until every IQ get or set of a chunk sent to the server has its reply, however slow storage is. */
  private async answered(client: RawClient, sent: Element[]): Promise<void> {
    // Only the server's and its services' answers: a query to another Asterisk (disco#info of a
    // full JID) stays unanswered in a replay, since the simulated peer does not answer.
    const ids = sent.filter((s) => s.name === 'iq' && (s.attrs.type === 'get' || s.attrs.type === 'set') && !(s.attrs.to ?? '').includes('@')).map((s) => s.attrs.id);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const unanswered = [...ids];
      for (const s of client.stanzas) {
        if (s.name !== 'iq' || (s.attrs.type !== 'result' && s.attrs.type !== 'error')) continue;
        const i = unanswered.indexOf(s.attrs.id);
        if (i >= 0) unanswered.splice(i, 1);
      }
      if (unanswered.length === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits until no client has received anything for `quietMs`. */
  private async settle(): Promise<void> {
    let last = -1;
    for (;;) {
      const total = [...this.clients.values()].reduce((n, c) => n + c.received.length, 0);
      if (total === last) return;
      last = total;
      await new Promise((r) => setTimeout(r, this.quietMs));
    }
  }
}
