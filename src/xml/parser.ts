// Incremental parser for one XML stream (RFC 6120 section 11): the stream header, then one
// complete Element per top-level child (stanza), then the stream close. It enforces the
// restricted XML profile (no DTD, comments, processing instructions or undeclared entity
// references) and the configured limits, and reports the first violation as a stream error
// condition; after that it ignores further input.
//
// Two implementations of this contract: `FastStreamParser` (fast-parser.ts), hand-written, the
// one `createStreamParser` returns; and `SaxesStreamParser` below, on the saxes library, kept
// as the reference the conformance tests (parser.test.ts) and the benchmark (bench/parser.ts)
// compare it with. `STREAM_PARSERS` lists both.
//
// The contract, in short (parser.test.ts has the details):
// - Stanzas: one Element each, names unprefixed; an element has an `xmlns` attribute exactly
//   where its namespace differs from its parent's (for a stanza: from the stream's default
//   namespace); namespace declarations are dropped, except `xmlns:p` kept beside a prefixed
//   attribute `p:a` (other than `xml:`); references decoded, line ends and attribute values
//   normalised as XML says, one string per run of character data (CDATA included).
// - Whitespace between stanzas is ignored; any other character data there is not-well-formed.
// - Comments, DTDs, processing instructions (other than the XML declaration at the very
//   start) and undeclared entities are restricted-xml, reported where they start.
// - Stanzas completed before an error are delivered, the faulty one is not; nothing is
//   reported after the first error or the stream end, and `failed` is then true.
// - Sizes count UTF-16 units of the decoded text. They are checked where the header, a stanza
//   or whitespace between stanzas ends and at the end of each write, so an error found first
//   in the same write wins, and at most maxStanzaSize plus one chunk is ever pending.
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
  /** Bytes from the transport (UTF-8, any cut), or already decoded text. */
  write(chunk: Buffer | string): void;
  /**
   * True once an error or the stream end was reported; later writes are ignored. (There is no
   * end of input: when the peer closes the transport, a stream left open is simply abandoned.)
   */
  readonly failed: boolean;
}

export const DEFAULT_LIMITS: ParserLimits = { maxStanzaSize: 262144, maxDepth: 32 };

const S = ' '.charCodeAt(0);

