// A BOSH client for tests, as a server-side bridge (seed 003) would be: raw <body/> requests
// over node:http, each on its own connection, with the session's sid and rid kept here.
import { request } from 'node:http';
import { createStreamParser } from '../../src/xml/parser.js';
import type { Element } from '../../src/xml/element.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The <body/> attributes (namespace declarations excluded) and its children. */
  attrs: Record<string, string>;
  children: Element[];
}

/** Parses a response body; throws when it is not one well-formed <body/> in the httpbind namespace. */
export function parseBody(text: string): { attrs: Record<string, string>; children: Element[] } {
  let attrs: Record<string, string> | undefined;
  const children: Element[] = [];
  let error: string | undefined;
  let ended = false;
  const p = createStreamParser({
    streamStart: (h) => {
      if (h.local !== 'body' || h.uri !== NS_HTTPBIND) error = `root ${h.local} in ${h.uri}`;
      attrs = h.attrs;
    },
    stanza: (el) => children.push(el),
    streamEnd: () => { ended = true; },
    error: (c, t) => { error = `${c}: ${t}`; },
  }, { maxStanzaSize: 1e7, maxDepth: 100 });
  p.write(text);
  if (error || !attrs || !ended) throw new Error(`not a BOSH body (${error ?? 'incomplete'}): ${text}`);
  return { attrs, children };
}

export function post(port: number, body: string | Buffer, options: { path?: string; headers?: Record<string, string> } = {}): Promise<BoshResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: options.path ?? '/http-bind/', method: 'POST', agent: false,
      headers: { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...options.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: { attrs: Record<string, string>; children: Element[] } = { attrs: {}, children: [] };
        if (text.startsWith('<body')) parsed = parseBody(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, ...parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export class BoshClient {
  sid = '';
  rid: number;
  created!: BoshResponse;
  /** Every payload element received, in order. */
  readonly received: Element[] = [];

  constructor(readonly port: number, firstRid = 1_000_000 + Math.floor(Math.random() * 1_000_000), readonly path = '/http-bind/') {
    this.rid = firstRid;
  }

  /** Session creation request; `attrs` override the defaults (to, wait, hold, ver, xmpp:version). */
  async create(attrs: Record<string, string> = {}): Promise<BoshResponse> {
    const a: Record<string, string> = {
      rid: String(this.rid), to: 'localhost', wait: '2', hold: '1', ver: '1.6', 'xml:lang': 'en', 'xmpp:version': '1.0', ...attrs,
    };
    const res = await this.raw(a);
    this.created = res;
    if (res.attrs.sid) this.sid = res.attrs.sid;
    return res;
  }

  /** The body element for `attrs` (undefined values dropped) with `payload` inside. */
  static body(attrs: Record<string, string | undefined>, payload = ''): string {
    let s = `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='${NS_XBOSH}'`;
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) s += ` ${k}='${v}'`;
    return payload ? `${s}>${payload}</body>` : `${s}/>`;
  }

  async raw(attrs: Record<string, string | undefined>, payload = ''): Promise<BoshResponse> {
    const res = await post(this.port, BoshClient.body(attrs, payload), { path: this.path });
    this.received.push(...res.children);
    return res;
  }

  /** The next request in sequence (rid + 1) carrying `payload`. */
  send(payload = '', attrs: Record<string, string> = {}): Promise<BoshResponse> {
    this.rid++;
    return this.raw({ rid: String(this.rid), sid: this.sid, ...attrs }, payload);
  }

  /** Sends empty requests until an element matches (or `ms` pass). */
  async waitFor(match: (el: Element) => boolean, what = 'element', ms = 5000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.received.map(String).join('\n')}`);
      const res = await this.send();
      if (res.attrs.type === 'terminate') throw new Error(`session terminated (${res.attrs.condition}) while waiting for ${what}: ${res.text}`);
    }
  }

  /** Session creation, SASL PLAIN, restart, bind; returns the bound JID. */
  async login(user: string, password = 'secret', resource = 'bosh', createAttrs: Record<string, string> = {}): Promise<string> {
    const created = await this.create(createAttrs);
    if (!created.children.some((c) => c.name === 'features')) await this.waitFor((e) => e.name === 'features', 'features');
    const auth = Buffer.from(`\0${user}\0${password}`).toString('base64');
    await this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    await this.waitFor((e) => e.name === 'success', 'SASL success');
    await this.send('', { 'xmpp:restart': 'true', to: 'localhost', 'xml:lang': 'en' });
    await this.waitFor((e) => e.name === 'features' && !!e.getChild('bind'), 'features after restart');
    await this.send(`<iq xmlns='jabber:client' type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const bound = await this.waitFor((e) => e.name === 'iq' && e.attrs.id === 'bind_1', 'bind result');
    return bound.getChild('bind')!.getChildText('jid')!;
  }
}
