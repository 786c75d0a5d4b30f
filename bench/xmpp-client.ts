import net from 'node:net';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * A minimal XMPP client for load generation. It has no XML parser: each negotiation step
 * scans the received text for the closing tag it expects, and once logged in only
 * `</message>` is looked for. Good enough for well-behaved servers on loopback, and cheap
 * enough that the generator is not what limits a benchmark.
 */

export interface Account {
  host: string;
  port: number;
  domain: string;
  username: string;
  password: string;
}

/** A received chat message: its body (the sender's timestamp) or undefined when it has none. */
export type MessageHandler = (body: string | undefined) => void;

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const FEATURES = /<\/stream:features>|<stream:features\/>/;
const SASL_REPLY = /<(success|failure|challenge)[^>]*\/>|<\/(success|failure|challenge)>/;
const IQ_REPLY = /<iq[^>]*\/>|<\/iq>/;
const PRESENCE = /<presence[^>]*\/>|<\/presence>/;
const STREAM_ERROR = /<stream:error>\s*<([\w-]+)/;

interface Waiter {
  pattern: RegExp;
  resolve: (text: string) => void;
  reject: (error: Error) => void;
}

export class BenchClient {
  /** Full JID the server bound. */
  jid = '';
  /** Called once if the connection fails after login (stream error, reset, close). */
  onFailure: (error: Error) => void = () => {};

  private received = '';
  private waiter?: Waiter;
  private step = 'connect';
  private failure?: Error;
  private closing = false;
  private messageHandler?: MessageHandler;

