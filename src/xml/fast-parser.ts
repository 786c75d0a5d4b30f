// A hand-written incremental parser for one XMPP stream, implementing the same
// `StreamParser` contract as the saxes-based reference in `parser.ts`.
//
// Why our own: parsing is the hottest path of the server (every byte every client sends goes
// through it), and XMPP only allows a restricted XML profile (RFC 6120 section 11: no DTD,
// comments, processing instructions or entity references other than the predefined five), so
// a parser for exactly that profile can drop all DTD handling and everything that exists to
// support it. This one makes a single pass over each chunk with `charCodeAt` and table
// look-ups (no regular expressions in the hot loop), slices names, attribute values and text
// straight out of the chunk and decodes them only when they contain `&` (or a CR / a tab or
// newline in an attribute), builds the `Element` tree directly instead of going through
// generic SAX event objects, and does the namespace normalisation in the same step.
//
// Measured with `node --import tsx bench/parser.ts` (Node 20.20, 2-vCPU VM, single-threaded),
// median of 7 runs on 4-6 MB of client traffic fed as Buffers:
//
//   workload                                      saxes (reference)        this parser
//   chat stanzas, one per write                   12.2 MB/s,  55k st/s    96 MB/s, 432k st/s   7.9x
//   Asterisk PubSub (recorded + publish bursts)   11.9 MB/s,  43k st/s   101 MB/s, 369k st/s   8.5x
//   both, 64 KiB writes                           12.0 MB/s,  48k st/s   109 MB/s, 439k st/s   9.1x
//   both, 16-byte writes (every token split)       8.9 MB/s,  36k st/s    43 MB/s, 172k st/s   4.8x
//
// with about a quarter of the garbage collections per MB (0.45 against 1.8 scavenges). The
// fixes made to the saxes wrapper alongside this parser cost it little (13.6 MB/s before,
// 12.4 after, on a PubSub and message mix in 4 KB writes), so the difference is saxes itself. `src/xml/parser.test.ts` runs the
// same conformance suite against both implementations, and a differential fuzz (generated
// streams against an independent oracle; mutated streams, cut at random, on which both must
// report exactly the same events).
//
// It is a complete XML 1.0 + Namespaces well-formedness checker for that profile: the Char
// production (also in character references), Name / NCName productions, quoting, attribute
// uniqueness (also of expanded names), declared and correctly reserved namespace prefixes,
// `]]>` outside CDATA, line-end and attribute-value normalisation, and the XML declaration
// (only at the very start).
import { isUtf8 } from 'node:buffer';
import { Element, type Attrs } from './element.js';
import type { ParserLimits, StreamErrorCondition, StreamHandlers, StreamParser } from './parser.js';

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

// ---------------------------------------------------------------------------------------------
// Character classes (ASCII by table, the rest by range checks)

const NAME_START = 1;
const NAME = 2;
const WS = 4;
const TEXT_STOP = 8; //  < & ] > CR and disallowed controls
const ATTR_STOP = 16; // < & ' " TAB LF CR and disallowed controls
const CDATA_STOP = 32; // ] > CR and disallowed controls

const CC = new Uint8Array(128);
for (let c = 0; c < 32; c++) if (c !== 9 && c !== 10 && c !== 13) CC[c] = TEXT_STOP | ATTR_STOP | CDATA_STOP;
for (let c = 65; c <= 90; c++) CC[c] = NAME_START | NAME;
for (let c = 97; c <= 122; c++) CC[c] = NAME_START | NAME;
CC[95] = CC[58] = NAME_START | NAME; // _ :
for (let c = 48; c <= 57; c++) CC[c] = NAME;
CC[45] = CC[46] = NAME; // - .
for (const c of [32, 9, 10, 13]) CC[c] |= WS;
for (const c of [60, 38, 93, 62, 13]) CC[c] |= TEXT_STOP;
for (const c of [60, 38, 39, 34, 9, 10, 13]) CC[c] |= ATTR_STOP;
for (const c of [93, 62, 13]) CC[c] |= CDATA_STOP;

function isNameStartBmp(c: number): boolean {
  if (c < 128) return (CC[c]! & NAME_START) !== 0;
  return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
    (c >= 0x37F && c <= 0x1FFF) || c === 0x200C || c === 0x200D || (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
    (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD);
}

function isNameBmp(c: number): boolean {
  if (c < 128) return (CC[c]! & NAME) !== 0;
  return isNameStartBmp(c) || c === 0xB7 || (c >= 0x300 && c <= 0x36F) || c === 0x203F || c === 0x2040;
}

/** Whether the code point starting at `s[i]` is a NameStartChar (XML 1.0 fifth edition). */
export function isNameStartAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c >= 0xD800 && c <= 0xDB7F) { // U+10000..U+EFFFF
    const d = s.charCodeAt(i + 1);
    return d >= 0xDC00 && d <= 0xDFFF;
  }
  return isNameStartBmp(c);
}

/** Index of the first character at or after `i` that is not a NameChar, or `end`. */
export function scanName(s: string, i: number, end: number): number {
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      if ((CC[c]! & NAME) !== 0) continue;
      return i;
    }
    if (c >= 0xD800 && c <= 0xDB7F) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xDC00 && d <= 0xDFFF) { i++; continue; }
      return i;
    }
    if (!isNameBmp(c)) return i;
  }
  return end;
}