/** A partial entity reference saxes holds at the end of a chunk that can still become a valid one. */
function isEntityPrefix(e: string): boolean {
  if (e.charCodeAt(0) === 35) return /^#(?:x[0-9a-fA-F]*|[0-9]*)$/.test(e);
  return isNameStartAt(e, 0) && scanName(e, 0, e.length) === e.length && !e.includes(':');
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
  /** The stanza that closed at gapAt was too large. */
  private oversized = false;
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
        if (sax.position === this.gapAt) { this.gapAt = -1; this.inGap = false; this.oversized = false; } else this.flushGap();
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
    // saxes checks a prefixed name as its attribute ends; so do we (see badQName).
    sax.on('attribute', (a) => { if (!this.failed && 'prefix' in a) this.badQName(a.prefix, a.local); });
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
    if (this.fed === 0 && s.charCodeAt(0) === 0xFEFF) this.bomAt0 = true;
    // saxes gets the chunk in pieces, cut where the markup scan needs a check (see prescan).
    const base = this.fed;
    let from = 0;
    for (const cut of this.prescan(s, base)) {
      this.feed(s.slice(from, cut.at));
      from = cut.at;
      if (this.failed) break;
      if (cut.kind !== 'cdata') {
        this.checkPending(this.fed);
        this.fail(cut.kind === 'restricted' ? 'restricted-xml' : 'not-well-formed', cut.what, base + cut.at);
        break;
      }
      // `<![` between stanzas: CDATA there is character data outside stanzas.
      this.flushGap();
      if (this.headerSeen && this.stack.length === 0) this.fail('not-well-formed', 'character data outside of stanzas', base + cut.at);
    }
    if (!this.failed) this.feed(s.slice(from));
    const end = this.fed - (this.carried ? 1 : 0);
    this.checkPending(end);
    if (!this.failed && bad) this.fail('not-well-formed', bad, end);
    if (!this.failed && !this.ended && end - this.regionStart > this.limits.maxStanzaSize) this.fail('policy-violation', this.sizeMessage(), end);
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
    if (this.ended) { this.failed = true; this.handlers.streamEnd(); }
  }

  /** What saxes holds unreported at the end of its input so far. */
  private checkPending(end: number): void {
    this.flushGap();
    if (this.failed) return;
    // saxes holds an unterminated entity reference until its `;`, and what follows `<!`
    // until it has 7 characters, however wrong they are already.
    const internals = this.sax as unknown as { entity?: unknown; openWakaBang?: unknown };
    const ent = internals.entity;
    if (typeof ent === 'string' && ent !== '' && !isEntityPrefix(ent)) this.fail('not-well-formed', 'invalid entity reference', end);
    const bang = internals.openWakaBang;
    if (typeof bang === 'string' && bang !== '' && !['[CDATA[', '--', 'DOCTYPE'].some((w) => w.startsWith(bang))) this.fail('not-well-formed', 'incorrect syntax after <!', end);
  }

  /** Gives saxes the next piece of input. */
  private feed(s: string): void {
    this.chunk = s;
    this.chunkBase = this.fed;
    this.fed += s.length;
    // saxes keeps a final CR or high surrogate until the next chunk, outside its position.
    if (s.length) { const last = s.charCodeAt(s.length - 1); this.carried = last === 13 || (last >= 0xD800 && last <= 0xDBFF); }
    if (this.inGap) this.scanGap(0);
    if (this.failed || s === '') return;
    try {
      this.sax.write(s);
    } catch (e) {
      if (!this.failed) this.fail('not-well-formed', (e as Error).message);
    }
  }

  private highPending = false;
  private bomAt0 = false;
  // prescan state: the characters after a `<` whose meaning is not decided yet (null: none),
  // where that `<` is, and whether we are in a CDATA section and after how many `]`.
  private markup: string | null = null;
  private markupAt = 0;
  private inCdata = false;
  private cdataRun = 0;
  private inDecl = false;
  private declQ = false;

  /**
   * saxes reports a comment, DTD or processing instruction only once it is complete (if ever),
   * and CDATA between stanzas at its end; the contract reports them where they start. This
   * scan over the `<`s of a chunk (outside CDATA sections) returns where saxes' input must be
   * cut: after the `<` of forbidden markup (`restricted`: then the error), and after `<![`
   * (`cdata`: an error between stanzas). A `<` anywhere else that is not markup (in an attribute
   * value, say) is an error saxes reports at that `<` anyway, before the cut.
   */
  private prescan(s: string, base: number): { at: number; kind: 'restricted' | 'cdata' | 'malformed'; what: string }[] {
    const cuts: { at: number; kind: 'restricted' | 'cdata' | 'malformed'; what: string }[] = [];
    const n = s.length;
    let i = 0;
    for (;;) {
      if (this.markup !== null) {
        while (i < n) {
          const m = (this.markup += s[i++]);
          const r = this.classify(m);
          if (r === 'more') continue;
          if (r === 'cdata-bracket') { cuts.push({ at: i, kind: 'cdata', what: '' }); continue; }
          this.markup = null;
          if (r === 'cdata') { this.inCdata = true; this.cdataRun = 0; }
          else if (r === 'xml-decl') this.inDecl = true;
          else if (r !== 'other') { cuts.push({ at: Math.max(0, this.markupAt - base + 1), kind: 'restricted', what: r }); return cuts; }
          break;
        }
        if (this.markup !== null) return cuts;
      }
      if (this.inDecl) {
        // No `<` can be part of it (saxes does not mind one in a value).
        // Where its `?>` ends (the `?` may have ended the previous chunk).
        let end: number;
        if (this.declQ && s.charCodeAt(i) === 62) end = i + 1;
        else { const q = s.indexOf('?>', i); end = q < 0 ? -1 : q + 2; }
        const lt = s.indexOf('<', i);
        if (lt >= 0 && (end < 0 || lt < end)) { cuts.push({ at: lt, kind: 'malformed', what: 'malformed XML declaration' }); return cuts; }
        if (end < 0) { if (n > i) this.declQ = s.charCodeAt(n - 1) === 63; return cuts; }
        this.inDecl = false;
        this.declQ = false;
        i = end;
        continue;
      }
      if (this.inCdata) {
        let end = -1;
        if (this.cdataRun >= 2 && s.charCodeAt(i) === 62) end = i + 1;
        else if (this.cdataRun >= 1 && s.charCodeAt(i) === 93 && s.charCodeAt(i + 1) === 62) end = i + 2;
        else { const x = s.indexOf(']]>', i); if (x >= 0) end = x + 3; }
        if (end < 0) {
          let t = 0;
          while (t < 2 && n - 1 - t >= i && s.charCodeAt(n - 1 - t) === 93) t++;
          this.cdataRun = t === n - i ? Math.min(2, this.cdataRun + t) : t;
          return cuts;
        }
        this.inCdata = false;
        i = end;
        continue;
      }
      const k = s.indexOf('<', i);
      if (k < 0) return cuts;
      this.markup = '';
      this.markupAt = base + k;
      i = k + 1;
    }
  }

  /** What the characters after a `<` are: undecided yet, not our concern, the start of CDATA, or forbidden (then the error text). */
  private classify(m: string): 'more' | 'other' | 'cdata-bracket' | 'cdata' | 'xml-decl' | string {
    const c = m.charCodeAt(0);
    if (c === 33) { // !
      if (m.length === 1) return 'more';
      if (m === '!-') return 'more';
      if (m === '!--') return 'comments are not allowed';
      if (m === '![') return 'cdata-bracket';
      for (const [w, r] of [['!DOCTYPE', 'document type declarations are not allowed'], ['![CDATA[', 'cdata']] as const) {
        if (w.startsWith(m)) return m.length === w.length ? r : 'more';
      }
      return 'other';
    }
    if (c === 63) { // ?
      const last = m.charCodeAt(m.length - 1);
      if (m.length === 1 || (last >= 0xD800 && last <= 0xDBFF)) return 'more';
      if (!isNameStartAt(m, 1)) return 'other';
      // `<?` and a name: a processing instruction, unless it is the XML declaration at the very start.
      if (this.markupAt !== (this.bomAt0 ? 1 : 0)) return m.startsWith('?xml') ? 'an XML declaration is only allowed at the very start' : 'processing instructions are not allowed';
      const target = m.slice(1);
      if ('xml'.startsWith(target)) return 'more';
      if (target.length === 4 && target.startsWith('xml') && (last === 63 || last === S || last === 9 || last === 10 || last === 13)) return 'xml-decl';
      return 'processing instructions are not allowed';
    }
    return 'other';
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

  /** Records the first violation, reported at the end of the write. (`pos`, where it was found, is kept for diagnostics.) */
  private fail(condition: StreamErrorCondition, text: string, pos = this.sax.position): void {
    void pos;
    if (this.failed) return;
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
    if (this.oversized) { this.oversized = false; this.gapAt = -1; this.fail('policy-violation', this.sizeMessage()); return; }
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
      if (c >= 0xD800 && c <= 0xDBFF && k === s.length - 1) return; // saxes holds it for the next chunk, and so does the scan
      this.inGap = false;
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
    if (this.stack.length === 0 && !this.oversized) this.gapAt = -1; // the root: nothing after it matters
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
      // Reported at the next event, unless saxes then says this close tag was a mismatch.
      if (pos - this.regionStart > this.limits.maxStanzaSize) this.oversized = true;
      else {
        this.ready.push(el);
        this.readyAt.push(pos);
      }
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

/** The parser the server uses: `FastStreamParser` (see fast-parser.ts for why and how fast). */
export function createStreamParser(handlers: StreamHandlers, limits: ParserLimits = DEFAULT_LIMITS): StreamParser {
  return new FastStreamParser(handlers, limits);
}
