// Incremental parser for one XML stream (RFC 6120 section 11): the stream header, then one
// complete Element per top-level child (stanza), then the stream close. It enforces the
// restricted XML profile (no DTD, comments, processing instructions or undeclared entity
// references) and the configured limits, and reports the first violation as a stream error
// condition; after that it ignores further input.
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Element, type Attrs } from './element.js';

export type StreamErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'invalid-namespace' | 'bad-format';

export interface ParserLimits {
  /** Largest stanza, in characters of its source text. */
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

class SaxesStreamParser implements StreamParser {
  failed = false;
  private readonly sax: SaxesParser<{ xmlns: true; position: true }>;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private stack: Element[] = [];
  private nsStack: string[] = [];
  private defaultNS: string | undefined;
  // Size accounting without relying on saxes' position: characters fed so far, where the
  // chunk holding the open stanza began (an upper bound for a stanza still open), and the
  // characters of the stanza's names, attributes and text (its size once complete).
  private fed = 0;
  private chunkStart = 0;
  private stanzaStart = -1;
  private stanzaChars = 0;
  private headerSeen = false;
  // Stanzas completed during the current write, with the position where each ended. saxes
  // reports a mismatched close tag only after closing the open element, so delivery waits
  // for the end of the write, and an error drops what completed at its own position.
  private ready: Element[] = [];
  private readyAt: number[] = [];

  constructor(private readonly handlers: StreamHandlers, private readonly limits: ParserLimits) {
    const sax = new SaxesParser({ xmlns: true, position: true });
    this.sax = sax;
    sax.on('error', (e) => {
      const msg = e.message;
      if (/undefined entity/i.test(msg)) this.fail('restricted-xml', 'entity references other than the predefined five are not allowed');
      else {
        while (this.readyAt.length && this.readyAt[this.readyAt.length - 1]! >= sax.position) { this.ready.pop(); this.readyAt.pop(); }
        this.fail('not-well-formed', msg.replace(/^(?:[^:]*:)?\d+:\d+: /, ''));
      }
    });
    sax.on('doctype', () => this.fail('restricted-xml', 'document type declarations are not allowed'));
    sax.on('processinginstruction', () => this.fail('restricted-xml', 'processing instructions are not allowed'));
    sax.on('comment', () => this.fail('restricted-xml', 'comments are not allowed'));
    sax.on('opentag', (tag) => this.open(tag));
    sax.on('closetag', () => this.close());
    sax.on('text', (t) => this.text(t));
    sax.on('cdata', (t) => this.text(t));
  }

  write(chunk: Buffer | string): void {
    if (this.failed) return;
    let s: string;
    try {
      s = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    } catch {
      this.failed = true;
      this.handlers.error('not-well-formed', 'invalid UTF-8');
      return;
    }
    this.chunkStart = this.fed;
    this.fed += s.length;
    try {
      this.sax.write(s);
    } catch (e) {
      if (!this.failed) this.fail('not-well-formed', (e as Error).message);
    }
    if (this.ready.length) {
      const ready = this.ready;
      this.ready = [];
      this.readyAt = [];
      for (const el of ready) this.handlers.stanza(el);
    }
    if (this.failure) {
      const { condition, text } = this.failure;
      this.failure = undefined;
      this.handlers.error(condition, text);
      return;
    }
    if (this.ended) { this.failed = true; this.handlers.streamEnd(); return; }
    if (this.failed) return;
    const pending = this.stanzaStart >= 0 ? this.fed - this.stanzaStart : this.headerSeen ? 0 : this.fed;
    if (pending > this.limits.maxStanzaSize) {
      this.failed = true;
      this.handlers.error('policy-violation', `stanza exceeds the maximum size of ${this.limits.maxStanzaSize} bytes`);
    }
  }

  private fail(condition: StreamErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = { condition, text };
  }

  private ended = false;
  private failure: { condition: StreamErrorCondition; text: string } | undefined;

  private open(tag: SaxesTagNS): void {
    if (this.failed) return;
    if (!this.headerSeen) {
      this.headerSeen = true;
      const attrs: Attrs = {};
      for (const k in tag.attributes) {
        const a = tag.attributes[k]!;
        if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
        attrs[a.name] = a.value;
      }
      this.defaultNS = tag.ns[''] ?? undefined;
      this.handlers.streamStart({ local: tag.local, uri: tag.uri, prefix: tag.prefix, defaultNS: this.defaultNS, attrs });
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
    if (depth === 1) {
      this.stanzaStart = this.chunkStart;
      this.stanzaChars = 0;
    }
    this.stanzaChars += 2 * tag.name.length + 5;
    for (const k in attrs) this.stanzaChars += k.length + attrs[k]!.length + 4;
    const el = new Element(tag.local, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
    this.nsStack.push(uri);
  }

  private close(): void {
    if (this.failed) return;
    const el = this.stack.pop();
    this.nsStack.pop();
    if (!el) { this.ended = true; return; } // the stream root itself closed
    if (this.stack.length === 0) {
      this.stanzaStart = -1;
      if (this.stanzaChars > this.limits.maxStanzaSize) { this.fail('policy-violation', `stanza exceeds the maximum size of ${this.limits.maxStanzaSize} bytes`); return; }
      this.ready.push(el);
      this.readyAt.push(this.sax.position);
    }
  }

  private text(t: string): void {
    if (this.failed) return;
    const top = this.stack[this.stack.length - 1];
    if (top) {
      top.children.push(t);
      this.stanzaChars += t.length;
    }
    else if (t.trim() !== '' && this.headerSeen) this.fail('not-well-formed', 'text outside of stanzas');
  }
}

export function createStreamParser(handlers: StreamHandlers, limits: ParserLimits = DEFAULT_LIMITS): StreamParser {
  return new SaxesStreamParser(handlers, limits);
}