/** The local part of a prefixed name (or a declared prefix) is an NCName: not empty, no colon, starts with a NameStartChar. */
function isNCNameStart(s: string): boolean {
  return s.length > 0 && s.charCodeAt(0) !== 58 && isNameStartAt(s, 0) && s.indexOf(':') === -1;
}

// Names repeat endlessly (`to`, `id`, `type`, `xmlns`, `message`...): the last one seen per first
// character and length is reused instead of a fresh slice, which saves the allocation and lets
// V8 use the same (internalised) string as a property key each time. Only names shorter than 13
// characters: V8 copies those when slicing, while a longer slice is a view that keeps the whole
// chunk alive, which a module-wide cache must not do.
const NAME_CACHE: (string | undefined)[] = new Array(128 * 16).fill(undefined);

function sliceName(s: string, start: number, end: number): string {
  const n = end - start;
  if (n >= 13) return s.slice(start, end);
  const key = ((s.charCodeAt(start) & 127) << 4) | n;
  const cached = NAME_CACHE[key];
  if (cached !== undefined && sameAt(s, start, cached, 1)) return cached;
  return (NAME_CACHE[key] = s.slice(start, end));
}

/** Whether `s` holds `t` at `start`, given that their first `from` characters match and `s` is long enough (a loop: cheaper than startsWith for short names). */
function sameAt(s: string, start: number, t: string, from: number): boolean {
  for (let k = from; k < t.length; k++) if (s.charCodeAt(start + k) !== t.charCodeAt(k)) return false;
  return true;
}

function isXmlChar(v: number): boolean {
  return v >= 0x20 ? (v <= 0xD7FF || (v >= 0xE000 && v <= 0xFFFD) || (v >= 0x10000 && v <= 0x10FFFF)) : (v === 9 || v === 10 || v === 13);
}

const PREDEFINED: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>,
  { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' });

/**
 * What is wrong with a prefixed attribute name or a namespace declaration on its own (checked
 * as each attribute ends), or undefined. Namespaces in XML: prefix and local part are NCNames;
 * a prefix cannot be undeclared; `xml` and `xmlns` and their namespaces are reserved.
 */
function badAttribute(name: string, value: string): string | undefined {
  let uri: string;
  let prefix: string;
  if (name === 'xmlns') {
    prefix = '';
    uri = value.trim();
  } else {
    const c = name.indexOf(':');
    if (c === 0 || !isNCNameStart(name.slice(c + 1))) return `malformed name ${name}`;
    if (!name.startsWith('xmlns:')) return undefined;
    prefix = name.slice(6);
    uri = value.trim();
    if (uri === '') return `the prefix ${prefix} may not be undeclared`;
  }
  if (prefix === 'xml' ? uri !== XML_NS : prefix === 'xmlns' || uri === XML_NS || uri === XMLNS_NS) return `reserved namespace prefix or name in ${name}`;
  return undefined;
}

const XML_DECL = /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"[A-Za-z][A-Za-z0-9._-]*"|'[A-Za-z][A-Za-z0-9._-]*'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*\?>$/;

// ---------------------------------------------------------------------------------------------
// UTF-8 decoding that delivers the valid prefix of a chunk before reporting invalid bytes, and
// carries a sequence split across chunks over to the next one.

/** Length of the longest prefix of `b[from, end)` made of complete, valid UTF-8 sequences, and whether what stops it is a valid but truncated sequence at the end. */
function utf8Prefix(b: Uint8Array, from: number, end: number): { valid: number; truncated: boolean } {
  let i = from;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let n: number, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c === 0xE0) { n = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c === 0xEE || c === 0xEF) n = 2;
    else if (c === 0xED) { n = 2; hi = 0x9F; }
    else if (c === 0xF0) { n = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c === 0xF4) { n = 3; hi = 0x8F; }
    else return { valid: i, truncated: false };
    for (let k = 1; k <= n; k++) {
      if (i + k >= end) return { valid: i, truncated: true };
      const d = b[i + k]!;
      if (k === 1 ? d < lo || d > hi : d < 0x80 || d > 0xBF) return { valid: i, truncated: false };
    }
    i += n + 1;
  }
  return { valid: end, truncated: false };
}

export class Utf8StreamDecoder {
  /** Set once invalid UTF-8 was met; `decode` then returned only what came before it. */
  invalid = false;
  private pending: Buffer | undefined;

  decode(chunk: Buffer): string {
    let buf = chunk;
    if (this.pending) { buf = Buffer.concat([this.pending, chunk]); this.pending = undefined; }
    if (isUtf8(buf)) return buf.toString('utf8');
    // Either invalid, or (usually) the last character continues in the next chunk.
    const n = buf.length;
    let b = n;
    while (b > 0 && n - b < 3 && (buf[b - 1]! & 0xC0) === 0x80) b--;
    if (b > 0 && buf[b - 1]! >= 0xC0) b--;
    if (b < n && isUtf8(buf.subarray(0, b))) {
      const tail = utf8Prefix(buf, b, n);
      if (tail.truncated && tail.valid === b) {
        this.pending = Buffer.from(buf.subarray(b));
        return buf.toString('utf8', 0, b);
      }
    }
    const r = utf8Prefix(buf, 0, n);
    this.invalid = true;
    return buf.toString('utf8', 0, r.valid);
  }
}