  private constructor(
    private readonly socket: net.Socket,
    private readonly account: Account,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => (this.messageHandler ? this.receiveMessages(chunk) : this.receiveNegotiation(chunk)));
    socket.on('error', (error) => this.fail(error.message));
    socket.on('close', () => this.fail('connection closed by the server'));
  }

  private get label(): string {
    return `${this.account.username}@${this.account.domain}`;
  }

  /** Connects, authenticates (PLAIN, else SCRAM-SHA-1), binds and sends initial presence. */
  static async login(account: Account, timeoutMs: number): Promise<BenchClient> {
    const client = new BenchClient(net.connect(account.port, account.host), account);
    const timer = setTimeout(() => client.fail(`timed out after ${timeoutMs / 1000} s waiting for ${client.step}`), timeoutMs);
    try {
      await client.negotiate();
      return client;
    } catch (error) {
      client.socket.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  send(xml: string): void {
    this.socket.write(xml);
  }

  /** From now on, every received `<message>` goes to the handler; replies it sends are written in one batch per read. */
  receiveMessagesWith(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  /** Closes the stream politely, and the socket for good after a short grace period. */
  close(): Promise<void> {
    this.closing = true;
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => this.socket.destroy(), 2000);
      this.socket.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      this.socket.end('</stream:stream>');
    });
  }

  private async negotiate(): Promise<void> {
    const features = await this.openStream('stream features');
    if (features.includes('<mechanism>PLAIN</mechanism>')) await this.authenticatePlain();
    else if (features.includes('<mechanism>SCRAM-SHA-1</mechanism>')) await this.authenticateScramSha1();
    else if (features.includes('<starttls')) throw this.error('the server offers no SASL mechanism before STARTTLS; the benchmark needs plaintext PLAIN or SCRAM-SHA-1 on loopback');
    else throw this.error('the server offers neither PLAIN nor SCRAM-SHA-1');

    const boundFeatures = await this.openStream('stream features after SASL');
    const bound = await this.iq(`<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`, 'resource binding');
    this.jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1] ?? '';
    if (!this.jid) throw this.error('resource binding returned no JID');
    // Legacy servers (RFC 3921) require a session; a <session/> without <optional/> says so.
    if (/<session [^>]*xmpp-session['"]\s*\/>/.test(boundFeatures)) {
      await this.iq(`<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>`, 'session establishment');
    }
    // The server echoes initial presence to the sender's own resource (RFC 6121 4.2.2):
    // waiting for it makes the login end once the server has fully processed the presence.
    this.send('<presence/>');
    await this.expect(PRESENCE, 'the echo of initial presence');
  }

  private openStream(step: string): Promise<string> {
    this.send(`<?xml version='1.0'?><stream:stream to='${this.account.domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    return this.expect(FEATURES, step);
  }

  private async authenticatePlain(): Promise<void> {
    const { username, password } = this.account;
    this.send(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${base64(`\0${username}\0${password}`)}</auth>`);
    this.checkSaslSuccess(await this.expect(SASL_REPLY, 'the SASL PLAIN outcome'));
  }

  private async authenticateScramSha1(): Promise<void> {
    const { username, password } = this.account;
    const clientNonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=${username},r=${clientNonce}`;
    this.send(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-1'>${base64(`n,,${clientFirstBare}`)}</auth>`);
    const challenge = await this.expect(SASL_REPLY, 'the SCRAM-SHA-1 challenge');
    const serverFirst = unbase64(/<challenge[^>]*>([^<]*)<\/challenge>/.exec(challenge)?.[1] ?? '');
    if (!serverFirst) this.checkSaslSuccess(challenge); // a <failure/> instead of a challenge
    const attributes = new Map(serverFirst.split(',').map((part) => [part[0], part.slice(2)]));
    const nonce = attributes.get('r') ?? '';
    if (!nonce.startsWith(clientNonce)) throw this.error('SCRAM-SHA-1: the server nonce does not extend ours');
    const salted = saltedPassword(password, attributes.get('s') ?? '', Number(attributes.get('i')));
    const clientKey = hmac(salted, 'Client Key');
    const clientFinalWithoutProof = `c=biws,r=${nonce}`;
    const signature = hmac(createHash('sha1').update(clientKey).digest(), `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!)).toString('base64');
    this.send(`<response xmlns='${NS_SASL}'>${base64(`${clientFinalWithoutProof},p=${proof}`)}</response>`);
    // The server signature in <success> is not verified: on loopback we trust the target.
    this.checkSaslSuccess(await this.expect(SASL_REPLY, 'the SCRAM-SHA-1 outcome'));
  }

  private checkSaslSuccess(reply: string): void {
    if (reply.includes('<success')) return;
    const condition = /<failure[^>]*>\s*<([\w-]+)/.exec(reply)?.[1] ?? 'no condition';
    throw this.error(`authentication failed (${condition}): does the account exist with this password? See bench/setup-*.sh`);
  }

  private async iq(payload: string, step: string): Promise<string> {
    this.send(`<iq type='set' id='bench'>${payload}</iq>`);
    const reply = await this.expect(IQ_REPLY, step);
    if (!/type=['"]result['"]/.test(reply)) throw this.error(`${step} failed: ${reply.slice(reply.lastIndexOf('<iq'))}`);
    return reply;
  }

  /** Resolves with everything received up to the end of the first match of the pattern. */
  private expect(pattern: RegExp, step: string): Promise<string> {
    this.step = step;
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiter = { pattern, resolve, reject };
      this.settleWaiter();
    });
  }

  private receiveNegotiation(chunk: string): void {
    this.received += chunk;
    const streamError = STREAM_ERROR.exec(this.received);
    if (streamError) this.fail(`stream error <${streamError[1]}/> while waiting for ${this.step}`);
    else this.settleWaiter();
  }

  private settleWaiter(): void {
    const waiter = this.waiter;
    const match = waiter && waiter.pattern.exec(this.received);
    if (!waiter || !match) return;
    const end = match.index + match[0].length;
    const text = this.received.slice(0, end);
    this.received = this.received.slice(end);
    this.waiter = undefined;
    waiter.resolve(text);
  }

  // The hot path of the messaging scenario: indexOf scans only, one socket write per read.
  private receiveMessages(chunk: string): void {
    const text = this.received + chunk;
    let position = 0;
    this.socket.cork();
    for (let end = text.indexOf('</message>', position); end >= 0; end = text.indexOf('</message>', position)) {
      const start = text.lastIndexOf('<message', end);
      const openingTag = text.slice(start, text.indexOf('>', start));
      if (openingTag.includes(`type='error'`) || openingTag.includes('type="error"')) {
        this.fail(`a message bounced: ${text.slice(start, end + 10)}`);
        return;
      }
      const bodyStart = text.lastIndexOf('<body>', end);
      this.messageHandler!(bodyStart > start ? text.slice(bodyStart + 6, text.indexOf('</body>', bodyStart)) : undefined);
      position = end + 10;
    }
    this.socket.uncork();
    this.received = text.slice(position);
    if (this.received.includes('<stream:error') || this.received.includes('</stream:stream>')) {
      this.fail(`the server ended the stream: ${this.received.slice(0, 300)}`);
    }
  }

  private error(message: string): Error {
    return new Error(`${this.label}: ${message}`);
  }

  private fail(reason: string): void {
    if (this.failure || this.closing) return;
    const error = (this.failure = this.error(reason));
    this.socket.destroy();
    if (this.waiter) this.waiter.reject(error);
    else this.onFailure(error);
  }
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

function unbase64(text: string): string {
  return Buffer.from(text, 'base64').toString();
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha1', key).update(text).digest();
}

// PBKDF2 is the costly part of SCRAM; accounts keep their salt, so compute it once per account.
const saltedPasswords = new Map<string, Buffer>();

function saltedPassword(password: string, salt: string, iterations: number): Buffer {
  const key = `${password}\0${salt}\0${iterations}`;
  let salted = saltedPasswords.get(key);
  if (!salted) {
    salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 20, 'sha1');
    saltedPasswords.set(key, salted);
  }
  return salted;
}
