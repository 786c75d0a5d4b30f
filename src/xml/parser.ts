// Incremental parser for one XML stream (RFC 6120 section 11): the stream header, then one
// complete Element per top-level child (stanza), then the stream close. It enforces the
// restricted XML profile (no DTD, comments, processing instructions or undeclared entity
// references) and the configured limits, and reports the first violation as a stream error
// condition; after that it ignores further input.
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Element, type Attrs } from './element.js';
import { FastStreamParser, Utf8StreamDecoder, isNameStartAt, scanName } from './fast-parser.js';

export type StreamErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'invalid-namespace' | 'bad-format';

export interface ParserLimits {
  /**
   * Largest stanza, in characters (UTF-16 units) of its source text from its `<` to its last
   * `>`. The same bound applies to everything before the first stanza (XML declaration and
   * stream header) and to the whitespace between two stanzas, so the parser never holds more
   * than about this much pending input (plus one chunk).
   */
  maxStanzaSize: number;
  /** Deepest element nesting inside a stanza (the stanza itself is depth 1). */
  maxDepth: number;
}

export interface StreamHeader {
  /** Local name and namespace of the root element (normally `stream` in the streams namespace). */
  local: string;
  uri: string;
  prefix: string;
  /** Namespace of unprefixed stanzas (`jabber:client`), from the root's `xmlns`. */
  defaultNS: string | undefined;
  /** Attributes other than namespace declarations. */
  attrs: Attrs;
}

export interface StreamHandlers {
  streamStart(header: StreamHeader): void;
  stanza(el: Element): void;
  streamEnd(): void;
  error(condition: StreamErrorCondition, text: string): void;
}

export interface StreamParser {
  write(chunk: Buffer | string): void;
  /** The peer closed the transport: a stream left open is simply abandoned. */
  readonly failed: boolean;
}

export const DEFAULT_LIMITS: ParserLimits = { maxStanzaSize: 262144, maxDepth: 32 };

const S = ' '.charCodeAt(0);

/** A partial entity reference saxes holds at the end of a chunk that can still become a valid one. */
function isEntityPrefix(e: string): boolean {
  if (e.charCodeAt(0) === 35) return /^#(?:x[0-9a-fA-F]*|[0-9]*)$/.test(e);
  return isNameStartAt(e, 0) && scanName(e, 0, e.length) === e.length;
}

/**
 * The reference implementation, on the `saxes` library: slower than `FastStreamParser`, kept
 * for the conformance tests and the benchmark to compare against.
 */
export class SaxesStreamParser implements StreamParser {
  failed = false;
  private readonly sax: SaxesParser<{ xmlns: true; position: true }>;
  private readonly decoder = new Utf8StreamDecoder();
  private stack: Element[] = [];
  private nsStack: string[] = [];
  private defaultNS: string | undefined;
  private headerSeen = false;
  // Stanzas completed during the current write, with the position where each ended. saxes
  // reports a mismatched close tag only after closing the open element, so delivery waits
  // for the end of the write, and an error drops what completed at its own position.
  private ready: Element[] = [];
  private readyAt: number[] = [];
  private failure: { condition: StreamErrorCondition; text: string } | undefined;
  private ended = false;
  private endedAt = -1;
  // Size accounting (see ParserLimits.maxStanzaSize), in absolute positions of the decoded
  // stream, which are also saxes' positions. Between stanzas (and before the header) this
  // wrapper scans the input itself, because saxes reports text there only at the next `<`
  // and gives no event at a stanza's `<`.
  private regionStart = 0;
  private inGap = true;
  /** saxes' position where a gap begins that is still to be scanned (-1: none). */
  private gapAt = -1;
  private carried = false;
  private chunk = '';
  private chunkBase = 0;
  private fed = 0;

