// Client connections over TCP (RFC 6120): a plain port with STARTTLS, and a direct TLS port
// (XEP-0368). Each connection is a ClientStream fed with the socket's bytes.
import { createHash } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket, createServer as createTlsServer } from 'node:tls';
import { ClientStream, NS_CLIENT, type StreamTransport } from '../core/stream.js';
import { NS_STREAMS, type StreamError } from '../core/errors.js';
import { createStreamParser, type StreamParser } from '../xml/parser.js';
import { openTag, type Element } from '../xml/element.js';
import type { Server } from '../core/server.js';
import type { ChannelBinding } from '../auth/sasl.js';
import type { CertificateStore } from './certificates.js';
import type { IoLog } from '../core/log.js';

export interface Listener {
  address(): { name: string; host: string; port: number };
  stopAccepting(): void;
  close(): Promise<void>;
}

/** RFC 6120 framing: one long XML document per direction, restarted after STARTTLS and SASL. */
class TcpTransport implements StreamTransport {
  readonly kind = 'tcp';
  private stream!: ClientStream;
  private parser!: StreamParser;
  private socket: Socket;
  private corked = false;

  constructor(socket: Socket, private readonly certificates: CertificateStore, readonly remoteAddress: string, private readonly io: IoLog | undefined) {
    this.socket = socket;
  }

  pendingOutput(): number {
    return this.socket.writableLength;
  }

  get secure(): boolean {
    return this.socket instanceof TLSSocket && this.socket.encrypted;
  }

  get canStartTls(): boolean {
    return !this.secure;
  }

  attach(stream: ClientStream): void {
    this.stream = stream;
    this.restartStream();
    this.listen(this.socket);
  }

  private listen(socket: Socket): void {
    const io = this.io;
    socket.on('data', io
      ? (chunk: Buffer) => { io(this.stream.id, 'in', chunk); this.stream.received(chunk.length); this.parser.write(chunk); }
      : (chunk: Buffer) => { this.stream.received(chunk.length); this.parser.write(chunk); });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.stream.transportClosed());
  }

  restartStream(): void {
    const stream = this.stream;
    this.parser = createStreamParser({
      streamStart: (h) => stream.streamStart(h),
      stanza: (el) => stream.stanza(el),
      streamEnd: () => stream.streamEnd(),
      error: (condition, text) => stream.parseError(condition, text),
    }, stream.limits);
  }

  sendHeader(attrs: Record<string, string>): void {
    this.write("<?xml version='1.0'?>" + openTag('stream:stream', { xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAMS, ...attrs }));
  }

  sendElement(el: Element): void {
    this.write(el.toString());
  }

  /** RFC 6120 4.6.1: whitespace between top-level elements keeps the connection alive. */
  keepalive(): void {
    this.write(' ');
  }

  end(error?: StreamError): void {
    this.write((error ? error.toElement().toString() : '') + '</stream:stream>');
    this.socket.end();
    // A peer that never reads must not keep the socket open forever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  // Writes made in one tick (a broadcast, a pipelined burst of replies) leave in one segment.
  private write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (this.io) this.io(this.stream.id, 'out', data);
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(data);
  }

  startTls(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    this.restartStream();
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.certificates.defaultContext,
      SNICallback: (name, cb) => cb(null, this.certificates.contextFor(name)),
    });
    this.socket = tls;
    return new Promise((resolve, reject) => {
      tls.once('secure', () => { this.listen(tls); resolve(); });
      tls.once('error', (e) => { raw.destroy(); reject(e); });
    });
  }

  channelBindings(): ChannelBinding[] {
    const s = this.socket;
    if (!(s instanceof TLSSocket) || !s.encrypted) return [];
    const out: ChannelBinding[] = [];
    // RFC 9266: tls-exporter is only defined for TLS 1.3.
    if (s.getProtocol() === 'TLSv1.3') out.push({ type: 'tls-exporter', data: s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)) });
    const cert = s.getCertificate();
    // RFC 5929 4.1: hash of our certificate with its signature hash (SHA-256 for ours; SHA-1 and MD5 map to SHA-256).
    if (cert && 'raw' in cert && cert.raw) out.push({ type: 'tls-server-end-point', data: createHash('sha256').update(cert.raw).digest() });
    return out;
  }
}

function accept(server: Server, socket: Socket): void {
  socket.setNoDelay(true);
  const address = socket.remoteAddress ?? 'unknown';
  if (!server.admission.tryAcquire(address)) {
    const refusal = server.admission.refusal(address);
    server.log.warn({ ip: address, refusal }, 'connection refused');
    socket.end(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>` +
      `<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>${refusal}</text></stream:error></stream:stream>`);
    setTimeout(() => socket.destroy(), 2000).unref();
    return;
  }
  const transport = new TcpTransport(socket, server.certificates, address, server.ioLog);
  const stream = new ClientStream(server, transport);
  server.watchdogs.c2s.watch(stream);
  transport.attach(stream);
}

function listen(name: string, net: NetServer, host: string, port: number): Promise<Listener> {
  const sockets = new Set<Socket>();
  net.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve, reject) => {
    net.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`${name}: cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
    net.listen(port, host, () => {
      const a = net.address();
      const actualPort = typeof a === 'object' && a ? a.port : port;
      resolve({
        address: () => ({ name, host, port: actualPort }),
        stopAccepting: () => { net.close(); },
        close: () => new Promise<void>((done) => {
          net.close(() => done());
          // Streams were asked to close; whatever is left after a grace period is cut.
          setTimeout(() => { for (const s of sockets) s.destroy(); }, 500).unref();
          if (sockets.size === 0) done();
        }),
      });
    });
  });
}

export async function listenC2S(server: Server): Promise<Listener[]> {
  const { host, port, 'tls-port': tlsPort } = server.config.c2s;
  const out: Listener[] = [];
  try {
    if (port !== 0) out.push(await listen('c2s', createServer((s) => accept(server, s)), host, port));
    if (tlsPort !== 0) {
      const tlsServer = createTlsServer({
        secureContext: server.certificates.defaultContext,
        SNICallback: (name, cb) => cb(null, server.certificates.contextFor(name)),
      }, (s) => accept(server, s));
      out.push(await listen('c2s-tls', tlsServer, host, tlsPort));
    }
  } catch (e) {
    await Promise.all(out.map((l) => l.close()));
    throw e;
  }
  return out;
}