// ---------------------------------------------------------------------------------------------
// The parser

const S_PROLOG = 0; //        before the stream header: whitespace, `<`
const S_GAP = 1; //           between stanzas: whitespace, `<`
const S_TEXT = 2; //          character data inside a stanza
const S_LT = 3; //            after `<`
const S_START_NAME = 4; //    in the name of a start tag
const S_IN_TAG = 5; //        in a start tag after whitespace
const S_AFTER_VALUE = 6; //   right after an attribute value's closing quote
const S_ATTR_NAME = 7;
const S_ATTR_EQ = 8; //       after an attribute name and whitespace: `=`
const S_ATTR_QUOTE = 9; //    after `=`: the opening quote
const S_ATTR_VALUE = 10;
const S_EMPTY_SLASH = 11; //  after `/` in a start tag: `>`
const S_END_NAME_START = 12; // after `</`
const S_END_NAME = 13;
const S_END_WS = 14; //       after the name of an end tag and whitespace: `>`
const S_ENTITY = 15; //       after `&`
const S_BANG = 16; //         after `<!`
const S_CDATA = 17;
const S_PI_START = 18; //     after `<?`
const S_PI_TARGET = 19;
const S_XML_DECL = 20;

// Steps inside an entity or character reference.
const E_START = 0, E_NAME = 1, E_HASH = 2, E_DEC = 3, E_HEX_START = 4, E_HEX = 5;

type PrefixMap = Record<string, string>;
const FAILED = -1;
const BASE_SCOPE: PrefixMap = Object.assign(Object.create(null) as PrefixMap, { xml: XML_NS });
const NO_ELEMENT = new Element('');

export class FastStreamParser implements StreamParser {
  failed = false;
  private readonly maxSize: number;
  private readonly maxDepth: number;
  private readonly decoder = new Utf8StreamDecoder();
  /** A CR or high surrogate that ended the previous chunk: it needs the next character. */
  private carry = '';
  /** Absolute position (in UTF-16 units of the decoded stream) of the current chunk's start. */
  private base = 0;
  /** Where the part of the stream that counts against maxStanzaSize began: the start of the stream, the end of the header or of the last stanza, or the `<` of the stanza being read. */
  private regionStart = 0;
  private state = S_PROLOG;
  private headerSeen = false;
  private bomAt0 = false;

  // Pieces of the token being read, when it spans chunks.
  private buf = '';
  private val = '';
  private text = '';
  private quote = 0;
  private tagName = '';
  private attrName = '';
  private endName = '';
  private attrNames: string[] = [];
  private attrValues: string[] = [];
  private nAttrs = 0;
  private bangWord = '';
  private bangIdx = 0;
  private entStep = E_START;
  private entReturn = S_TEXT;
  private entValue = 0;
  private lastBracket = -2;
  private bracketRun = 0;
  private ltPos = 0;

  // Open elements by level: level 0 is the stream root, level d the element at stanza depth d.
  private depth = 0;
  private els: Element[] = [];
  private qnames: string[] = [];
  /** Namespace of the element at each level; at level 0 the stream's declared default namespace, which is what top-level stanzas compare with. */
  private nss: (string | undefined)[] = [];
  /** Default namespace in scope for the children of each level. */
  private defs: string[] = [];
  private scopes: PrefixMap[] = [];

  constructor(private readonly handlers: StreamHandlers, limits: ParserLimits) {
    this.maxSize = limits.maxStanzaSize;
    this.maxDepth = limits.maxDepth;
  }

  write(chunk: Buffer | string): void {
    if (this.failed) return;
    let s: string;
    let badUtf8 = false;
    if (typeof chunk === 'string') s = chunk;
    else {
      s = this.decoder.decode(chunk);
      badUtf8 = this.decoder.invalid;
    }
    if (this.carry !== '') { s = this.carry + s; this.carry = ''; }
    const n = s.length;
    if (n > 0 && !badUtf8) {
      const last = s.charCodeAt(n - 1);
      if (last === 13 || (last >= 0xD800 && last <= 0xDBFF)) {
        this.carry = s.slice(n - 1);
        s = s.slice(0, n - 1);
      }
    }
    try {
      this.parse(s);
    } catch (e) {
      this.failed = true; // a handler threw: the stream cannot continue from a half-parsed chunk
      throw e;
    }
    if (this.failed) return;
    this.base += s.length;
    if (badUtf8) { this.fail('not-well-formed', 'invalid UTF-8', this.base); return; }
    if (this.base - this.regionStart > this.maxSize) this.fail('policy-violation', this.sizeMessage(), this.base);
  }

  private sizeMessage(): string {
    return `stanza exceeds the maximum size of ${this.maxSize} bytes`;
  }

  /**
   * Reports the first violation found. (`pos`, where it was found, is kept for diagnostics.)
   * The size limit is checked at fixed points (end of the header, of a stanza, of whitespace
   * between stanzas, of each write), so which of two violations comes first does not depend
   * on where exactly an implementation notices a syntax error.
   */
  private fail(condition: StreamErrorCondition, text: string, pos: number): false {
    void pos;
    this.failed = true;
    this.handlers.error(condition, text);
    return false;
  }