  constructor(private readonly handlers: StreamHandlers, private readonly limits: ParserLimits) {
    // XMPP is XML 1.0: an XML declaration saying 1.1 must not switch to 1.1's character rules.
    const sax = new SaxesParser({ xmlns: true, position: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
    this.sax = sax;
    sax.on('error', (e) => {
      if (this.gapAt >= 0) {
        // An error at the very position a stanza closed is saxes' late report of a
        // mismatched close tag: that stanza is the faulty one. Anything later comes after
        // what follows the stanza, which is checked first.
        if (sax.position === this.gapAt) { this.gapAt = -1; this.inGap = false; } else this.flushGap();
      }
      if (this.ended) {
        // The only error saxes can report at the very position the root closed is a
        // mismatched close tag for it; anything later is after the end and ignored.
        if (sax.position === this.endedAt) { this.ended = false; this.failure = { condition: 'not-well-formed', text: 'mismatched close tag for the stream' }; }
        return;
      }
      if (this.failed) return;
      const msg = e.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
      if (/undefined entity/i.test(msg)) this.fail('restricted-xml', 'entity references other than the predefined five are not allowed');
      else if (/XML declaration must (?:be|appear) at the start|inappropriately located doctype/i.test(msg)) this.fail('restricted-xml', msg);
      else {
        while (this.readyAt.length && this.readyAt[this.readyAt.length - 1]! >= sax.position) { this.ready.pop(); this.readyAt.pop(); }
        this.fail('not-well-formed', msg);
      }
    });
    sax.on('doctype', () => { this.flushGap(); this.fail('restricted-xml', 'document type declarations are not allowed'); });
    sax.on('processinginstruction', () => { this.flushGap(); this.fail('restricted-xml', 'processing instructions are not allowed'); });
    sax.on('comment', () => { this.flushGap(); this.fail('restricted-xml', 'comments are not allowed'); });
    sax.on('xmldecl', () => { if (!this.failed) this.startGap(); });
    sax.on('opentag', (tag) => { this.flushGap(); this.open(tag); });
    sax.on('closetag', () => this.close());
    sax.on('text', (t) => { this.flushGap(); this.text(t); });
    sax.on('cdata', (t) => {
      this.flushGap();
      if (this.stack.length === 0) this.fail('not-well-formed', 'character data outside of stanzas');
      else this.text(t);
    });
  }

  write(chunk: Buffer | string): void {
    if (this.failed) return;
    let s: string;
    let bad: string | undefined;
    if (typeof chunk === 'string') {
      s = chunk;
      // saxes takes a high surrogate followed by anything as a pair.
      const k = this.loneSurrogate(s);
      if (k >= 0) { s = s.slice(0, k); bad = 'character not allowed in XML'; }
    } else {
      s = this.decoder.decode(chunk);
      if (this.decoder.invalid) bad = 'invalid UTF-8';
    }
    // Forbidden markup is reported where it starts, not where saxes would (at its end): saxes
    // gets the input up to its `<`, then the error follows. An incomplete `<!-`, `<?na`... at
    // the end of the chunk waits for the next one.
    s = this.held + s;
    this.held = '';
    if (this.fed === 0 && s.charCodeAt(0) === 0xFEFF) this.bomAt0 = true;
    const { restricted, hold } = this.prescan(s, this.fed);
    if (restricted >= 0) s = s.slice(0, restricted + 1);
    else if (hold < s.length && !bad) { this.held = s.slice(hold); s = s.slice(0, hold); }
    this.chunk = s;
    this.chunkBase = this.fed;
    this.fed += s.length;
    // saxes keeps a final CR or high surrogate until the next chunk, outside its position.
    if (s.length) { const last = s.charCodeAt(s.length - 1); this.carried = last === 13 || (last >= 0xD800 && last <= 0xDBFF); }
    const end = this.fed - (this.carried ? 1 : 0) + this.held.length;
    if (this.inGap) this.scanGap(0);
    if (!this.failed) {
      try {
        this.sax.write(s);
      } catch (e) {
        if (!this.failed) this.fail('not-well-formed', (e as Error).message);
      }
    }
    this.flushGap();
    if (!this.failed) {
      // saxes holds an unterminated entity reference until its `;`, and what follows `<!`
      // until it has 7 characters, however wrong they are already.
      const internals = this.sax as unknown as { entity?: unknown; openWakaBang?: unknown };
      const ent = internals.entity;
      if (typeof ent === 'string' && ent !== '' && !isEntityPrefix(ent)) this.fail('not-well-formed', 'invalid entity reference', end);
      const bang = internals.openWakaBang;
      if (typeof bang === 'string' && bang !== '' && !['[CDATA[', '--', 'DOCTYPE'].some((w) => w.startsWith(bang))) this.fail('not-well-formed', 'incorrect syntax after <!', end);
    }
    if (!this.failed && restricted >= 0) this.fail('restricted-xml', this.restrictedWhat, this.chunkBase + restricted + 1);
    if (!this.failed && bad) this.fail('not-well-formed', bad, end);
    if (this.ready.length) {
      const ready = this.ready;
      this.ready = [];
      this.readyAt = [];
      for (const el of ready) this.handlers.stanza(el);
    }
    if (this.failure) {
      const { condition, text } = this.failure;
      this.failure = undefined;
      this.failed = true;
      this.handlers.error(condition, text);
      return;
    }
    if (this.ended) { this.failed = true; this.handlers.streamEnd(); return; }
    if (this.failed) return;
    if (end - this.regionStart > this.limits.maxStanzaSize) this.fail('policy-violation', this.sizeMessage(), end);
    if (this.failure) {
      const { condition, text } = this.failure;
      this.failure = undefined;
      this.handlers.error(condition, text);
    }
  }

  private highPending = false;
  // prescan state: input held back, inside a CDATA section, what was found
  private held = '';
  private bomAt0 = false;
  private inCdata = false;
  private restrictedWhat = '';

  /**
   * Finds the first comment, DTD or processing instruction (other than the XML declaration at
   * the very start) outside CDATA sections: `restricted` is the index of its `<`, or -1; `hold`
   * is where an incomplete markup start at the end of `s` begins (`s.length` if none). A raw
   * `<` anywhere else (in an attribute value, say) is an error saxes reports at that `<`.
   */
  private prescan(s: string, base: number): { restricted: number; hold: number } {
    const n = s.length;
    let i = 0;
    while (i < n) {
      if (this.inCdata) {
        const j = s.indexOf(']]>', i);
        if (j >= 0) { this.inCdata = false; i = j + 3; continue; }
        let h = n;
        while (h > i && n - h < 2 && s.charCodeAt(h - 1) === 93) h--;
        return { restricted: -1, hold: h };
      }
      const k = s.indexOf('<', i);
      if (k < 0) break;
      if (k + 1 >= n) return { restricted: -1, hold: k };
      const c = s.charCodeAt(k + 1);
      if (c === 33) { // <!
        let matched = false;
        for (const [word, what] of [['--', 'comments are not allowed'], ['DOCTYPE', 'document type declarations are not allowed'], ['[CDATA[', '']] as const) {
          const avail = s.slice(k + 2, k + 2 + word.length);
          if (avail.length < word.length) { if (word.startsWith(avail)) return { restricted: -1, hold: k }; continue; }
          if (avail !== word) continue;
          if (what) { this.restrictedWhat = what; return { restricted: k, hold: n }; }
          this.inCdata = true;
          i = k + 2 + word.length;
          matched = true;
          break;
        }
        if (!matched) i = k + 1;
        continue;
      }
      if (c === 63) { // <?
        if (k + 2 >= n) return { restricted: -1, hold: k };
        if (!isNameStartAt(s, k + 2)) { i = k + 2; continue; }
        const e = scanName(s, k + 2, Math.min(n, k + 102));
        if (e === n) return { restricted: -1, hold: k };
        const target = s.slice(k + 2, e);
        const t = s.charCodeAt(e);
        const atStart = base + k === (this.bomAt0 ? 1 : 0);
        if (target === 'xml' && atStart && (t === 63 || t === S || t === 9 || t === 10 || t === 13)) { i = e; continue; }
        this.restrictedWhat = target === 'xml' ? 'an XML declaration is only allowed at the very start' : 'processing instructions are not allowed';
        return { restricted: k, hold: n };
      }
      i = k + 1;
    }
    return { restricted: -1, hold: n };
  }

  /** Index of the first unpaired surrogate in a string chunk (a high one at its end may pair with the next chunk), or -1. */
  private loneSurrogate(s: string): number {
    const wasHigh = this.highPending;
    if (!wasHigh && (s as unknown as { isWellFormed(): boolean }).isWellFormed()) return -1;
    const n = s.length;
    let i = 0;
    if (wasHigh) {
      if (n === 0) return -1;
      const c = s.charCodeAt(0);
      if (c < 0xDC00 || c > 0xDFFF) return 0;
      i = 1;
    }
    this.highPending = false;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0xD800 || c > 0xDFFF) continue;
      if (c > 0xDBFF) return i;
      if (i + 1 === n) { this.highPending = true; return -1; }
      const d = s.charCodeAt(i + 1);
      if (d < 0xDC00 || d > 0xDFFF) return i;
      i++;
    }
    return -1;
  }

