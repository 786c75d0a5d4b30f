// Conformance suite for the StreamParser contract (see parser.ts), run against every
// implementation in STREAM_PARSERS; then a differential fuzz: generated valid streams checked
// against an independent oracle, and mutated streams on which all implementations must agree.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { STREAM_PARSERS, createStreamParser, DEFAULT_LIMITS, type ParserLimits, type StreamHeader, type StreamParser } from './parser.js';
import { FastStreamParser } from './fast-parser.js';
import { escapeAttr, escapeText, type Attrs } from './element.js';
import { rng } from '../../test/support/rng.js';

const NS_STREAMS = 'http://etherx.jabber.org/streams';
const HEADER = `<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='localhost' version='1.0' xml:lang='en'>`;
/** PARSER_FUZZ=20 runs the differential fuzz twenty times longer. */
const FUZZ = Math.max(1, Number(process.env.PARSER_FUZZ) || 1);
const BIG: ParserLimits = { maxStanzaSize: 1 << 30, maxDepth: 1000 };
const SMALL: ParserLimits = { maxStanzaSize: 4096, maxDepth: 8 };

type Input = string | Buffer;
interface Run {
  /** 'start', 'stanza <serialised>', 'end', 'error <condition>', in order. */
  events: string[];
  header: StreamHeader | undefined;
  /** Events reported after the first error or end (must stay empty). */
  late: string[];
  parser: StreamParser;
  /** How much input had been written when the first error arrived. */
  writtenAtError: number;
}

type Impl = new (h: ConstructorParameters<typeof FastStreamParser>[0], l: ParserLimits) => StreamParser;
const IMPLS = Object.entries(STREAM_PARSERS) as [string, Impl][];

function feed(Impl: Impl, chunks: Input[], limits: ParserLimits = BIG): Run {
  const r: Run = { events: [], header: undefined, late: [], parser: undefined as unknown as StreamParser, writtenAtError: -1 };
  let done = false;
  let written = 0;
  const push = (e: string) => { (done ? r.late : r.events).push(e); };
  r.parser = new Impl({
    streamStart: (h) => { push('start'); r.header = h; },
    stanza: (el) => push('stanza ' + el.toString()),
    streamEnd: () => { push('end'); done = true; },
    error: (condition) => { push('error ' + condition); if (!done) r.writtenAtError = written; done = true; },
  }, limits);
  for (const c of chunks) { written += c.length; r.parser.write(c); }
  // More input after the end or an error changes nothing.
  if (done) { r.parser.write('<late/>'); r.parser.write(Buffer.from('</stream:stream>')); }
  return r;
}

function events(Impl: Impl, input: Input | Input[], limits?: ParserLimits): string[] {
  const r = feed(Impl, Array.isArray(input) ? input : [input], limits);
  assert.deepEqual(r.late, [], 'nothing is reported after the first error or the end');
  return r.events;
}

const stanzas = (...s: string[]) => s.map((x) => 'stanza ' + x);
const S = (...s: string[]) => ['start', ...stanzas(...s)];

/** Ways to cut one input: every position in the string, every byte of its UTF-8, one unit or byte at a time, and three-way cuts. */
function* chunkings(input: string, exhaustive = true): Generator<{ name: string; chunks: Input[] }> {
  const buf = Buffer.from(input, 'utf8');
  yield { name: 'one string', chunks: [input] };
  yield { name: 'one buffer', chunks: [buf] };
  yield { name: 'unit by unit', chunks: input.split('') };
  yield { name: 'byte by byte', chunks: [...buf].map((b) => Buffer.from([b])) };
  const step = exhaustive ? 1 : Math.max(1, Math.floor(input.length / 40));
  for (let k = 1; k < input.length; k += step) yield { name: `string cut at ${k}`, chunks: [input.slice(0, k), input.slice(k)] };
  for (let k = 1; k < buf.length; k += step) yield { name: `buffer cut at ${k}`, chunks: [buf.subarray(0, k), buf.subarray(k)] };
  const rnd = rng(input.length);
  for (let n = 0; n < (exhaustive ? 30 : 5); n++) {
    const a = 1 + Math.floor(rnd() * (buf.length - 2)), b = a + 1 + Math.floor(rnd() * (buf.length - a - 1));
    yield { name: `buffer cut at ${a}, ${b}`, chunks: [buf.subarray(0, a), buf.subarray(a, b), buf.subarray(b)] };
  }
}

/** The same events whichever way the input is cut. */
function assertSplitInvariant(Impl: Impl, input: string, expected: string[], limits: ParserLimits = BIG, exhaustive = true): void {
  for (const { name, chunks } of chunkings(input, exhaustive)) {
    assert.deepEqual(events(Impl, chunks, limits), expected, `cut as ${name}`);
  }
}

