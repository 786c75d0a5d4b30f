// A small XML element tree, the one value type every layer passes around.
// Namespaces are carried as an `xmlns` attribute wherever an element's namespace differs
// from its parent's (the parser normalises prefixed names to this form), so a stanza
// serialises the same way whichever stream it came from.

export type Node = Element | string;
export type Attrs = Record<string, string>;

export class Element {
  name: string;
  attrs: Attrs;
  children: Node[];

  constructor(name: string, attrs: Attrs = {}, children: Node[] = []) {
    this.name = name;
    this.attrs = attrs;
    this.children = children;
  }

  get xmlns(): string | undefined {
    return this.attrs.xmlns;
  }

  is(name: string, xmlns?: string): boolean {
    return this.name === name && (xmlns === undefined || this.attrs.xmlns === xmlns);
  }

  getChild(name: string, xmlns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns)) return c;
    }
    return undefined;
  }

  getChildren(name: string, xmlns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns)) out.push(c);
    }
    return out;
  }

  /** The first child element in the given namespace, whatever its name. */
  getChildByNS(xmlns: string): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string' && c.attrs.xmlns === xmlns) return c;
    return undefined;
  }

  elements(): Element[] {
    return this.children.filter((c): c is Element => typeof c !== 'string');
  }

  firstElement(): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string') return c;
    return undefined;
  }

  text(): string {
    let s = '';
    for (const c of this.children) if (typeof c === 'string') s += c;
    return s;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  append(...nodes: (Node | undefined | null | false)[]): this {
    for (const n of nodes) if (n !== undefined && n !== null && n !== false && n !== '') this.children.push(n);
    return this;
  }

  /** Shallow copy of this element with its attributes copied; children are shared. */
  clone(attrs?: Attrs): Element {
    return new Element(this.name, { ...this.attrs, ...attrs }, this.children.slice());
  }

  toString(): string {
    return serialize(this);
  }
}

/** Terse builder: `xml('iq', {type: 'result'}, xml('query', {xmlns: NS}))`. Undefined attrs are dropped. */
export function xml(name: string, attrs?: Record<string, string | number | undefined | null> | null, ...children: (Node | undefined | null | false | (Node | undefined | null | false)[])[]): Element {
  const a: Attrs = {};
  if (attrs) for (const k in attrs) { const v = attrs[k]; if (v !== undefined && v !== null) a[k] = String(v); }
  const el = new Element(name, a);
  for (const c of children) {
    if (Array.isArray(c)) el.append(...c); else el.append(c);
  }
  return el;
}

const TEXT_ESCAPE = /[&<>]/g;
const ATTR_ESCAPE = /[&<>'"]/g;
// Separate non-global twins for the fast path: a global regex keeps `lastIndex` between `test` calls.
const HAS_TEXT_ESCAPE = /[&<>]/;
const HAS_ATTR_ESCAPE = /[&<>'"]/;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' };
const escapeChar = (c: string) => ESCAPES[c]!;

export function escapeText(s: string): string {
  return HAS_TEXT_ESCAPE.test(s) ? s.replace(TEXT_ESCAPE, escapeChar) : s;
}

export function escapeAttr(s: string): string {
  return HAS_ATTR_ESCAPE.test(s) ? s.replace(ATTR_ESCAPE, escapeChar) : s;
}

/** Opening tag only, without closing it: used for `<stream:stream>`. */
export function openTag(name: string, attrs: Attrs): string {
  let s = '<' + name;
  for (const k in attrs) s += ' ' + k + "='" + escapeAttr(attrs[k]!) + "'";
  return s + '>';
}

export function serialize(el: Element): string {
  let s = '<' + el.name;
  const attrs = el.attrs;
  for (const k in attrs) s += ' ' + k + "='" + escapeAttr(attrs[k]!) + "'";
  const children = el.children;
  if (children.length === 0) return s + '/>';
  s += '>';
  for (let i = 0; i < children.length; i++) {
    const c = children[i]!;
    s += typeof c === 'string' ? escapeText(c) : serialize(c);
  }
  return s + '</' + el.name + '>';
}
