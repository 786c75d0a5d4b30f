// The Asterisk Manager Interface wire format (AMI over TCP, port 5038): after a one-line banner
// (`Asterisk Call Manager/<version>`) both sides exchange messages of `Key: Value` lines, each
// message ended by an empty line, lines ended by CRLF. Hand-written because it is the product:
// the npm AMI clients do not expose garbage lines, limits and the banner the way the relay needs.

/** One AMI message (an action, a response or an event): its fields in order, keys compared ignoring case as Asterisk does. */
export class AmiMessage {
  constructor(readonly fields: ReadonlyArray<readonly [string, string]>) {}

  /** The first value of a field, or undefined. */
  get(key: string): string | undefined {
    const wanted = key.toLowerCase();
    for (const [k, v] of this.fields) if (k.toLowerCase() === wanted) return v;
    return undefined;
  }

  get event(): string | undefined {
    return this.get('Event');
  }

  get response(): string | undefined {
    return this.get('Response');
  }

  get actionId(): string | undefined {
    return this.get('ActionID');
  }

  toString(): string {
    return this.fields.map(([k, v]) => `${k}: ${v}`).join(', ');
  }
}

export const BANNER_PREFIX = 'Asterisk Call Manager/';

/** Limits that keep a misbehaving peer from growing our buffers without end. */
export interface CodecLimits {
  /** Longest line, in bytes (default 65536). */
  maxLineLength: number;
  /** Most fields in one message (default 1000). */
  maxFields: number;
}

export const DEFAULT_CODEC_LIMITS: CodecLimits = { maxLineLength: 65536, maxFields: 1000 };

export interface DecoderHandlers {
  banner(version: string): void;
  message(message: AmiMessage): void;
  /** A line that is neither `Key: Value` nor empty: reported and skipped, the stream goes on. */
  garbage(line: string): void;
  /** The peer broke a limit or is not an AMI server: the connection should end. */
  fatal(reason: string): void;
}

/** Incremental decoder of what an Asterisk sends. */
export class AmiDecoder {
  private buffer = '';
  private fields: [string, string][] = [];
  private sawBanner = false;
  private failed = false;

  constructor(private readonly handlers: DecoderHandlers, private readonly limits: CodecLimits = DEFAULT_CODEC_LIMITS) {}

  write(chunk: string): void {
    if (this.failed) return;
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      const end = this.buffer.indexOf('\n', start);
      if (end < 0) break;
      const line = this.buffer.slice(start, end > start && this.buffer[end - 1] === '\r' ? end - 1 : end);
      start = end + 1;
      this.line(line);
      if (this.failed) return;
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > this.limits.maxLineLength) this.fail(`a line longer than ${this.limits.maxLineLength} bytes`);
  }

  private line(line: string): void {
    if (line.length > this.limits.maxLineLength) return this.fail(`a line longer than ${this.limits.maxLineLength} bytes`);
    if (!this.sawBanner) {
      // The banner has no terminating empty line; anything else first means this is not AMI.
      if (!line.startsWith(BANNER_PREFIX)) return this.fail(`not an Asterisk manager interface: the first line is "${line.slice(0, 80)}"`);
      this.sawBanner = true;
      this.handlers.banner(line.slice(BANNER_PREFIX.length).trim());
      return;
    }
    if (line === '') {
      if (this.fields.length > 0) {
        const message = new AmiMessage(this.fields);
        this.fields = [];
        this.handlers.message(message);
      }
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return this.handlers.garbage(line);
    if (this.fields.length >= this.limits.maxFields) return this.fail(`a message with more than ${this.limits.maxFields} fields`);
    this.fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).replace(/^ /, '')]);
  }

  private fail(reason: string): void {
    this.failed = true;
    this.buffer = '';
    this.fields = [];
    this.handlers.fatal(reason);
  }
}

/** Characters that would end a line or a message early: a value with one would inject fields. */
const LINE_BREAK = /[\r\n\0]/;

export class UnsafeValueError extends Error {}

/** An action as the bytes Asterisk reads; throws UnsafeValueError for a key or value that would break the framing. */
export function encodeAction(action: string, actionId: string, fields: Record<string, string>): string {
  let text = `Action: ${action}\r\nActionID: ${actionId}\r\n`;
  for (const [key, value] of Object.entries(fields)) {
    if (LINE_BREAK.test(key) || key.includes(':') || LINE_BREAK.test(value)) throw new UnsafeValueError(`the ${key} of ${action} contains a line break`);
    text += `${key}: ${value}\r\n`;
  }
  return text + '\r\n';
}

/** Whether a name or value can travel in an AMI field. */
export function isSafeFieldValue(value: string): boolean {
  return !LINE_BREAK.test(value);
}