const BILLION_LAUGHS = `<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol">` +
  Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`).join('') + `]>`;

describe('createStreamParser', () => {
  it('returns the fast parser, with the default limits', () => {
    const events: string[] = [];
    const p = createStreamParser({ streamStart: () => events.push('start'), stanza: (el) => events.push(el.toString()), streamEnd() {}, error: (c) => events.push(c) });
    assert.ok(p instanceof FastStreamParser);
    p.write(HEADER + `<m>${'x'.repeat(DEFAULT_LIMITS.maxStanzaSize - 7)}</m>` + '<a>'.repeat(DEFAULT_LIMITS.maxDepth + 1));
    assert.deepEqual(events.map((e) => e.slice(0, 16)), ['start', '<m>xxxxxxxxxxxxx', 'policy-violation']);
  });
  it('lists at least the reference and the fast implementation', () => {
    assert.deepEqual(Object.keys(STREAM_PARSERS).sort(), ['fast', 'saxes']);
  });
});

for (const [implName, Impl] of IMPLS) {
  describe(`StreamParser conformance: ${implName}`, () => {
    const ev = (input: Input | Input[], limits?: ParserLimits) => events(Impl, input, limits);

    describe('stream header', () => {
      it('reports the root name, namespace, prefix, default namespace and the other attributes', () => {
        const r = feed(Impl, [HEADER]);
        assert.deepEqual(r.events, ['start']);
        assert.deepEqual(r.header, {
          local: 'stream', uri: NS_STREAMS, prefix: 'stream', defaultNS: 'jabber:client',
          attrs: { to: 'localhost', version: '1.0', 'xml:lang': 'en' },
        });
        assert.equal(r.parser.failed, false);
      });

      it('accepts an XML declaration at the very start, also after a byte order mark', () => {
        for (const decl of [`<?xml version='1.0'?>`, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version='1.0' encoding='utf-8' standalone='yes' ?>`, '<?xml\nversion = "1.0"\t?>']) {
          assert.deepEqual(ev(decl + '\n' + HEADER), ['start'], decl);
          assert.deepEqual(ev('\uFEFF' + decl + HEADER), ['start'], decl);
          assert.deepEqual(ev(Buffer.concat([Buffer.from([0xEF, 0xBB, 0xBF]), Buffer.from(decl + HEADER)])), ['start'], decl);
        }
        assert.deepEqual(ev(Buffer.from('\uFEFF' + HEADER)), ['start']);
      });

      it('rejects a malformed XML declaration', () => {
        for (const decl of [`<?xml?>`, `<?xml version='2.0'?>`, `<?xml encoding='UTF-8'?>`, `<?xml version='1.0' standalone='maybe'?>`, `<?xml version='1.0'encoding='UTF-8'?>`]) {
          assert.deepEqual(ev([decl + HEADER]), ['error not-well-formed'], decl);
        }
      });

      it('keeps XML 1.0 character rules whatever version the declaration names', () => {
        assert.deepEqual(ev([`<?xml version='1.1'?>` + HEADER, '<m>&#1;</m>']), ['start', 'error not-well-formed']);
        assert.deepEqual(ev([`<?xml version='1.1'?>` + HEADER, '<m>\u0085</m>']), S('<m>\u0085</m>'));
      });

      it('handles double quotes, whitespace, other prefixes and no prefix', () => {
        let r = feed(Impl, [`<s:stream\n xmlns:s="${NS_STREAMS}"  xmlns="jabber:client"\tid="1" >`]);
        assert.deepEqual(r.header, { local: 'stream', uri: NS_STREAMS, prefix: 's', defaultNS: 'jabber:client', attrs: { id: '1' } });
        r = feed(Impl, [`<stream xmlns='${NS_STREAMS}' to='x'>`, '<message/>']);
        assert.deepEqual(r.header, { local: 'stream', uri: NS_STREAMS, prefix: '', defaultNS: NS_STREAMS, attrs: { to: 'x' } });
        assert.deepEqual(r.events, S('<message/>'));
      });

      it('reports a root in another namespace or without a default namespace as it is (the stream layer decides)', () => {
        let r = feed(Impl, [`<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:server'>`]);
        assert.deepEqual(r.header, { local: 'stream', uri: 'urn:wrong', prefix: 'stream', defaultNS: 'jabber:server', attrs: {} });
        r = feed(Impl, [`<stream:stream xmlns:stream='${NS_STREAMS}'>`, '<message/>']);
        assert.equal(r.header?.defaultNS, undefined);
        // With no default namespace on the stream, a stanza in no namespace says so.
        assert.deepEqual(r.events, S(`<message xmlns=''/>`));
      });

      it('rejects an undeclared root prefix and malformed headers', () => {
        assert.deepEqual(ev(`<stream:stream xmlns='jabber:client'>`), ['error not-well-formed']);
        assert.deepEqual(ev(`<stream:stream xmlns:stream='${NS_STREAMS}' a='1' a='2'>`), ['error not-well-formed']);
        assert.deepEqual(ev(`<stream:stream xmlns:stream='${NS_STREAMS}' to=localhost>`), ['error not-well-formed']);
        assert.deepEqual(ev(`</stream:stream>`), ['error not-well-formed']);
      });

      it('reports a self-closing root as a start and an end', () => {
        assert.deepEqual(ev(`<stream:stream xmlns:stream='${NS_STREAMS}'/>`), ['start', 'end']);
      });

      it('rejects text before the header at once', () => {
        assert.deepEqual(ev('hello'), ['error not-well-formed']);
        assert.deepEqual(ev(['  \n', 'x']), ['error not-well-formed']);
        assert.deepEqual(ev('<![CDATA[x]]>' + HEADER), ['error not-well-formed']);
      });

      it('survives being cut anywhere', () => {
        assertSplitInvariant(Impl, `<?xml version='1.0'?>\n` + HEADER.replace('localhost', 'lócalhôst.例'), ['start']);
      });
    });

    describe('stanzas', () => {
      it('delivers each top-level child as one Element, in order', () => {
        const r = feed(Impl, [HEADER + `<message to='a@b' type='chat' id='1'><body>hi</body></message><presence/><iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>`]);
        assert.deepEqual(r.events, S(`<message to='a@b' type='chat' id='1'><body>hi</body></message>`, '<presence/>', `<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>`));
      });

      it('builds the tree: names, attributes in order, children, text', () => {
        let stanza: import('./element.js').Element | undefined;
        const p = new Impl({ streamStart() {}, stanza: (el) => { stanza = el; }, streamEnd() {}, error() {} }, BIG);
        p.write(HEADER + `<message b='2' a="1"><body>x<b>y</b>z</body><thread/></message>`);
        assert.ok(stanza);
        assert.equal(stanza.name, 'message');
        assert.deepEqual(Object.keys(stanza.attrs), ['b', 'a']);
        assert.deepEqual(stanza.attrs, { b: '2', a: '1' });
        const body = stanza.getChild('body')!;
        assert.deepEqual(body.children.map((c) => typeof c === 'string' ? c : c.name), ['x', 'b', 'z']);
        assert.equal(stanza.getChild('thread')!.children.length, 0);
      });

      it('ignores whitespace between stanzas, whitespace keepalives included', () => {
        assert.deepEqual(ev([HEADER, ' ', '\n', '<a/>', ' \r\n\t ', '<b/>\n', ' ']), S('<a/>', '<b/>'));
      });

      it('keeps whitespace-only text inside stanzas', () => {
        assert.deepEqual(ev(HEADER + '<message>\n  <body> </body>\n</message>'), S('<message>\n  <body> </body>\n</message>'));
      });

      it('rejects text outside stanzas at once, without waiting for more input', () => {
        assert.deepEqual(ev([HEADER, '<a/>hello']), S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(ev([HEADER, ' x']), ['start', 'error not-well-formed']);
        assert.deepEqual(ev([HEADER, '&amp;']), ['start', 'error not-well-formed']);
        assert.deepEqual(ev([HEADER, '&#32;<a/>']), ['start', 'error not-well-formed']);
        assert.deepEqual(ev([HEADER, '<![CDATA[ ]]><a/>']), ['start', 'error not-well-formed']);
      });

      it('delivers the stanzas completed before an error in the same write, but not the faulty one', () => {
        assert.deepEqual(ev(HEADER + '<a/><b>x</b><c><d></c></d><e/>'), S('<a/>', '<b>x</b>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + `<a/><b x='1' x='2'/>`), S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + `<a/><b></a>`), S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + `<a/><b/></c>`), S('<a/>', '<b/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + `<a/><b>&nbsp;</b><c/>`), S('<a/>').concat('error restricted-xml'));
        assert.deepEqual(ev(HEADER + `<a/><b><!-- x --></b>`), S('<a/>').concat('error restricted-xml'));
      });

      it('survives being cut anywhere, also inside multi-byte characters', () => {
        const input = HEADER + `\n<message to='juliet@例え.jp/🎭' id='a&amp;b'>\r\n <body>Wherefore art thou, Ромео? 🌹 &lt;3 &#x1F600;&#233;</body>` +
          `<x:y xmlns:x='urn:x' x:z="&quot;é&quot;"><![CDATA[a <b> & ]] ]]]></x:y></message> <presence/>\n`;
        const expected = S(`<message to='juliet@例え.jp/🎭' id='a&amp;b'>\n <body>Wherefore art thou, Ромео? 🌹 &lt;3 😀é</body>` +
          `<y xmlns='urn:x' x:z='&quot;é&quot;' xmlns:x='urn:x'>a &lt;b&gt; &amp; ]] ]</y></message>`, '<presence/>');
        assertSplitInvariant(Impl, input, expected);
      });

      it('survives the Asterisk PubSub publish being cut anywhere', () => {
        const publish = `<iq type='set' to='pubsub.localhost' id='aaaab'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='device_state'><item id='Custom:mystate'><state xmlns='http://asterisk.org' eid='00:11:22:33:44:55' cachable='1'>INUSE</state></item></publish></pubsub></iq>`;
        assertSplitInvariant(Impl, HEADER + publish + publish, S(publish, publish));
      });

      it('closes the stream on </stream:stream>, after the stanzas before it, and ignores what follows', () => {
        assert.deepEqual(ev(HEADER + '<a/><b/> </stream:stream>'), S('<a/>', '<b/>').concat('end'));
        assert.deepEqual(ev([HEADER, '<a/>', '</stream:stream>junk<c/>']), S('<a/>').concat('end'));
        assert.deepEqual(ev([HEADER + '</stream:stream >']), ['start', 'end']);
        assertSplitInvariant(Impl, HEADER + '<a/></stream:stream>', S('<a/>').concat('end'));
        const r = feed(Impl, [HEADER, '</stream:stream>']);
        assert.equal(r.parser.failed, true);
      });

      it('rejects a close tag that does not match the stream root', () => {
        assert.deepEqual(ev(HEADER + '<a/></stream:foo>'), S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + '<a/></stream>'), S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + '<a></stream:stream>'), ['start', 'error not-well-formed']);
      });
    });

    describe('namespace normalisation', () => {
      const cases: [string, string, string][] = [
        ['a child in its parent\'s namespace has no xmlns', `<iq><query xmlns='jabber:iq:roster'><item/></query></iq>`, `<iq><query xmlns='jabber:iq:roster'><item/></query></iq>`],
        ['a stanza in the stream default namespace has no xmlns', `<message xmlns='jabber:client'><body/></message>`, '<message><body/></message>'],
        ['a stanza in another namespace has one', `<message xmlns='jabber:server'><body/></message>`, `<message xmlns='jabber:server'><body/></message>`],
        ['a prefixed element becomes unprefixed with xmlns', `<p:query xmlns:p='jabber:iq:roster'><p:item/></p:query>`, `<query xmlns='jabber:iq:roster'><item/></query>`],
        ['an unprefixed child of a prefixed element keeps the default namespace', `<p:query xmlns:p='urn:p'><item/></p:query>`, `<query xmlns='urn:p'><item xmlns='jabber:client'/></query>`],
        ['the stream prefix declared on the root resolves in stanzas', `<stream:error><x xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, `<error xmlns='${NS_STREAMS}'><x xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>`],
        ['a prefixed attribute keeps its prefix and gets xmlns:p', `<m xmlns:x='urn:x' a='0' x:a='1' b='2' x:b='3'/>`, `<m a='0' x:a='1' xmlns:x='urn:x' b='2' x:b='3'/>`],
        ['a prefix declared on an ancestor is declared again where an attribute uses it', `<m xmlns:x='urn:x'><n><o x:a='1'/></n></m>`, `<m><n><o x:a='1' xmlns:x='urn:x'/></n></m>`],
        ['xml:lang is kept without a declaration', `<m xml:lang='fr'><body xml:lang='de'>x</body></m>`, `<m xml:lang='fr'><body xml:lang='de'>x</body></m>`],
        ['a prefix can be redeclared', `<x:a xmlns:x='urn:1'><x:b xmlns:x='urn:2'><x:c/></x:b><x:d/></x:a>`, `<a xmlns='urn:1'><b xmlns='urn:2'><c/></b><d/></a>`],
        ['the default namespace can be undeclared', `<a xmlns='urn:a'><b xmlns=''><c/></b></a>`, `<a xmlns='urn:a'><b xmlns=''><c/></b></a>`],
        ['a redundant declaration changes nothing', `<a xmlns='jabber:client'><b xmlns='jabber:client'/></a>`, '<a><b/></a>'],
        ['the same expanded name twice through different prefixes is a duplicate only if the namespaces match', `<a xmlns:p='urn:1' xmlns:q='urn:2' p:x='1' q:x='2'/>`, `<a p:x='1' xmlns:p='urn:1' q:x='2' xmlns:q='urn:2'/>`],
        ['names starting with xml are ordinary', `<a xmlnsx='1' xmlfoo='2'/>`, `<a xmlnsx='1' xmlfoo='2'/>`],
      ];
      for (const [what, input, expected] of cases) {
        it(what, () => assert.deepEqual(ev(HEADER + input), S(expected)));
      }

      it('rejects what Namespaces in XML forbids', () => {
        for (const bad of [
          '<x:a/>', `<a x:b='1'/>`, `<a xmlns:p=''/>`, `<a xmlns:xml='urn:x'/>`, `<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>`,
          `<a xmlns:xmlns='urn:x'/>`, `<a xmlns='http://www.w3.org/2000/xmlns/'/>`, `<xmlns:a/>`, `<a xmlns:p='urn:1' xmlns:q='urn:1' p:x='1' q:x='2'/>`,
          `<:a/>`, `<a: xmlns:a='u'/>`, `<a:b:c xmlns:a='u'/>`, `<a xmlns:a='u'><a:1b/></a>`, `<a xmlns:a='u' a:-b='1'/>`, `<a xmlns:='u'/>`,
          `<a><b xmlns:p='urn:p'/><p:c/></a>`,
        ]) {
          assert.deepEqual(ev(HEADER + '<ok/>' + bad), S('<ok/>').concat('error not-well-formed'), bad);
        }
      });
    });

    describe('character data and references', () => {
      it('decodes the predefined entities and character references, in text and attributes', () => {
        let text: string | undefined, attr: string | undefined;
        const p = new Impl({ streamStart() {}, stanza: (el) => { text = el.text(); attr = el.attrs.v; }, streamEnd() {}, error() {} }, BIG);
        p.write(HEADER + `<m v='&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1f600;&#0000067;'>&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F600;&#0000067;</m>`);
        assert.equal(text, `<>&'"AB😀C`);
        assert.equal(attr, `<>&'"AB😀C`);
      });

      it('normalises line ends, and whitespace in attribute values', () => {
        let text: string | undefined, attr: string | undefined;
        const p = new Impl({ streamStart() {}, stanza: (el) => { text = el.text(); attr = el.attrs.v; }, streamEnd() {}, error() {} }, BIG);
        p.write(HEADER + `<m v='a\tb\nc\r\nd\re&#9;&#10;&#13;'>a\r\nb\rc\n&#13;</m>`);
        assert.equal(text, 'a\nb\nc\n\r');
        assert.equal(attr, 'a b c d e\t\n\r');
      });

      it('reads CDATA sections as text, merged with the text around them', () => {
        const children: unknown[][] = [];
        const p = new Impl({ streamStart() {}, stanza: (el) => children.push(el.children), streamEnd() {}, error() {} }, BIG);
        p.write(HEADER + '<m>a<![CDATA[<b>&amp;</b>]]>c<![CDATA[]]]]><![CDATA[>]]></m><n><![CDATA[]]></n>');
        assert.deepEqual(children, [['a<b>&amp;</b>c]]>'], []]);
      });

      it('accepts the whole Char range, and rejects what is outside it', () => {
        assert.deepEqual(ev(HEADER + '<m a="\uE000\uFFFD\u{10FFFF}">\t\u0085\uD7FF\uE000\uFFFD\u{10000}\u{10FFFF}</m>'), S('<m a=\'\uE000\uFFFD\u{10FFFF}\'>\t\u0085\uD7FF\uE000\uFFFD\u{10000}\u{10FFFF}</m>'));
        for (const bad of ['<m>\u0001</m>', '<m>\u001F</m>', '<m a="\u0000"/>', '<m>\uFFFE</m>', '<m>\uFFFF</m>', '<m>\uDC00</m>', '<![CDATA[\u0008]]>',
          '<m>&#0;</m>', '<m>&#x1;</m>', '<m>&#xD800;</m>', '<m>&#xDFFF;</m>', '<m>&#xFFFE;</m>', '<m>&#x110000;</m>', '<m>&#99999999999999999999;</m>', '<m a="&#8;"/>']) {
          assert.deepEqual(ev(HEADER + '<ok/>' + bad), S('<ok/>').concat('error not-well-formed'), JSON.stringify(bad));
        }
      });

      it('rejects malformed references', () => {
        for (const bad of ['<m>&#X41;</m>', '<m>&#;</m>', '<m>&#x;</m>', '<m>&#12a;</m>', '<m>& ;</m>', '<m>&;</m>', '<m>&amp</m>', '<m>AT&T</m>', '<m a="&#x41"/>', '<m>&1a;</m>']) {
          assert.deepEqual(ev(HEADER + '<ok/>' + bad), S('<ok/>').concat('error not-well-formed'), bad);
        }
      });

      it("rejects ']]>' in text, also cut across writes", () => {
        assertSplitInvariant(Impl, HEADER + '<ok/><m>a]]>b</m>', S('<ok/>').concat('error not-well-formed'));
        assert.deepEqual(ev(HEADER + '<m>]]]</m><n>]&gt; ]] > ]]&gt;</n>'), S('<m>]]]</m>', '<n>]&gt; ]] &gt; ]]&gt;</n>'));
      });
    });

    describe('restricted XML', () => {
      it('rejects a DTD, the billion laughs included, before any expansion', () => {
        assert.deepEqual(ev(BILLION_LAUGHS + HEADER + '<message>&lol9;</message>'), ['error restricted-xml']);
        assert.deepEqual(ev([BILLION_LAUGHS, HEADER]), ['error restricted-xml']);
        assert.deepEqual(ev(`<!DOCTYPE stream:stream SYSTEM "http://example.com/x.dtd">` + HEADER), ['error restricted-xml']);
        assert.deepEqual(ev(HEADER + '<a/><!DOCTYPE x>'), S('<a/>').concat('error restricted-xml'));
        assertSplitInvariant(Impl, BILLION_LAUGHS + HEADER, ['error restricted-xml'], BIG, false);
      });

      it('rejects comments anywhere', () => {
        assert.deepEqual(ev('<!-- hi -->' + HEADER), ['error restricted-xml']);
        assert.deepEqual(ev(HEADER + '<!-- hi -->'), ['start', 'error restricted-xml']);
        assert.deepEqual(ev(HEADER + '<a/><!-- hi --><b/>'), S('<a/>').concat('error restricted-xml'));
        assert.deepEqual(ev(HEADER + '<m><body>x<!-- hi --></body></m>'), ['start', 'error restricted-xml']);
      });

      it('rejects processing instructions, and an XML declaration anywhere but the very start', () => {
        assert.deepEqual(ev(HEADER + '<?php echo 1; ?>'), ['start', 'error restricted-xml']);
        assert.deepEqual(ev(HEADER + '<m><?target data?></m>'), ['start', 'error restricted-xml']);
        assert.deepEqual(ev(`<?xml-stylesheet href='x'?>` + HEADER), ['error restricted-xml']);
        assert.deepEqual(ev(HEADER + `<?xml version='1.0'?>`), ['start', 'error restricted-xml']);
        assert.deepEqual(ev(` <?xml version='1.0'?>` + HEADER), ['error restricted-xml']);
        assert.deepEqual(ev(`<?xml version='1.0'?><?xml version='1.0'?>` + HEADER), ['error restricted-xml']);
      });

      it('rejects references to undeclared entities', () => {
        assert.deepEqual(ev(HEADER + '<a/><message><body>&nbsp;</body></message>'), S('<a/>').concat('error restricted-xml'));
        assert.deepEqual(ev(HEADER + `<a/><message to='&foo;'/>`), S('<a/>').concat('error restricted-xml'));
        assertSplitInvariant(Impl, HEADER + '<m>x&lol9;</m>', ['start', 'error restricted-xml']);
      });
    });

    describe('malformed XML', () => {
      const cases: [string, string][] = [
        ['a mismatched end tag', '<message><body>hi</message>'],
        ['an end tag without a start tag', '</message>'],
        ['an unclosed quote (then a < in the value)', `<message to='a@b><body>hi</body></message>`],
        ['< in an attribute value', `<message to='a<b'/>`],
        ['a duplicate attribute', `<message to='a' to='b'/>`],
        ['a duplicate attribute with the other quote', `<message to='a' to="a"/>`],
        ['an attribute without a value', '<message to/>'],
        ['an unquoted attribute value', '<message to=a/>'],
        ['no whitespace between attributes', `<message to='a'id='b'/>`],
        ['an invalid character in a name', '<mes$sage/>'],
        ['a name starting with a digit', '<1message/>'],
        ['an attribute name starting with a digit', `<message 1to='a'/>`],
        ['a name starting with -', '<-a/>'],
        ['whitespace after <', '< message/>'],
        ['whitespace after </', '<m></ m>'],
        ['an empty end tag', '<m></>'],
        ['/ not followed by >', '<m/ >'],
        ['garbage in an end tag', '<m></m x>'],
        ['<! followed by something else', '<m><!x></m>'],
        ['a misspelt CDATA', '<m><![CDAT[x]]></m>'],
        ['a misspelt DOCTYPE in a stanza', '<m><!DOCTYP x></m>'],
        ['<? without a target', '<m><? x?></m>'],
        ['an invalid character in an entity name', '<m>&a$;</m>'],
      ];
      for (const [what, bad] of cases) {
        it(`rejects ${what}`, () => {
          assert.deepEqual(ev(HEADER + '<ok/>' + bad), S('<ok/>').concat('error not-well-formed'));
        });
      }

      it('rejects invalid UTF-8, after delivering the stanzas before it', () => {
        const b = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)));
        for (const bad of [[0xFF], [0xFE], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC3, 0x28], [0xE2, 0x82, 0x28], [0x80]]) {
          assert.deepEqual(ev([HEADER, b('<a/><b>x', bad, '</b>')]), S('<a/>').concat('error not-well-formed'), JSON.stringify(bad));
          // Split right before, inside and after the bad sequence.
          const whole = b('<a/><b>', bad, '</b>');
          for (let k = 1; k < whole.length; k++) {
            assert.deepEqual(ev([HEADER, whole.subarray(0, k), whole.subarray(k)]), S('<a/>').concat('error not-well-formed'), `${JSON.stringify(bad)} cut at ${k}`);
          }
        }
        // A valid sequence cut anywhere is fine.
        const ok = b('<m>é€😀</m>');
        for (let k = 1; k < ok.length; k++) assert.deepEqual(ev([HEADER, ok.subarray(0, k), ok.subarray(k)]), S('<m>é€😀</m>'));
      });

      it('reports the stanzas of the write and then the first error only', () => {
        const r = feed(Impl, [HEADER + '<a/><b></c><d/>', '<e/>']);
        assert.deepEqual(r.events, S('<a/>').concat('error not-well-formed'));
        assert.deepEqual(r.late, []);
        assert.equal(r.parser.failed, true);
      });
    });

    describe('limits', () => {
      const max = SMALL.maxStanzaSize;
      const stanzaOfSize = (n: number) => { const open = '<message><body>', close = '</body></message>'; return open + 'x'.repeat(n - open.length - close.length) + close; };

      it('accepts a stanza of exactly maxStanzaSize and rejects one of maxStanzaSize + 1, whole or cut', () => {
        assert.equal(stanzaOfSize(max).length, max);
        assert.deepEqual(ev([HEADER, stanzaOfSize(max)], SMALL), S(stanzaOfSize(max)));
        assert.deepEqual(ev([HEADER, '  ' + stanzaOfSize(max) + '  ' + stanzaOfSize(max)], SMALL), S(stanzaOfSize(max), stanzaOfSize(max)));
        assert.deepEqual(ev([HEADER, '<a/>' + stanzaOfSize(max + 1) + '<b/>'], SMALL), S('<a/>').concat('error policy-violation'));
        assert.deepEqual(ev([HEADER, stanzaOfSize(max + 1).slice(0, 2000), stanzaOfSize(max + 1).slice(2000)], SMALL), ['start', 'error policy-violation']);
      });

      it('rejects a huge stanza sent in one write', () => {
        assert.deepEqual(ev([HEADER, `<message><body>${'x'.repeat(5000)}</body></message>`], SMALL), ['start', 'error policy-violation']);
        assert.deepEqual(ev([HEADER, `<message><body>${'x'.repeat(100000)}`], SMALL), ['start', 'error policy-violation']);
      });

      /** Trickles `prefix` then `filler` in small writes; the error must come before much more than the limit is buffered. */
      function trickle(prefix: string, filler: string | ((n: number) => string), chunk = 100): Run {
        const chunks: string[] = [HEADER, prefix];
        for (let n = 0; n < (3 * max) / chunk; n++) {
          const f = typeof filler === 'string' ? filler : filler(n);
          chunks.push(f.repeat(Math.ceil(chunk / f.length)).slice(0, chunk));
        }
        return feed(Impl, chunks, SMALL);
      }
      const trickled: [string, string, string | ((n: number) => string)][] = [
        ['text', '<message><body>', 'y'],
        ['an attribute value', "<message to='", 'z'],
        ['a start tag with many attributes', '<message', (n) => ` a${n}='${'v'.repeat(100 - 6 - String(n).length)}'`],
        ['an element name', '<message', 'x'],
        ['an attribute name', '<message a', 'x'],
        ['an end tag name', '<m></m', 'x'],
        ['many small children', '<message>', '<x/>'],
        ['CDATA', '<message><![CDATA[', 'c'],
        ['whitespace between stanzas', '<a/>', ' \n'],
        ['an entity name', '<message>&a', 'b'],
        ['a character reference', '<message>&#', '0'],
      ];
      for (const [what, prefix, filler] of trickled) {
        it(`rejects ${what} trickled in small writes, before buffering much more than the limit`, () => {
          const r = trickle(prefix, filler);
          const expected = what === 'whitespace between stanzas' ? S('<a/>').concat('error policy-violation') : ['start', 'error policy-violation'];
          assert.deepEqual(r.events, expected);
          assert.ok(r.writtenAtError - HEADER.length <= max + 100 + prefix.length + 10, `failed only after ${r.writtenAtError - HEADER.length} characters`);
        });
      }

      it('bounds the stream header and anything before it', () => {
        assert.deepEqual(ev(`<stream:stream xmlns:stream='${NS_STREAMS}' to='${'x'.repeat(5000)}'>`, SMALL), ['error policy-violation']);
        assert.deepEqual(ev([' '.repeat(3000), ' '.repeat(3000)], SMALL), ['error policy-violation']);
        const chunks = [`<stream:stream xmlns:stream='${NS_STREAMS}' to='`];
        for (let n = 0; n < 100; n++) chunks.push('x'.repeat(100));
        const r = feed(Impl, chunks, SMALL);
        assert.deepEqual(r.events, ['error policy-violation']);
        assert.ok(r.writtenAtError <= max + 200);
        // A header just under the limit is fine.
        const header = `<stream:stream xmlns:stream='${NS_STREAMS}' to='`;
        assert.deepEqual(ev(header + 'x'.repeat(max - header.length - 2) + "'>", SMALL), ['start']);
      });

      it('checks the size where a stanza (or the header, or a write) ends: a malformed stanza is malformed, however large', () => {
        assert.deepEqual(ev([HEADER, `<message><body>${'x'.repeat(5000)}</wrong></message>`], SMALL), ['start', 'error not-well-formed']);
        assert.deepEqual(ev([HEADER, `<message><body>${'x'.repeat(5000)}</body></message><a></b>`], SMALL), ['start', 'error policy-violation']);
        assert.deepEqual(ev([HEADER, `<message><body>${'x'.repeat(5000)}`, '</wrong></message>'], SMALL), ['start', 'error policy-violation']);
      });

      it('enforces maxDepth: the stanza is depth 1', () => {
        const nest = (n: number, leaf = '') => '<a>'.repeat(n) + leaf + '</a>'.repeat(n);
        assert.deepEqual(ev([HEADER, nest(8)], SMALL), S(nest(7, '<a/>')));
        assert.deepEqual(ev([HEADER, nest(7, '<b/>')], SMALL), S(nest(7, '<b/>')));
        assert.deepEqual(ev([HEADER, '<x/>' + nest(8, '<b/>')], SMALL), S('<x/>').concat('error policy-violation'));
        assert.deepEqual(ev([HEADER, '<a>'.repeat(20)], SMALL), ['start', 'error policy-violation']);
        assert.deepEqual(ev([HEADER, ...Array(20).fill('<a>')], SMALL), ['start', 'error policy-violation']);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Differential fuzz

interface GenNode { local: string; ns: string; attrs: [string, string][]; children: (GenNode | string)[] }

const NAMES = ['message', 'body', 'a', 'x1', 'item', 'query', 'état', '名前', '_u', 'a-b.c', 'pubsub', 'state'];
const URIS = ['jabber:client', 'urn:a', 'urn:b', 'http://jabber.org/protocol/pubsub', 'http://asterisk.org', ''];
const TEXT_ALPHABET = ['a', 'b', ' ', 'é', '€', '😀', '名', '<', '>', '&', "'", '"', '\n', '\t', ']', '\u0085', '\uFFFD'];

function generate(rnd: () => number, depth: number): GenNode {
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const attrs: [string, string][] = [];
  const used = new Set<string>();
  const n = Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const name = pick(NAMES);
    if (used.has(name)) continue;
    used.add(name);
    attrs.push([name, Array.from({ length: Math.floor(rnd() * 6) }, () => pick(TEXT_ALPHABET)).join('')]);
  }
  const children: (GenNode | string)[] = [];
  const m = depth > 4 ? 0 : Math.floor(rnd() * 4);
  for (let k = 0; k < m; k++) {
    if (rnd() < 0.5) children.push(Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => pick(TEXT_ALPHABET)).join(''));
    else children.push(generate(rnd, depth + 1));
  }
  return { local: pick(NAMES), ns: rnd() < 0.6 ? 'jabber:client' : pick(URIS), attrs, children };
}

/**
 * Serialises a generated tree in randomly chosen but equivalent ways (prefixes or default
 * declarations, quotes, references, CDATA, CR LF), and computes, independently of any parser,
 * the Element the contract says it parses to.
 */
function render(rnd: () => number, node: GenNode, parentNS: string | undefined, defNS: string, prefixes: Map<string, string>): { xml: string; expected: string } {
  const decls: [string, string][] = [];
  const scope = new Map(prefixes);
  let def = defNS;
  let qname = node.local;
  if (node.ns === defNS && rnd() < 0.8) {
    if (rnd() < 0.2) decls.push(['xmlns', node.ns]);
  } else {
    const bound = [...scope].find(([, u]) => u === node.ns);
    if (node.ns !== '' && bound && rnd() < 0.5) qname = `${bound[0]}:${node.local}`;
    else if (node.ns !== '' && rnd() < 0.4) {
      const p = `p${Math.floor(rnd() * 3)}`;
      decls.push([`xmlns:${p}`, node.ns]);
      scope.set(p, node.ns);
      qname = `${p}:${node.local}`;
    } else {
      decls.push(['xmlns', node.ns]);
      def = node.ns;
    }
  }
  // Sometimes one attribute is prefixed.
  const attrs = node.attrs.map(([n, v]) => [n, v] as [string, string]);
  if (attrs.length && rnd() < 0.3) {
    const bound = [...scope].filter(([p]) => p !== 'xml');
    if (bound.length) attrs[0]![0] = `${bound[Math.floor(rnd() * bound.length)]![0]}:${attrs[0]![0]}`;
    else if (rnd() < 0.5) attrs[0]![0] = `xml:${attrs[0]![0]}`;
  }
  const all: [string, string, boolean][] = [...decls.map(([n, v]) => [n, v, true] as [string, string, boolean]), ...attrs.map(([n, v]) => [n, v, false] as [string, string, boolean])];
  for (let k = all.length - 1; k > 0; k--) { const j = Math.floor(rnd() * (k + 1)); [all[k], all[j]] = [all[j]!, all[k]!]; }

  const expAttrs: Attrs = {};
  if (node.ns !== parentNS) expAttrs.xmlns = node.ns;
  let xml = '<' + qname;
  for (const [name, value, isDecl] of all) {
    const q = rnd() < 0.5 ? "'" : '"';
    xml += (rnd() < 0.2 ? '\n\t ' : ' ') + name + (rnd() < 0.1 ? ' = ' : '=') + q + encodeAttr(rnd, value, q) + q;
    if (isDecl) continue;
    expAttrs[name] = value;
    const c = name.indexOf(':');
    if (c > 0 && name.slice(0, c) !== 'xml') expAttrs['xmlns:' + name.slice(0, c)] = scope.get(name.slice(0, c))!;
  }
  let expected = '<' + node.local;
  for (const k in expAttrs) expected += ' ' + k + "='" + escapeAttr(expAttrs[k]!) + "'";
  if (node.children.length === 0 && rnd() < 0.7) return { xml: xml + (rnd() < 0.2 ? ' />' : '/>'), expected: expected + '/>' };
  xml += '>';
  let body = '';
  let text = '';
  for (const c of node.children) {
    if (typeof c === 'string') {
      xml += encodeText(rnd, c, xml);
      text += c;
    } else {
      if (text !== '') { body += escapeText(text); text = ''; }
      const r = render(rnd, c, node.ns, def, scope);
      xml += r.xml;
      body += r.expected;
    }
  }
  body += escapeText(text);
  return { xml: xml + '</' + qname + (rnd() < 0.1 ? ' >' : '>'), expected: body === '' ? expected + '/>' : expected + '>' + body + '</' + node.local + '>' };
}

function encodeAttr(rnd: () => number, v: string, q: string): string {
  let out = '';
  for (const ch of v) {
    const r = rnd();
    if (ch === '<' || ch === '&' || ch === q) out += r < 0.5 ? { '<': '&lt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[ch] : `&#${ch.codePointAt(0)};`;
    else if (ch === '\t' || ch === '\n') out += r < 0.5 ? `&#${ch.codePointAt(0)};` : `&#x${ch.codePointAt(0)!.toString(16)};`;
    else if (r < 0.1) out += `&#x${ch.codePointAt(0)!.toString(16).toUpperCase()};`;
    else out += ch;
  }
  return out;
}

function encodeText(rnd: () => number, t: string, before: string): string {
  if (rnd() < 0.15 && !t.includes(']]>')) return `<![CDATA[${t.replace(/\n/g, rnd() < 0.5 ? '\r\n' : '\n')}]]>`;
  let out = '';
  for (const ch of t) {
    const r = rnd();
    if (ch === '<' || ch === '&') out += r < 0.7 ? (ch === '<' ? '&lt;' : '&amp;') : `&#x${ch.codePointAt(0)!.toString(16)};`;
    else if (ch === '>' && (before + out).endsWith(']]')) out += '&gt;';
    else if (ch === '\n') out += r < 0.3 ? '\r\n' : r < 0.4 ? '&#10;' : '\n';
    else if (r < 0.08) out += `&#${ch.codePointAt(0)};`;
    else out += ch;
  }
  return out;
}

function generateStream(seed: number): { input: string; expected: string[] } {
  const rnd = rng(seed);
  let input = (rnd() < 0.5 ? `<?xml version='1.0'?>` : '') + HEADER.replace(" xml:lang='en'", rnd() < 0.5 ? " xml:lang='en'" : '');
  const expected = ['start'];
  const n = 1 + Math.floor(rnd() * 5);
  for (let k = 0; k < n; k++) {
    input += rnd() < 0.3 ? ' \n' : '';
    const r = render(rnd, generate(rnd, 1), 'jabber:client', 'jabber:client', new Map([['stream', NS_STREAMS]]));
    input += r.xml;
    expected.push('stanza ' + r.expected);
  }
  if (rnd() < 0.5) { input += '</stream:stream>'; expected.push('end'); }
  return { input, expected };
}

function randomChunks(rnd: () => number, input: string): Input[] {
  const asBuffer = rnd() < 0.7;
  const data: Buffer | string = asBuffer ? Buffer.from(input) : input;
  const out: Input[] = [];
  let k = 0;
  const avg = [1, 3, 16, 200][Math.floor(rnd() * 4)]!;
  while (k < data.length) {
    const n = 1 + Math.floor(rnd() * 2 * avg);
    out.push(data.slice(k, k + n));
    k += n;
  }
  return out;
}

describe('differential fuzz', () => {
  it('parses generated valid streams to what an independent oracle expects, however they are cut', () => {
    for (let seed = 1; seed <= 400 * FUZZ; seed++) {
      const { input, expected } = generateStream(seed);
      const rnd = rng(seed * 7919);
      for (const [name, Impl] of IMPLS) {
        assert.deepEqual(events(Impl, input), expected, `${name}, seed ${seed}: ${input}`);
        const chunks = randomChunks(rnd, input);
        assert.deepEqual(events(Impl, chunks), expected, `${name}, seed ${seed}, cut in ${chunks.length}: ${input}`);
      }
    }
  });

  it('all implementations agree on mutated streams, whichever way they are cut', () => {
    const inserts = ['<', '>', '&', ';', "'", '"', '=', '/', '!', '?', ']', ' ', '\u0001', 'a', ':', '#', '-', '\r', '<!--', '<![CDATA[', ']]>', '&#0;', '&x;', '</', '\uD800', '\uFFFE', 'é'];
    const disagreements: string[] = [];
    for (let seed = 1; seed <= 1500 * FUZZ; seed++) {
      const { input } = generateStream(seed);
      const rnd = rng(seed * 104729);
      const at = HEADER.length + Math.floor(rnd() * (input.length - HEADER.length));
      const kind = rnd();
      const mutated = kind < 0.4 ? input.slice(0, at) + inserts[Math.floor(rnd() * inserts.length)] + input.slice(at)
        : kind < 0.7 ? input.slice(0, at) + input.slice(at + 1)
          : input.slice(0, at) + inserts[Math.floor(rnd() * inserts.length)] + input.slice(at + 1);
      const results = IMPLS.map(([, Impl]) => events(Impl, mutated));
      for (let k = 1; k < results.length; k++) {
        if (JSON.stringify(results[k]) !== JSON.stringify(results[0])) disagreements.push(`seed ${seed}: ${IMPLS[0]![0]} ${JSON.stringify(results[0]!.slice(-2))} vs ${IMPLS[k]![0]} ${JSON.stringify(results[k]!.slice(-2))} on ${JSON.stringify(mutated)}`);
      }
      // Each implementation gives the same answer however the input is cut (lone surrogates only make sense in strings).
      if (!/[\uD800-\uDFFF]/.test(mutated.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) {
        for (const [name, Impl] of IMPLS) {
          const chunks = randomChunks(rnd, mutated);
          assert.deepEqual(events(Impl, chunks), events(Impl, mutated), `${name}, seed ${seed} cut in ${chunks.length}: ${JSON.stringify(mutated)}`);
        }
      }
    }
    assert.deepEqual(disagreements, []);
  });

  it('all implementations agree under tight limits, with mutations anywhere, the header included', () => {
    const inserts = ['<', '>', '&', "'", '/', '!', '?', ']', ' ', '\u0001', 'a', ':', '<a>', '</a>', '<!DOCTYPE x>', '<?x?>', '&#x10FFFF;'];
    const disagreements: string[] = [];
    for (let seed = 1; seed <= 1000 * FUZZ; seed++) {
      let { input } = generateStream(seed + 1_000_000);
      const rnd = rng(seed * 15485863);
      const mutations = Math.floor(rnd() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(rnd() * input.length);
        input = rnd() < 0.5 ? input.slice(0, at) + inserts[Math.floor(rnd() * inserts.length)] + input.slice(at) : input.slice(0, at) + input.slice(at + 1);
      }
      const limits: ParserLimits = { maxStanzaSize: 40 + Math.floor(rnd() * 400), maxDepth: 1 + Math.floor(rnd() * 5) };
      const chunks = randomChunks(rnd, input);
      const results = IMPLS.map(([, Impl]) => events(Impl, chunks, limits));
      for (let k = 1; k < results.length; k++) {
        if (JSON.stringify(results[k]) !== JSON.stringify(results[0])) disagreements.push(`seed ${seed} ${JSON.stringify(limits)} cuts ${JSON.stringify(chunks.map((c) => c.length))} ${typeof chunks[0]}: ${IMPLS[0]![0]} ${JSON.stringify(results[0]!.slice(-2))} vs ${IMPLS[k]![0]} ${JSON.stringify(results[k]!.slice(-2))} on ${JSON.stringify(input)}`);
      }
    }
    if (disagreements.length && process.env.PARSER_FUZZ_DUMP) writeFileSync(process.env.PARSER_FUZZ_DUMP, disagreements.join('\n'));
    assert.deepEqual(disagreements, []);
  });
});
