// XMPP over WebSocket (RFC 7395): subprotocol `xmpp`, `<open/>` and `<close/>` framing, one
// complete, fully namespaced element per message. The stream logic is ClientStream's, as
// over TCP, with the same parser limits and stream errors.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { ClientStream, NS_CLIENT, type StreamTransport } from '../core/stream.js';
import { NS_STREAMS, StreamError } from '../core/errors.js';
import { createStreamParser, type StreamParser } from '../xml/parser.js';
import { Element } from '../xml/element.js';
import type { Server } from '../core/server.js';
import type { ChannelBinding } from '../auth/sasl.js';
import type { UpgradeHandler } from '../http/server.js';
import type { IoLog } from '../core/log.js';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
/** Path of the WebSocket endpoint on the shared HTTP listeners (any path on the dedicated ports). */
export const WEBSOCKET_PATH = '/xmpp-websocket';

// Messages are fed to one long-lived stream parser inside a synthetic root whose default
// namespace is jabber:client, so a message is parsed exactly like a stanza on a TCP stream
// (same limits, restricted XML, namespace normalisation), and its top-level element comes out
// as one stanza. The root's name cannot collide with anything a client sends in framing.
const SYNTHETIC_ROOT = `<switchboard-ws-root xmlns='${NS_CLIENT}'>`;

class WebSocketTransport implements StreamTransport {
  readonly kind = 'websocket';
  private stream!: ClientStream;
  private parser!: StreamParser;
  /** After connecting and after a restart, the next element must be `<open/>`. */
  private expectOpen = true;
  private elementsInMessage = 0;
  private ended = false;
  private corked = false;

  constructor(private readonly ws: WebSocket, readonly remoteAddress: string, readonly secure: boolean, private readonly io: IoLog | undefined) {}

  pendingOutput(): number {
    return this.ws.bufferedAmount;
  }

  readonly canStartTls = false; // RFC 7395 3.8: TLS is the WebSocket layer's (wss:)

  attach(stream: ClientStream): void {
    this.stream = stream;
    this.parser = createStreamParser({
      streamStart: () => {},
      stanza: (el) => this.element(el),
      streamEnd: () => this.stream.parseError('not-well-formed', 'unexpected close tag'),
      error: (condition, text) => this.stream.parseError(condition, text),
    }, stream.limits);
    this.parser.write(SYNTHETIC_ROOT);
    this.ws.on('message', (data: RawData, isBinary: boolean) => this.message(data, isBinary));
    this.ws.on('pong', () => this.stream.received(0));
    this.ws.on('close', () => this.stream.transportClosed());
    this.ws.on('error', () => this.ws.terminate());
  }

  private message(data: RawData, isBinary: boolean): void {
    if (this.parser.failed || this.ended) return;
    // RFC 7395 3.2: text frames only (UTF-8 is checked by the parser as it is for TCP).
    if (isBinary) return this.stream.parseError('not-well-formed', 'XMPP over WebSocket uses text messages');
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.stream.received(buf.length);
    if (this.io) this.io(this.stream.id, 'in', buf);
    this.elementsInMessage = 0;
    this.parser.write(buf);
    if (this.parser.failed || this.ended) return;
    // RFC 7395 3.3.3: every message is one complete element; whitespace-only keepalives are tolerated.
    if (this.elementsInMessage === 0 && /[^ \t\r\n]/.test(buf.toString('utf8'))) {
      this.stream.parseError('not-well-formed', 'a WebSocket message must contain one complete XML element');
    }
  }

  private element(el: Element): void {
    this.elementsInMessage++;
    const ns = el.attrs.xmlns;
    if (el.name === 'open' && ns === NS_FRAMING) {
      if (!this.expectOpen) return this.stream.parseError('not-well-formed', 'the stream is already open');
      this.expectOpen = false;
      const attrs = { ...el.attrs };
      delete attrs.xmlns;
      // ClientStream checks the header as it would check <stream:stream> in jabber:client.
      this.stream.streamStart({ local: 'stream', uri: NS_STREAMS, prefix: 'stream', defaultNS: NS_CLIENT, attrs });
      return;
    }
    if (el.name === 'close' && ns === NS_FRAMING) return this.stream.streamEnd();
    if (this.expectOpen) return this.stream.parseError('not-well-formed', 'the stream starts with <open/>');
    this.stream.stanza(el);
  }

