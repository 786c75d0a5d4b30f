// Server side of the SASL mechanisms (RFC 4422) that client streams offer: SCRAM-SHA-1 and
// SCRAM-SHA-256 (RFC 5802, RFC 7677) with and without channel binding (RFC 5929
// tls-server-end-point, RFC 9266 tls-exporter), PLAIN (RFC 4616) and ANONYMOUS (RFC 4505).
// Each mechanism is a small state machine fed the client's messages one at a time. Which of them
// a stream offers is the caller's policy; each one still checks everything it is responsible for.
//
// No answer may tell an unknown user from a wrong password: SCRAM answers an unknown user with a
// stable fake salt and fails only at the proof, and PLAIN checks the password against decoy
// credentials, so that both paths do the same work and end with the same failure.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { normaliseLocal, tryParseJid } from '../jid.js';
import type { Credentials, ScramKeys } from '../storage/types.js';
import { deriveCredentials, scramHashes, verifyPasswordAsync, type ScramMechanismName } from './credentials.js';

export type SaslFailure =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string | undefined /* undefined for ANONYMOUS */; additionalData?: Buffer }
  | { kind: 'failure'; condition: SaslFailure; text?: string };

export interface ChannelBinding {
  type: 'tls-exporter' | 'tls-server-end-point';
  data: Buffer;
}

export interface SaslContext {
  domain: string;
  /** TLS is active on this stream. */
  secure: boolean;
  /** Channel bindings the transport can provide (empty on plaintext). */
  channelBindings: ChannelBinding[];
  lookup(username: string): Promise<Credentials | undefined>;
}

export interface SaslMechanism {
  step(response: Buffer | undefined): Promise<SaslStep>;
}

export interface MechanismFactory {
  name: string;
  plus: boolean;
  create(ctx: SaslContext): SaslMechanism;
}

const EMPTY_CHALLENGE: SaslStep = { kind: 'challenge', data: Buffer.alloc(0) };

function failure(condition: SaslFailure, text?: string): SaslStep {
  return { kind: 'failure', condition, text };
}

const EXCHANGE_OVER = failure('malformed-request', 'the authentication exchange is over');

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The message as text, or undefined when it is not UTF-8 or holds a NUL (no mechanism here allows one there). */
function decodeMessage(message: Buffer): string | undefined {
  try {
    const text = utf8.decode(message);
    return text.includes('\0') ? undefined : text;
  } catch {
    return undefined;
  }
}

/** Usernames are JID localparts, compared in their normalised form; undefined when no account can have this name. */
function normaliseUsername(username: string): string | undefined {
  try {
    return normaliseLocal(username) || undefined;
  } catch {
    return undefined;
  }
}

/** A user may only act as themselves: the authzid, when given, must be their own bare JID. */
function authzidAllowed(authzid: string, username: string | undefined, domain: string): boolean {
  const jid = tryParseJid(authzid);
  return username !== undefined && jid !== undefined && jid.isBare() && jid.local === username && jid.domain === domain;
}

// Secret behind the fake SCRAM salts of unknown users: stable for the life of the process, so a
// client asking twice sees the same salt, as it would for an account that exists.
const decoySecret = randomBytes(32);

function decoyBytes(label: string, username: string, length: number): Buffer {
  return createHmac('sha256', decoySecret).update(`${label}\0${username}`).digest().subarray(0, length);
}

function decoyScramKeys(mechanism: ScramMechanismName, username: string): ScramKeys {
  const { length } = scramHashes[mechanism];
  return {
    salt: decoyBytes(`${mechanism} salt`, username, 16).toString('base64'),
    iterations: 4096,
    storedKey: decoyBytes(`${mechanism} stored key`, username, length).toString('base64'),
    serverKey: decoyBytes(`${mechanism} server key`, username, length).toString('base64'),
  };
}

// PLAIN checks the password of an unknown user against these, to take as long as a real check.
let decoyCredentials: Credentials | undefined;

// --- SCRAM (RFC 5802, RFC 7677) -----------------------------------------------------------------

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E (no comma).
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
// attr-val = ALPHA "=" value, value = 1*value-char.
const EXTENSION = /^[A-Za-z]=.+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CHANNEL_BINDING_NAME = /^[A-Za-z0-9.-]+$/;