  private sizeMessage(): string {
    return `stanza exceeds the maximum size of ${this.limits.maxStanzaSize} bytes`;
  }

  /** Records the first violation, reported at the end of the write; one found where the pending input is already over the size limit is reported as that. */
  private fail(condition: StreamErrorCondition, text: string, pos = this.sax.position): void {
    if (this.failed) return;
    if (condition !== 'policy-violation' && pos - this.regionStart > this.limits.maxStanzaSize) {
      condition = 'policy-violation';
      text = this.sizeMessage();
    }
    this.failed = true;
    this.failure = { condition, text };
  }

  /** The header, a stanza or the XML declaration just ended at saxes' position: whitespace may follow, up to a `<`. */
  private startGap(): void {
    const pos = this.sax.position;
    if (this.headerSeen) this.regionStart = pos;
    this.inGap = true;
    this.gapAt = pos;
  }

  /** Scans a gap that began in this chunk; deferred to saxes' next event so that a late mismatch error for the stanza before it comes first. */
  private flushGap(): void {
    if (this.gapAt < 0) return;
    const from = Math.max(0, this.gapAt - this.chunkBase);
    this.gapAt = -1;
    if (!this.failed) this.scanGap(from);
  }

  private scanGap(from: number): void {
    const s = this.chunk;
    for (let k = from; k < s.length; k++) {
      const c = s.charCodeAt(k);
      if (c === S || c === 10 || c === 9 || c === 13) continue;
      const pos = this.chunkBase + k;
      if (c === 0xFEFF && pos === 0) continue;
      this.inGap = false;
      if (c === 60 && this.headerSeen && s.charCodeAt(k + 1) === 33 && s.charCodeAt(k + 2) === 91) { this.fail('not-well-formed', 'character data outside of stanzas', pos); return; }
      if (c !== 60) { this.fail('not-well-formed', this.headerSeen ? 'text outside of stanzas' : 'text before the stream header', pos); return; }
      if (this.headerSeen) {
        if (pos - this.regionStart > this.limits.maxStanzaSize) { this.fail('policy-violation', this.sizeMessage(), pos); return; }
        this.regionStart = pos;
      }
      return;
    }
  }