  private badChar(i: number): false {
    return this.fail('not-well-formed', 'character not allowed in XML', this.base + i);
  }

  private parse(s: string): void {
    const len = s.length;
    let i = 0;
    while (i < len) {
      switch (this.state) {
        case S_TEXT: {
          let start = i;
          for (;;) {
            let c = 0;
            for (; i < len; i++) {
              c = s.charCodeAt(i);
              if (c < 128) {
                if ((CC[c]! & TEXT_STOP) !== 0) break;
              } else if (c >= 0xD800) {
                if (c <= 0xDBFF) {
                  const d = s.charCodeAt(i + 1);
                  if (d >= 0xDC00 && d <= 0xDFFF) { i++; continue; }
                  return void this.badChar(i);
                }
                if (c <= 0xDFFF || c >= 0xFFFE) return void this.badChar(i);
              }
            }
            if (i === len) {
              if (i > start) this.text += s.slice(start, i);
              break;
            }
            if (c === 60) { // <
              if (i > start) this.text += s.slice(start, i);
              this.ltPos = this.base + i;
              i++;
              this.state = S_LT;
              break;
            }
            if (c === 38) { // &
              if (i > start) this.text += s.slice(start, i);
              i = this.entity(s, i + 1, S_TEXT);
              break;
            }
            if (c === 13) { // CR or CR LF: LF
              this.text += s.slice(start, i) + '\n';
              i += s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            if (c === 93) { this.bracket(i); i++; continue; }
            if (c === 62) {
              if (this.bracketRun >= 2 && this.lastBracket === this.base + i - 1) {
                return void this.fail('not-well-formed', "']]>' is not allowed in character data", this.base + i);
              }
              i++;
              continue;
            }
            return void this.badChar(i);
          }
          break;
        }

        case S_LT: {
          const c = s.charCodeAt(i);
          if (c === 47) { // </
            // Fast path: the end tag of the open element, whole in this chunk.
            if (this.headerSeen) {
              const expected = this.qnames[this.depth]!;
              const j = i + 1 + expected.length;
              if (j < len && s.charCodeAt(j) === 62 && sameAt(s, i + 1, expected, 0)) {
                i = j + 1;
                if (!this.closeTag(expected, this.base + i)) return;
                break;
              }
            }
            i++;
            this.state = S_END_NAME_START;
          } else if (c === 33) { // <!
            i++;
            this.bangIdx = 0;
            this.state = S_BANG;
          } else if (c === 63) { // <?
            i++;
            this.state = S_PI_START;
          } else if (isNameStartAt(s, i)) {
            this.nAttrs = 0;
            const j = this.simpleStartTag(s, i);
            if (j === FAILED) return;
            if (j > 0) { i = j; break; }
            this.state = S_START_NAME;
          } else {
            return void this.fail('not-well-formed', 'invalid character after <', this.base + i);
          }
          break;
        }

        case S_START_NAME: {
          const start = i;
          i = scanName(s, i, len);
          if (i === len) { this.buf += s.slice(start); break; }
          this.tagName = this.buf === '' ? sliceName(s, start, i) : this.buf + s.slice(start, i);
          this.buf = '';
          const c = s.charCodeAt(i);
          i++;
          if (c === 62) { if (!this.openTag(false, this.base + i)) return; }
          else if (c === 47) this.state = S_EMPTY_SLASH;
          else if (c < 128 && (CC[c]! & WS) !== 0) this.state = S_IN_TAG;
          else return void this.fail('not-well-formed', 'invalid character in element name', this.base + i - 1);
          break;
        }

        case S_IN_TAG: {
          let c = 0;
          while (i < len && (c = s.charCodeAt(i)) < 128 && (CC[c]! & WS) !== 0) i++;
          if (i === len) break;
          if (c === 62) { i++; if (!this.openTag(false, this.base + i)) return; }
          else if (c === 47) { i++; this.state = S_EMPTY_SLASH; }
          else if (isNameStartAt(s, i)) this.state = S_ATTR_NAME;
          else return void this.fail('not-well-formed', 'invalid character in start tag', this.base + i);
          break;
        }

        case S_AFTER_VALUE: {
          const c = s.charCodeAt(i);
          i++;
          if (c === 62) { if (!this.openTag(false, this.base + i)) return; }
          else if (c === 47) this.state = S_EMPTY_SLASH;
          else if (c < 128 && (CC[c]! & WS) !== 0) this.state = S_IN_TAG;
          else return void this.fail('not-well-formed', 'whitespace required between attributes', this.base + i - 1);
          break;
        }

        case S_ATTR_NAME: {
          const start = i;
          i = scanName(s, i, len);
          if (i === len) { this.buf += s.slice(start); break; }
          this.attrName = this.buf === '' ? sliceName(s, start, i) : this.buf + s.slice(start, i);
          this.buf = '';
          const c = s.charCodeAt(i);
          i++;
          if (c === 61) this.state = S_ATTR_QUOTE;
          else if (c < 128 && (CC[c]! & WS) !== 0) this.state = S_ATTR_EQ;
          else return void this.fail('not-well-formed', 'invalid character in attribute name', this.base + i - 1);
          break;
        }

        case S_ATTR_EQ: {
          let c = 0;
          while (i < len && (c = s.charCodeAt(i)) < 128 && (CC[c]! & WS) !== 0) i++;
          if (i === len) break;
          if (c !== 61) return void this.fail('not-well-formed', 'attribute without value', this.base + i);
          i++;
          this.state = S_ATTR_QUOTE;
          break;
        }

        case S_ATTR_QUOTE: {
          let c = 0;
          while (i < len && (c = s.charCodeAt(i)) < 128 && (CC[c]! & WS) !== 0) i++;
          if (i === len) break;
          if (c !== 39 && c !== 34) return void this.fail('not-well-formed', 'attribute value not quoted', this.base + i);
          i++;
          this.quote = c;
          this.val = '';
          this.state = S_ATTR_VALUE;
          break;
        }

        case S_ATTR_VALUE: {
          const q = this.quote;
          let start = i;
          for (;;) {
            let c = 0;
            for (; i < len; i++) {
              c = s.charCodeAt(i);
              if (c < 128) {
                if ((CC[c]! & ATTR_STOP) !== 0) break;
              } else if (c >= 0xD800) {
                if (c <= 0xDBFF) {
                  const d = s.charCodeAt(i + 1);
                  if (d >= 0xDC00 && d <= 0xDFFF) { i++; continue; }
                  return void this.badChar(i);
                }
                if (c <= 0xDFFF || c >= 0xFFFE) return void this.badChar(i);
              }
            }
            if (i === len) {
              if (i > start) this.val += s.slice(start, i);
              break;
            }
            if (c === q) {
              const value = this.val === '' ? s.slice(start, i) : this.val + s.slice(start, i);
              this.val = '';
              const name = this.attrName;
              if (name.indexOf(':') !== -1 || name === 'xmlns') {
                const bad = badAttribute(name, value);
                if (bad) return void this.fail('not-well-formed', bad, this.base + i);
              }
              const n = this.nAttrs++;
              this.attrNames[n] = name;
              this.attrValues[n] = value;
              i++;
              this.state = S_AFTER_VALUE;
              break;
            }
            if (c === 39 || c === 34) { i++; continue; } // the other quote
            if (c === 38) {
              if (i > start) this.val += s.slice(start, i);
              i = this.entity(s, i + 1, S_ATTR_VALUE);
              break;
            }
            if (c === 9 || c === 10 || c === 13) { // attribute-value normalisation
              this.val += s.slice(start, i) + ' ';
              i += c === 13 && s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            if (c === 60) return void this.fail('not-well-formed', "'<' not allowed in attribute values", this.base + i);
            return void this.badChar(i);
          }
          break;
        }

        case S_EMPTY_SLASH: {
          if (s.charCodeAt(i) !== 62) return void this.fail('not-well-formed', "'/' not followed by '>' in a start tag", this.base + i);
          i++;
          if (!this.openTag(true, this.base + i)) return;
          break;
        }

        case S_END_NAME_START: {
          if (!isNameStartAt(s, i)) return void this.fail('not-well-formed', 'invalid end tag', this.base + i);
          this.state = S_END_NAME;
          break;
        }

        case S_END_NAME: {
          const start = i;
          i = scanName(s, i, len);
          if (i === len) { this.buf += s.slice(start); break; }
          const name = this.buf === '' ? sliceName(s, start, i) : this.buf + s.slice(start, i);
          this.buf = '';
          const c = s.charCodeAt(i);
          i++;
          if (c === 62) { if (!this.closeTag(name, this.base + i)) return; }
          else if (c < 128 && (CC[c]! & WS) !== 0) { this.endName = name; this.state = S_END_WS; }
          else return void this.fail('not-well-formed', 'invalid character in end tag', this.base + i - 1);
          break;
        }

        case S_END_WS: {
          let c = 0;
          while (i < len && (c = s.charCodeAt(i)) < 128 && (CC[c]! & WS) !== 0) i++;
          if (i === len) break;
          if (c !== 62) return void this.fail('not-well-formed', 'invalid character in end tag', this.base + i);
          i++;
          if (!this.closeTag(this.endName, this.base + i)) return;
          break;
        }

        case S_ENTITY: {
          i = this.entity(s, i, this.entReturn);
          break;
        }

        case S_GAP:
        case S_PROLOG: {
          let c = 0;
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c < 128 && (CC[c]! & WS) !== 0) continue;
            if (c === 0xFEFF && this.base + i === 0) { this.bomAt0 = true; continue; }
            break;
          }
          if (i === len) break;
          const pos = this.base + i;
          if (c !== 60) {
            return void this.fail('not-well-formed', this.headerSeen ? 'text outside of stanzas' : 'text before the stream header', pos);
          }
          if (this.headerSeen) {
            if (pos - this.regionStart > this.maxSize) return void this.fail('policy-violation', this.sizeMessage(), pos);
            this.regionStart = pos;
          }
          this.ltPos = pos;
          i++;
          this.state = S_LT;
          break;
        }

        case S_BANG: {
          if (this.bangIdx === 0) {
            const c = s.charCodeAt(i);
            this.bangWord = c === 45 ? '--' : c === 91 ? '[CDATA[' : c === 68 ? 'DOCTYPE' : '';
            if (this.bangWord === '') return void this.fail('not-well-formed', "invalid markup after '<!'", this.base + i);
            this.bangIdx = 1;
            i++;
          }
          const word = this.bangWord;
          while (this.bangIdx < word.length && i < len) {
            if (s.charCodeAt(i) !== word.charCodeAt(this.bangIdx)) return void this.fail('not-well-formed', "invalid markup after '<!'", this.base + i);
            this.bangIdx++;
            i++;
          }
          if (this.bangIdx < word.length) break;
          if (word === '--') return void this.fail('restricted-xml', 'comments are not allowed', this.base + i);
          if (word === 'DOCTYPE') return void this.fail('restricted-xml', 'document type declarations are not allowed', this.base + i);
          if (this.depth === 0) return void this.fail('not-well-formed', 'character data outside of stanzas', this.base + i);
          this.state = S_CDATA;
          break;
        }

        case S_CDATA: {
          let start = i;
          for (;;) {
            let c = 0;
            for (; i < len; i++) {
              c = s.charCodeAt(i);
              if (c < 128) {
                if ((CC[c]! & CDATA_STOP) !== 0) break;
              } else if (c >= 0xD800) {
                if (c <= 0xDBFF) {
                  const d = s.charCodeAt(i + 1);
                  if (d >= 0xDC00 && d <= 0xDFFF) { i++; continue; }
                  return void this.badChar(i);
                }
                if (c <= 0xDFFF || c >= 0xFFFE) return void this.badChar(i);
              }
            }
            if (i === len) {
              if (i > start) this.text += s.slice(start, i);
              break;
            }
            if (c === 93) { this.bracket(i); i++; continue; }
            if (c === 62) {
              if (this.bracketRun >= 2 && this.lastBracket === this.base + i - 1) {
                const t = this.text + s.slice(start, i);
                this.text = t.slice(0, t.length - 2);
                i++;
                this.state = S_TEXT;
                break;
              }
              i++;
              continue;
            }
            if (c === 13) {
              this.text += s.slice(start, i) + '\n';
              i += s.charCodeAt(i + 1) === 10 ? 2 : 1;
              start = i;
              continue;
            }
            return void this.badChar(i);
          }
          break;
        }

        case S_PI_START: {
          if (!isNameStartAt(s, i)) return void this.fail('not-well-formed', 'processing instruction without a valid target', this.base + i);
          // `<?` and a name: a processing instruction, unless it is the XML declaration at the very start.
          if (this.headerSeen || this.ltPos !== (this.bomAt0 ? 1 : 0)) return void this.fail('restricted-xml', 'processing instructions are not allowed', this.base + i);
          this.state = S_PI_TARGET;
          break;
        }

        case S_PI_TARGET: {
          const start = i;
          i = scanName(s, i, len);
          if (i === len) { this.buf += s.slice(start); break; }
          const target = this.buf + s.slice(start, i);
          this.buf = '';
          const c = s.charCodeAt(i);
          if (target === 'xml' && (c === 63 || (c < 128 && (CC[c]! & WS) !== 0))) {
            this.buf = '<?xml';
            this.state = S_XML_DECL;
            break;
          }
          return void this.fail('restricted-xml', 'processing instructions are not allowed', this.base + i);
        }

        case S_XML_DECL: {
          const start = i;
          let c = 0;
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c === 62) break;
            // `<`, controls, and anything outside ASCII: none can be part of a well-formed declaration.
            if (c === 60 || (c < 32 ? (CC[c]! & WS) === 0 : c >= 128)) return void this.fail('not-well-formed', 'malformed XML declaration', this.base + i);
          }
          if (i === len) { this.buf += s.slice(start); break; }
          i++;
          const decl = this.buf + s.slice(start, i);
          this.buf = '';
          if (!XML_DECL.test(decl)) return void this.fail('not-well-formed', 'malformed XML declaration', this.base + i);
          this.state = S_PROLOG;
          break;
        }
      }
      if (this.failed) return;
    }
  }

  /**
   * Fast path for the usual start tag, whole in this chunk: `<name a='v' b="w">` or `/>`, single
   * spaces, values without references, line ends or anything but plain characters. Returns the
   * index after it (having opened it), 0 to let the state machine read it instead (from `i`,
   * nothing consumed; any error is found and reported there), or FAILED.
   */
  private simpleStartTag(s: string, i: number): number {
    const len = s.length;
    let j = scanName(s, i, len);
    if (j >= len) return 0;
    const name = sliceName(s, i, j);
    const names = this.attrNames;
    const values = this.attrValues;
    let n = 0;
    for (;;) {
      let c = s.charCodeAt(j);
      if (c === 62 || (c === 47 && s.charCodeAt(j + 1) === 62)) {
        this.tagName = name;
        this.nAttrs = n;
        const end = c === 62 ? j + 1 : j + 2;
        return this.openTag(c === 47, this.base + end) ? end : this.failed ? FAILED : end;
      }
      if (c !== 32) return 0;
      c = s.charCodeAt(++j);
      if (c === 62 || c === 47) continue;
      if (c >= 128 || (CC[c]! & NAME_START) === 0) return 0;
      const a = j;
      j = scanName(s, j, len);
      if (j + 1 >= len || s.charCodeAt(j) !== 61) return 0;
      const q = s.charCodeAt(j + 1);
      if (q !== 39 && q !== 34) return 0;
      const attr = sliceName(s, a, j);
      const v = j += 2;
      for (; j < len; j++) {
        c = s.charCodeAt(j);
        if (c < 128 ? (CC[c]! & ATTR_STOP) !== 0 : c >= 0xD800) break;
      }
      if (j >= len || c !== q) return 0;
      const value = s.slice(v, j++);
      if ((attr.indexOf(':') !== -1 || attr === 'xmlns') && badAttribute(attr, value)) return 0;
      names[n] = attr;
      values[n++] = value;
    }
  }

  private bracket(i: number): void {
    const pos = this.base + i;
    this.bracketRun = this.lastBracket === pos - 1 ? this.bracketRun + 1 : 1;
    this.lastBracket = pos;
  }

  /**
   * Reads an entity or character reference starting at `s[i]` (just after `&`, or where the
   * previous chunk left off); appends its value to the text or the attribute value and returns
   * to `ret`. Returns the index after what it consumed; on an error it fails the parser.
   */
  private entity(s: string, i: number, ret: number): number {
    const len = s.length;
    if (this.state !== S_ENTITY) {
      // Fast path: the predefined entities, whole in this chunk.
      const c = s.charCodeAt(i);
      let v = '', n = 0;
      if (c === 97) { if (s.startsWith('amp;', i)) { v = '&'; n = 4; } else if (s.startsWith('apos;', i)) { v = "'"; n = 5; } }
      else if (c === 108) { if (s.startsWith('lt;', i)) { v = '<'; n = 3; } }
      else if (c === 103) { if (s.startsWith('gt;', i)) { v = '>'; n = 3; } }
      else if (c === 113) { if (s.startsWith('quot;', i)) { v = '"'; n = 5; } }
      if (n !== 0) {
        if (ret === S_TEXT) this.text += v; else this.val += v;
        this.state = ret;
        return i + n;
      }
      this.state = S_ENTITY;
      this.entReturn = ret;
      this.entStep = E_START;
      this.entValue = 0;
      this.buf = '';
    }
    while (i < len) {
      const c = s.charCodeAt(i);
      switch (this.entStep) {
        case E_START:
          if (c === 35) { this.entStep = E_HASH; i++; continue; }
          if (!isNameStartAt(s, i)) { this.fail('not-well-formed', 'invalid entity reference', this.base + i); return len; }
          this.entStep = E_NAME;
          continue;
        case E_NAME: {
          const j = scanName(s, i, len);
          this.buf += s.slice(i, j);
          // Namespaces in XML: entity names are NCNames.
          if (this.buf.indexOf(':') !== -1) { this.fail('not-well-formed', 'invalid entity reference', this.base + i); return len; }
          i = j;
          if (i === len) return len;
          if (s.charCodeAt(i) !== 59) { this.fail('not-well-formed', 'invalid entity reference', this.base + i); return len; }
          const v = PREDEFINED[this.buf];
          if (v === undefined) {
            this.fail('restricted-xml', `undeclared entity reference &${this.buf.slice(0, 32)};`, this.base + i);
            return len;
          }
          this.buf = '';
          return this.entityDone(v, i + 1);
        }
        case E_HASH:
          if (c === 120) { this.entStep = E_HEX_START; i++; continue; }
          if (c >= 48 && c <= 57) { this.entStep = E_DEC; continue; }
          this.fail('not-well-formed', 'invalid character reference', this.base + i);
          return len;
        case E_DEC:
          if (c >= 48 && c <= 57) {
            this.entValue = Math.min(this.entValue * 10 + (c - 48), 0x110000);
            i++;
            continue;
          }
          return this.charRef(c, i);
        case E_HEX_START:
        case E_HEX: {
          const h = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (h >= 0) {
            this.entValue = Math.min(this.entValue * 16 + h, 0x110000);
            this.entStep = E_HEX;
            i++;
            continue;
          }
          if (this.entStep === E_HEX_START) { this.fail('not-well-formed', 'invalid character reference', this.base + i); return len; }
          return this.charRef(c, i);
        }
      }
    }
    return len;
  }

  private charRef(c: number, i: number): number {
    if (c !== 59 || !isXmlChar(this.entValue)) {
      this.fail('not-well-formed', 'invalid character reference', this.base + i);
      return i + 1;
    }
    return this.entityDone(String.fromCodePoint(this.entValue), i + 1);
  }

  private entityDone(v: string, i: number): number {
    if (this.entReturn === S_TEXT) this.text += v; else this.val += v;
    this.state = this.entReturn;
    return i;
  }

  /** A complete start tag (its name in tagName, attributes in attrNames/attrValues); `pos` is just after its `>`. */
  private openTag(selfClosing: boolean, pos: number): boolean {
    const qname = this.tagName;
    const n = this.nAttrs;
    const names = this.attrNames;
    const values = this.attrValues;
    const level = this.depth;
    const header = !this.headerSeen;
    let def = header ? '' : this.defs[level]!;
    let scope = header ? BASE_SCOPE : this.scopes[level]!;
    let declaredDefault: string | undefined;
    let newScope = false;

    // Namespace declarations, and plain duplicates.
    if (n > 1) {
      if (n <= 16) {
        for (let k = 1; k < n; k++) {
          const name = names[k];
          for (let j = 0; j < k; j++) if (names[j] === name) return this.fail('not-well-formed', `duplicate attribute ${name}`, pos);
        }
      } else if (new Set(names.slice(0, n)).size !== n) {
        return this.fail('not-well-formed', 'duplicate attribute', pos);
      }
    }
    for (let k = 0; k < n; k++) {
      const name = names[k]!;
      if (name.charCodeAt(0) !== 120 || !name.startsWith('xmlns')) continue;
      // (Their form and values were checked as each attribute ended: see badAttribute.)
      if (name.length === 5) {
        declaredDefault = def = values[k]!.trim();
      } else if (name.charCodeAt(5) === 58) {
        if (!newScope) { scope = Object.create(scope) as PrefixMap; newScope = true; }
        scope[name.slice(6)] = values[k]!.trim();
      }
    }

    // The element's own name.
    let local = qname;
    let prefix = '';
    let uri: string;
    const colon = qname.indexOf(':');
    if (colon === -1) uri = def;
    else {
      prefix = qname.slice(0, colon);
      local = qname.slice(colon + 1);
      if (colon === 0 || !isNCNameStart(local)) return this.fail('not-well-formed', `malformed name ${qname}`, pos);
      if (prefix === 'xmlns') return this.fail('not-well-formed', 'elements may not have the prefix xmlns', pos);
      const u = scope[prefix];
      if (u === undefined) return this.fail('not-well-formed', `undeclared namespace prefix ${prefix}`, pos);
      uri = u;
    }

    // Attributes: normalised as the Element contract says.
    const attrs: Attrs = {};
    const parentNS = header ? undefined : this.nss[level];
    if (!header && uri !== parentNS) attrs.xmlns = uri;
    let prefixed = 0;
    for (let k = 0; k < n; k++) {
      const name = names[k]!;
      if (name.charCodeAt(0) === 120 && name.startsWith('xmlns') && (name.length === 5 || name.charCodeAt(5) === 58)) continue;
      attrs[name] = values[k]!;
      const c = name.indexOf(':');
      if (c === -1) continue;
      const p = name.slice(0, c);
      const u = scope[p];
      if (u === undefined) return this.fail('not-well-formed', `undeclared namespace prefix ${p}`, pos);
      if (!header && p !== 'xml') attrs['xmlns:' + p] = u;
      prefixed++;
    }
    if (prefixed > 1 && this.expandedDuplicate(scope)) return this.fail('not-well-formed', 'duplicate attribute', pos);

    if (header) {
      if (pos - this.regionStart > this.maxSize) return this.fail('policy-violation', this.sizeMessage(), pos);
      this.headerSeen = true;
      this.els[0] = NO_ELEMENT;
      this.qnames[0] = qname;
      this.nss[0] = declaredDefault;
      this.defs[0] = def;
      this.scopes[0] = scope;
      this.regionStart = pos;
      this.state = S_GAP;
      this.handlers.streamStart({ local, uri, prefix, defaultNS: declaredDefault, attrs });
      if (selfClosing) return this.end();
      return true;
    }

    if (level + 1 > this.maxDepth) return this.fail('policy-violation', `elements nested deeper than ${this.maxDepth} levels`, pos);
    const el = new Element(local, attrs);
    if (level > 0) {
      const parent = this.els[level]!;
      if (this.text !== '') { parent.children.push(this.text); this.text = ''; }
      parent.children.push(el);
    }
    if (selfClosing) {
      if (level === 0) return this.stanzaDone(el, pos);
      this.state = S_TEXT;
      return true;
    }
    const d = level + 1;
    this.depth = d;
    this.els[d] = el;
    this.qnames[d] = qname;
    this.nss[d] = uri;
    this.defs[d] = def;
    this.scopes[d] = scope;
    this.state = S_TEXT;
    return true;
  }

  /** Whether two prefixed attributes of the current tag have the same namespace and local name. */
  private expandedDuplicate(scope: PrefixMap): boolean {
    const seen = new Set<string>();
    for (let k = 0; k < this.nAttrs; k++) {
      const name = this.attrNames[k]!;
      const c = name.indexOf(':');
      if (c === -1 || name.startsWith('xmlns:')) continue;
      const key = scope[name.slice(0, c)] + '\u0000' + name.slice(c + 1);
      if (seen.has(key)) return true;
      seen.add(key);
    }
    return false;
  }

  private closeTag(qname: string, pos: number): boolean {
    const d = this.depth;
    if (!this.headerSeen || qname !== this.qnames[d]) {
      return this.fail('not-well-formed', this.headerSeen ? `mismatched end tag </${qname.slice(0, 64)}>` : 'end tag before the stream header', pos);
    }
    if (d === 0) return this.end();
    const el = this.els[d]!;
    if (this.text !== '') { el.children.push(this.text); this.text = ''; }
    this.els[d] = NO_ELEMENT;
    this.depth = d - 1;
    if (d === 1) return this.stanzaDone(el, pos);
    this.state = S_TEXT;
    return true;
  }

  private stanzaDone(el: Element, pos: number): boolean {
    if (pos - this.regionStart > this.maxSize) return this.fail('policy-violation', this.sizeMessage(), pos);
    this.regionStart = pos;
    this.state = S_GAP;
    this.handlers.stanza(el);
    return true;
  }

  private end(): false {
    this.failed = true;
    this.handlers.streamEnd();
    return false;
  }
}