/** saslname (RFC 5802 section 5.1): ',' and '=' travel as "=2C" and "=3D"; any other '=' is malformed. */
function decodeSaslname(value: string): string | undefined {
  if (value === '' || /=(?!2C|3D)/.test(value)) return undefined;
  return value.replace(/=2C|=3D/g, (escape) => (escape === '=2C' ? ',' : '='));
}

function decodeBase64(value: string): Buffer | undefined {
  return BASE64.test(value) ? Buffer.from(value, 'base64') : undefined;
}

interface ScramExchange {
  /** gs2-header followed by the channel binding data, as the client must echo it in c= (RFC 5802 section 7). */
  channelBindingInput: Buffer;
  nonce: string;
  clientFirstBare: string;
  serverFirst: string;
  /** Normalised username; undefined when the name cannot belong to any account. */
  username: string | undefined;
  /** False for an unknown user: the keys are decoys and the proof must fail. */
  known: boolean;
  storedKey: Buffer;
  serverKey: Buffer;
}

class ScramServer implements SaslMechanism {
  private readonly algorithm: 'sha1' | 'sha256';
  private readonly hashLength: number;
  private state: 'client-first' | ScramExchange | 'over' = 'client-first';

  constructor(
    private readonly ctx: SaslContext,
    private readonly mechanism: ScramMechanismName,
    private readonly plus: boolean,
    private readonly serverNonce: string,
  ) {
    ({ algorithm: this.algorithm, length: this.hashLength } = scramHashes[mechanism]);
  }

  async step(response: Buffer | undefined): Promise<SaslStep> {
    if (this.state === 'over') return EXCHANGE_OVER;
    // RFC 4422 section 5: without an initial response the server sends an empty challenge.
    if (this.state === 'client-first' && response === undefined) return EMPTY_CHALLENGE;
    const text = response === undefined ? undefined : decodeMessage(response);
    const result =
      text === undefined ? failure('malformed-request', 'expected a UTF-8 message')
      : this.state === 'client-first' ? await this.clientFirst(text)
      : this.clientFinal(this.state, text);
    if (result.kind !== 'challenge') this.state = 'over';
    return result;
  }

  private async clientFirst(message: string): Promise<SaslStep> {
    // client-first-message = gs2-header client-first-message-bare, where
    // gs2-header = gs2-cbind-flag "," [authzid] "," (RFC 5802 section 7).
    const [flag, authzidField, ...bare] = message.split(',');
    if (flag === undefined || authzidField === undefined || bare.length < 2) return failure('malformed-request', 'expected a gs2 header, a username and a nonce');

    const binding = this.channelBinding(flag);
    if ('kind' in binding) return binding;

    let authzid: string | undefined;
    if (authzidField !== '') {
      authzid = authzidField.startsWith('a=') ? decodeSaslname(authzidField.slice(2)) : undefined;
      if (authzid === undefined) return failure('malformed-request', 'invalid authzid');
    }

    const [usernameField, nonceField, ...extensions] = bare as [string, string, ...string[]];
    // RFC 5802 section 5.1: a mandatory extension (m=) the server does not know fails the exchange.
    if (usernameField.startsWith('m=')) return failure('malformed-request', 'mandatory extensions are not supported');
    const rawUsername = usernameField.startsWith('n=') ? decodeSaslname(usernameField.slice(2)) : undefined;
    if (rawUsername === undefined) return failure('malformed-request', 'invalid username');
    const clientNonce = nonceField.startsWith('r=') ? nonceField.slice(2) : '';
    if (!PRINTABLE.test(clientNonce)) return failure('malformed-request', 'invalid nonce');
    if (!extensions.every((e) => EXTENSION.test(e))) return failure('malformed-request', 'invalid attribute');

    const username = normaliseUsername(rawUsername);
    if (authzid !== undefined && !authzidAllowed(authzid, username, this.ctx.domain)) return failure('invalid-authzid');

    const credentials = username === undefined ? undefined : await this.ctx.lookup(username);
    const keys = credentials?.[this.mechanism] ?? decoyScramKeys(this.mechanism, username ?? rawUsername);
    const nonce = clientNonce + this.serverNonce;
    const serverFirst = `r=${nonce},s=${keys.salt},i=${keys.iterations}`;
    const gs2Header = `${flag},${authzidField},`;
    this.state = {
      channelBindingInput: Buffer.concat([Buffer.from(gs2Header), binding.data]),
      nonce,
      clientFirstBare: bare.join(','),
      serverFirst,
      username,
      known: credentials !== undefined,
      storedKey: Buffer.from(keys.storedKey, 'base64'),
      serverKey: Buffer.from(keys.serverKey, 'base64'),
    };
    return { kind: 'challenge', data: Buffer.from(serverFirst) };
  }