  /** Namespaces in XML: the local part of a prefixed name must start with a NameStartChar (saxes only checks it is there). */
  private badQName(prefix: string, local: string): boolean {
    if (prefix !== '' && !isNameStartAt(local, 0)) { this.fail('not-well-formed', `malformed name ${prefix}:${local}`); return true; }
    return false;
  }

  private open(tag: SaxesTagNS): void {
    if (this.failed) return;
    if (this.badQName(tag.prefix, tag.local)) return;
    for (const k in tag.attributes) {
      const a = tag.attributes[k]!;
      if (a.prefix !== 'xmlns' && this.badQName(a.prefix, a.local)) return;
    }
    if (!this.headerSeen) {
      if (this.sax.position - this.regionStart > this.limits.maxStanzaSize) { this.fail('policy-violation', this.sizeMessage()); return; }
      this.headerSeen = true;
      const attrs: Attrs = {};
      for (const k in tag.attributes) {
        const a = tag.attributes[k]!;
        if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
        attrs[a.name] = a.value;
      }
      this.defaultNS = tag.ns[''] ?? undefined;
      this.handlers.streamStart({ local: tag.local, uri: tag.uri, prefix: tag.prefix, defaultNS: this.defaultNS, attrs });
      this.startGap();
      return;
    }
    const depth = this.stack.length + 1;
    if (depth > this.limits.maxDepth) { this.fail('policy-violation', `elements nested deeper than ${this.limits.maxDepth} levels`); return; }
    const parentNS = depth === 1 ? this.defaultNS : this.nsStack[this.nsStack.length - 1];
    const attrs: Attrs = {};
    const uri = tag.uri;
    if (uri !== parentNS) attrs.xmlns = uri;
    for (const k in tag.attributes) {
      const a = tag.attributes[k]!;
      if (a.name === 'xmlns') continue;
      // Prefix declarations are dropped: names are normalised to unprefixed form below.
      // They are kept only where a prefixed attribute (other than xml:) still needs them.
      if (a.prefix === 'xmlns') continue;
      attrs[a.name] = a.value;
      if (a.prefix && a.prefix !== 'xml') attrs['xmlns:' + a.prefix] = a.uri;
    }
    const el = new Element(tag.local, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
    this.nsStack.push(uri);
  }

  private close(): void {
    if (this.stack.length === 0) this.gapAt = -1; // the root: nothing after it matters
    else this.flushGap();
    if (this.failed) return;
    const el = this.stack.pop();
    this.nsStack.pop();
    if (!el) { // the stream root itself closed: whatever follows is ignored
      this.ended = true;
      this.endedAt = this.sax.position;
      this.failed = true;
      return;
    }
    if (this.stack.length === 0) {
      const pos = this.sax.position;
      if (pos - this.regionStart > this.limits.maxStanzaSize) { this.fail('policy-violation', this.sizeMessage()); return; }
      this.ready.push(el);
      this.readyAt.push(pos);
      this.startGap();
    }
  }

  private text(t: string): void {
    if (this.failed || t === '') return;
    const top = this.stack[this.stack.length - 1];
    // Outside stanzas only whitespace gets here: scanGap has failed on anything else.
    if (!top) return;
    // One string per run of character data, whether it came as text, references or CDATA.
    const children = top.children;
    const last = children[children.length - 1];
    if (typeof last === 'string') children[children.length - 1] = last + t;
    else children.push(t);
  }
}

/** Every implementation of the contract, for the conformance tests and the benchmark. */
export const STREAM_PARSERS: Readonly<Record<string, new (handlers: StreamHandlers, limits: ParserLimits) => StreamParser>> = {
  saxes: SaxesStreamParser,
  fast: FastStreamParser,
};

export function createStreamParser(handlers: StreamHandlers, limits: ParserLimits = DEFAULT_LIMITS): StreamParser {
  return new SaxesStreamParser(handlers, limits);
}