  sendHeader(attrs: Record<string, string>): void {
    this.send(new Element('open', { xmlns: NS_FRAMING, ...attrs }).toString());
  }

  sendElement(el: Element): void {
    this.send(qualified(el).toString());
  }

  restartStream(): void {
    this.expectOpen = true;
  }

  /** No whitespace between messages over WebSocket (RFC 7395): the keepalive is a ping frame, which browsers answer with a pong. */
  keepalive(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not available over WebSocket'));
  }

  channelBindings(): ChannelBinding[] {
    return [];
  }

  end(error?: StreamError): void {
    if (this.ended) return;
    this.ended = true;
    if (error) this.send(qualified(error.toElement()).toString());
    this.send(new Element('close', { xmlns: NS_FRAMING }).toString());
    this.ws.close(1000);
    // A peer that never answers the closing handshake must not keep the socket forever.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  // Frames written in one tick (a broadcast, a burst of replies) leave in one TCP segment, as over TCP.
  private send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.io) this.io(this.stream.id, 'out', text);
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket && !this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    this.ws.send(text);
  }
}

/** RFC 7395 3.3.3: every message is namespaced on its own (stanzas in jabber:client, stream: prefixed elements with the prefix declared). */
function qualified(el: Element): Element {
  if (el.name.startsWith('stream:')) return el.attrs['xmlns:stream'] ? el : el.clone({ 'xmlns:stream': NS_STREAMS });
  if (el.attrs.xmlns === undefined) return el.clone({ xmlns: NS_CLIENT });
  return el;
}

function wantsXmpp(req: IncomingMessage): boolean {
  const header = req.headers['sec-websocket-protocol'];
  return typeof header === 'string' && header.split(',').some((p) => p.trim() === 'xmpp');
}

function reject(socket: Duplex, status: string, text: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/**
 * The upgrade handler for XMPP over WebSocket (on a TLS listener the stream is secure).
 * Returns the handler and a function that closes every open WebSocket (server stop).
 */
export function webSocketEndpoint(server: Server): { upgrade: UpgradeHandler; close: () => void } {
  const { 'max-stanza-size': maxStanza } = server.config.c2s;
  const origins = server.config.http['cors-origins'];
  const wss = new WebSocketServer({
    noServer: true,
    // The parser reports oversized stanzas as policy-violation; this only bounds a frame's buffer.
    maxPayload: maxStanza * 4 + 65536,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  const upgrade: UpgradeHandler = (req, socket, head) => {
    if (!wantsXmpp(req)) return reject(socket, '400 Bad Request', 'XMPP over WebSocket needs the "xmpp" subprotocol (RFC 7395)\n');
    const origin = req.headers.origin;
    if (origin && !origins.includes('*') && !origins.includes(origin)) return reject(socket, '403 Forbidden', 'origin not allowed\n');
    const address = req.socket.remoteAddress ?? 'unknown';
    const secure = (req.socket as TLSSocket).encrypted === true;
    wss.handleUpgrade(req, socket, head, (ws) => {
      // The same cap as over TCP, answered the same way: a stream that ends with policy-violation.
      if (!server.admission.tryAcquire(address)) {
        const refusal = server.admission.refusal(address);
        server.log.warn({ ip: address, refusal }, 'connection refused');
        ws.send(new Element('open', { xmlns: NS_FRAMING, from: server.defaultHost, version: '1.0' }).toString());
        ws.send(qualified(new StreamError('policy-violation', refusal).toElement()).toString());
        ws.send(new Element('close', { xmlns: NS_FRAMING }).toString());
        ws.close(1000);
        setTimeout(() => ws.terminate(), 2000).unref();
        return;
      }
      const transport = new WebSocketTransport(ws, address, secure, server.ioLog);
      const stream = new ClientStream(server, transport);
      server.watchdogs.websocket.watch(stream);
      transport.attach(stream);
    });
  };
  return {
    upgrade,
    close: () => {
      // Bound sessions were closed with system-shutdown by the server; the rest are cut.
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