  /** The channel binding data the client must prove it sees, from its gs2-cbind-flag (RFC 5802 section 6); a failure otherwise. */
  private channelBinding(flag: string): { data: Buffer } | SaslStep {
    if (flag.startsWith('p=')) {
      if (!this.plus) return failure('malformed-request', `${this.mechanism} has no channel binding; use ${this.mechanism}-PLUS`);
      const type = flag.slice(2);
      if (!CHANNEL_BINDING_NAME.test(type)) return failure('malformed-request', 'invalid channel binding type');
      const binding = this.ctx.channelBindings.find((b) => b.type === type);
      if (!binding) return failure('not-authorized', `channel binding type ${type} is not available on this connection`);
      return { data: binding.data };
    }
    if (this.plus) return failure('malformed-request', `${this.mechanism}-PLUS requires channel binding (p=)`);
    // 'y': the client supports channel binding but believes the server does not. When this
    // stream has bindings, the server offered -PLUS, so someone removed it in transit.
    if (flag === 'y') {
      if (this.ctx.channelBindings.length > 0) return failure('not-authorized', 'channel binding was offered: the mechanism list was tampered with');
      return { data: Buffer.alloc(0) };
    }
    if (flag === 'n') return { data: Buffer.alloc(0) };
    return failure('malformed-request', 'invalid gs2 channel binding flag');
  }

