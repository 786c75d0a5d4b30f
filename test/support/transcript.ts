// Reads the Asterisk wire captures copied into test/fixtures/asterisk from shared/testdata: a sequence of
// `### <time> conn=<n> <agent> <OPEN|CLOSE|C>S|S>C> len=<bytes>` records with raw bytes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface TranscriptRecord {
  conn: number;
  agent: string;
  /** EOF: that side closed its half of the TCP connection (the capture writes `<<EOF>>`). */
  kind: 'OPEN' | 'CLOSE' | 'C>S' | 'S>C' | 'C>S EOF' | 'S>C EOF';
  data: string;
}

export const TRANSCRIPTS_DIR = fileURLToPath(new URL('../fixtures/asterisk/', import.meta.url));

export function readTranscript(name: string): TranscriptRecord[] {
  const text = readFileSync(TRANSCRIPTS_DIR + name, 'utf8');
  const out: TranscriptRecord[] = [];
  const re = /^### \S+ conn=(\d+) (\S+) (OPEN|CLOSE|C>S|S>C) len=(\d+)\n/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    const len = Number(m[4]);
    const start = m.index + m[0].length;
    const data = Buffer.from(text.slice(start)).subarray(0, len).toString('utf8');
    const kind = (data === '<<EOF>>' ? `${m[3]} EOF` : m[3]) as TranscriptRecord['kind'];
    out.push({ conn: Number(m[1]), agent: m[2]!, kind, data: kind.endsWith('EOF') ? '' : data });
  }
  return out;
}