  private clientFinal(exchange: ScramExchange, message: string): SaslStep {
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof (RFC 5802 section 7).
    const attributes = message.split(',');
    const proofField = attributes[attributes.length - 1]!;
    const [bindingField, nonceField, ...extensions] = attributes.slice(0, -1);
    if (bindingField === undefined || nonceField === undefined) return failure('malformed-request', 'expected channel binding, nonce and proof');
    const channelBindingInput = bindingField.startsWith('c=') ? decodeBase64(bindingField.slice(2)) : undefined;
    const proof = proofField.startsWith('p=') ? decodeBase64(proofField.slice(2)) : undefined;
    if (channelBindingInput === undefined || proof === undefined || !nonceField.startsWith('r=') || !extensions.every((e) => EXTENSION.test(e))) {
      return failure('malformed-request', 'invalid client-final message');
    }
    if (nonceField.slice(2) !== exchange.nonce) return failure('not-authorized', 'the nonce does not match');
    if (channelBindingInput.length !== exchange.channelBindingInput.length || !timingSafeEqual(channelBindingInput, exchange.channelBindingInput)) {
      return failure('not-authorized', 'the channel binding does not match');
    }

    // RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); it is
    // genuine when H(ClientKey) = StoredKey.
    const withoutProof = message.slice(0, message.length - proofField.length - 1);
    const authMessage = `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
    const clientSignature = createHmac(this.algorithm, exchange.storedKey).update(authMessage).digest();
    const clientKey = Buffer.alloc(this.hashLength);
    for (let i = 0; i < this.hashLength; i++) clientKey[i] = (proof[i] ?? 0) ^ clientSignature[i]!;
    const storedKey = createHash(this.algorithm).update(clientKey).digest();
    const proven = proof.length === this.hashLength && storedKey.length === exchange.storedKey.length && timingSafeEqual(storedKey, exchange.storedKey);
    if (!proven || !exchange.known) return failure('not-authorized');

    // server-final-message (RFC 5802 section 7), sent as the additional data of <success/> (RFC 6120 section 6.3.10).
    const serverSignature = createHmac(this.algorithm, exchange.serverKey).update(authMessage).digest();
    return { kind: 'success', username: exchange.username, additionalData: Buffer.from(`v=${serverSignature.toString('base64')}`) };
  }
}

/**
 * A SCRAM server with a fixed server nonce, so tests can replay the published exchanges of
 * RFC 5802 section 5 and RFC 7677 section 3. Streams use mechanismFactories, whose nonces are random.
 */
export function createScramServerWithNonce(ctx: SaslContext, mechanism: ScramMechanismName, plus: boolean, serverNonce: string): SaslMechanism {
  return new ScramServer(ctx, mechanism, plus, serverNonce);
}

function scramFactory(mechanism: ScramMechanismName, plus: boolean): MechanismFactory {
  return {
    name: plus ? `${mechanism}-PLUS` : mechanism,
    plus,
    // 18 random bytes make 24 base64 characters, all printable and none a comma.
    create: (ctx) => new ScramServer(ctx, mechanism, plus, randomBytes(18).toString('base64')),
  };
}

// --- PLAIN (RFC 4616) -------------------------------------------------------------------------------

class PlainServer implements SaslMechanism {
  private over = false;

  constructor(private readonly ctx: SaslContext) {}

  async step(response: Buffer | undefined): Promise<SaslStep> {
    if (this.over) return EXCHANGE_OVER;
    // RFC 4422 section 5: without an initial response the server sends an empty challenge.
    if (response === undefined) return EMPTY_CHALLENGE;
    this.over = true;
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 section 2).
    const fields = decodeMessageWithNuls(response);
    if (fields?.length !== 3 || fields[1] === '' || fields[2] === '') return failure('malformed-request', 'expected authzid, username and password separated by NUL');
    const [authzid, authcid, password] = fields as [string, string, string];
    const username = normaliseUsername(authcid);
    if (authzid !== '' && !authzidAllowed(authzid, username, this.ctx.domain)) return failure('invalid-authzid');
    const credentials = username === undefined ? undefined : await this.ctx.lookup(username);
    const passwordMatches = await verifyPasswordAsync(credentials ?? (decoyCredentials ??= deriveCredentials(randomBytes(16).toString('hex'))), password);
    if (!passwordMatches || credentials === undefined) return failure('not-authorized');
    return { kind: 'success', username };
  }
}

/** The NUL-separated fields of a UTF-8 message, or undefined when it is not UTF-8. */
function decodeMessageWithNuls(message: Buffer): string[] | undefined {
  const fields: string[] = [];
  for (let start = 0; ; ) {
    const nul = message.indexOf(0, start);
    const field = decodeMessage(message.subarray(start, nul < 0 ? message.length : nul));
    if (field === undefined) return undefined;
    fields.push(field);
    if (nul < 0) return fields;
    start = nul + 1;
  }
}

// --- ANONYMOUS (RFC 4505) ---------------------------------------------------------------------------

// RFC 4505 section 3: the optional trace information is at most 255 characters.
const MAX_TRACE_LENGTH = 255;

class AnonymousServer implements SaslMechanism {
  private over = false;

  async step(response: Buffer | undefined): Promise<SaslStep> {
    if (this.over) return EXCHANGE_OVER;
    this.over = true;
    // The single client message is optional trace information, so a bare <auth/> succeeds at
    // once instead of being asked for an initial response.
    if (response !== undefined) {
      const trace = decodeMessage(response);
      if (trace === undefined || [...trace].length > MAX_TRACE_LENGTH) return failure('malformed-request', 'invalid trace information');
    }
    return { kind: 'success', username: undefined };
  }
}

/** Every mechanism, strongest first: the order a stream offers them in. */
export const mechanismFactories: MechanismFactory[] = [
  scramFactory('SCRAM-SHA-256', true),
  scramFactory('SCRAM-SHA-1', true),
  scramFactory('SCRAM-SHA-256', false),
  scramFactory('SCRAM-SHA-1', false),
  { name: 'PLAIN', plus: false, create: (ctx) => new PlainServer(ctx) },
  { name: 'ANONYMOUS', plus: false, create: () => new AnonymousServer() },
];
