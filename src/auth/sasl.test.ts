import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Credentials } from '../storage/types.js';
import { deriveCredentials, deriveScramKeys } from './credentials.js';
import { createScramServerWithNonce, mechanismFactories, type ChannelBinding, type SaslContext, type SaslMechanism, type SaslStep } from './sasl.js';
import { scramClient, type ScramClientOptions } from '../../test/support/scram-client.js';

// Independent client implementations from npm. They ship no types: these are the parts of their
// API the tests use.
interface ClientCredentials {
  username: string;
  password: string;
  authzid?: string;
}
interface ClientMechanism {
  response(credentials: ClientCredentials): string | Promise<string>;
  challenge(data: string): void;
}
interface ClientFactory {
  use(mechanism: unknown): void;
  create(names: string[]): ClientMechanism | null;
}
const require = createRequire(import.meta.url);
const SaslFactory = require('saslmechanisms') as new () => ClientFactory;
const ScramSha1Client: unknown = require('sasl-scram-sha-1');
const PlainClient: unknown = require('sasl-plain');

function clientMechanism(name: string, client: unknown): ClientMechanism {
  const factory = new SaslFactory();
  factory.use(client);
  const mechanism = factory.create([name]);
  assert.ok(mechanism);
  return mechanism;
}

const DOMAIN = 'example.com';
const PASSWORD = 'pencil';
const TLS_EXPORTER: ChannelBinding = { type: 'tls-exporter', data: randomBytes(32) };
const TLS_SERVER_END_POINT: ChannelBinding = { type: 'tls-server-end-point', data: randomBytes(32) };

const accounts = new Map<string, Credentials>([
  ['alice', deriveCredentials(PASSWORD)],
  ['a,b=c', deriveCredentials(PASSWORD)],
]);

function context(channelBindings: ChannelBinding[] = [], users: Map<string, Credentials> = accounts): SaslContext {
  return { domain: DOMAIN, secure: channelBindings.length > 0, channelBindings, lookup: async (username) => users.get(username) };
}

function mechanism(name: string, ctx: SaslContext = context()): SaslMechanism {
  const factory = mechanismFactories.find((f) => f.name === name);
  assert.ok(factory, `no factory for ${name}`);
  return factory.create(ctx);
}

function challenge(step: SaslStep): string {
  assert.equal(step.kind, 'challenge', `expected a challenge, got ${JSON.stringify(step)}`);
  return step.kind === 'challenge' ? step.data.toString() : '';
}

function assertFailure(step: SaslStep, condition: string): void {
  assert.equal(step.kind, 'failure', `expected ${condition}, got ${JSON.stringify(step)}`);
  assert.equal(step.kind === 'failure' && step.condition, condition);
}

// The independent SCRAM client lives in test/support/scram-client.ts (the end-to-end tests use it too).

/** Runs a whole exchange with the independent client and returns the server's last step. */
async function scramExchange(name: string, ctx: SaslContext, username: string, password: string, options: ScramClientOptions = {}): Promise<{ step: SaslStep; serverFinal: string }> {
  const client = scramClient(name.startsWith('SCRAM-SHA-256') ? 'sha256' : 'sha1', username, password, options);
  const server = mechanism(name, ctx);
  const serverFirst = challenge(await server.step(client.first()));
  const step = await server.step(client.final(serverFirst));
  return { step, serverFinal: client.serverFinal() };
}

describe('SCRAM: published test vectors', () => {
  const vectors = [
    {
      mechanism: 'SCRAM-SHA-1',
      salt: 'QSXCR+Q6sek8bf92',
      serverNonce: '3rfcNHYJY1ZVvWVs7j',
      clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
      serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
      clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
      serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
      rfc: 'RFC 5802 section 5',
    },
    {
      mechanism: 'SCRAM-SHA-256',
      salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
      serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
      clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
      serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
      rfc: 'RFC 7677 section 3',
    },
  ] as const;

  for (const v of vectors) {
    const credentials = deriveCredentials(PASSWORD);
    credentials[v.mechanism] = deriveScramKeys(v.mechanism, PASSWORD, Buffer.from(v.salt, 'base64'), 4096);
    const ctx = context([], new Map([['user', credentials]]));

    it(`replays the ${v.mechanism} exchange of ${v.rfc}`, async () => {
      const server = createScramServerWithNonce(ctx, v.mechanism, false, v.serverNonce);
      assert.equal(challenge(await server.step(Buffer.from(v.clientFirst))), v.serverFirst);
      const step = await server.step(Buffer.from(v.clientFinal));
      assert.equal(step.kind, 'success');
      assert.equal(step.kind === 'success' && step.username, 'user');
      assert.equal(step.kind === 'success' && step.additionalData?.toString(), v.serverFinal);
    });

    it(`replays the ${v.mechanism} exchange after an empty challenge (no initial response)`, async () => {
      const server = createScramServerWithNonce(ctx, v.mechanism, false, v.serverNonce);
      assert.equal(challenge(await server.step(undefined)), '');
      assert.equal(challenge(await server.step(Buffer.from(v.clientFirst))), v.serverFirst);
      assert.equal((await server.step(Buffer.from(v.clientFinal))).kind, 'success');
    });

    it(`fails the ${v.mechanism} exchange when the proof is altered`, async () => {
      const server = createScramServerWithNonce(ctx, v.mechanism, false, v.serverNonce);
      challenge(await server.step(Buffer.from(v.clientFirst)));
      const altered = v.clientFinal.replace(/p=./, (p) => (p === 'p=A' ? 'p=B' : 'p=A'));
      assertFailure(await server.step(Buffer.from(altered)), 'not-authorized');
    });
  }
});

describe('mechanismFactories', () => {
  it('lists every mechanism, strongest first, flagging the channel-binding ones', () => {
    assert.deepEqual(
      mechanismFactories.map((f) => [f.name, f.plus]),
      [['SCRAM-SHA-256-PLUS', true], ['SCRAM-SHA-1-PLUS', true], ['SCRAM-SHA-256', false], ['SCRAM-SHA-1', false], ['PLAIN', false], ['ANONYMOUS', false]],
    );
  });

  it('gives every exchange a fresh random server nonce', async () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const serverFirst = challenge(await mechanism('SCRAM-SHA-256').step(Buffer.from('n,,n=alice,r=client')));
      nonces.add(serverFirst.split(',')[0]!);
    }
    assert.equal(nonces.size, 3);
  });
});

describe('SCRAM-SHA-1 with the sasl-scram-sha-1 client', () => {
  async function authenticate(credentials: ClientCredentials): Promise<SaslStep> {
    const client = clientMechanism('SCRAM-SHA-1', ScramSha1Client);
    const server = mechanism('SCRAM-SHA-1');
    const serverFirst = challenge(await server.step(Buffer.from(await client.response(credentials))));
    client.challenge(serverFirst);
    return server.step(Buffer.from(await client.response(credentials)));
  }

  it('authenticates', async () => {
    const step = await authenticate({ username: 'alice', password: PASSWORD });
    assert.equal(step.kind, 'success');
    assert.equal(step.kind === 'success' && step.username, 'alice');
    assert.match(step.kind === 'success' ? step.additionalData!.toString() : '', /^v=[A-Za-z0-9+/]{27}=$/);
  });

  it('normalises the username', async () => {
    const step = await authenticate({ username: 'ALICE', password: PASSWORD });
    assert.equal(step.kind === 'success' && step.username, 'alice');
  });

  it('unescapes "=2C" and "=3D" in the username', async () => {
    const step = await authenticate({ username: 'a,b=c', password: PASSWORD });
    assert.equal(step.kind === 'success' && step.username, 'a,b=c');
  });

  it('accepts the user\'s own bare JID as authzid', async () => {
    const step = await authenticate({ username: 'alice', password: PASSWORD, authzid: 'Alice@Example.com' });
    assert.equal(step.kind === 'success' && step.username, 'alice');
  });

  it('rejects a wrong password', async () => {
    assertFailure(await authenticate({ username: 'alice', password: 'pencil2' }), 'not-authorized');
  });
});

describe('SCRAM with a client written from the RFC', () => {
  for (const name of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) {
    it(`${name} authenticates, and the server proves it knows the ServerKey`, async () => {
      const { step, serverFinal } = await scramExchange(name, context(), 'alice', PASSWORD);
      assert.equal(step.kind, 'success');
      assert.equal(step.kind === 'success' && step.username, 'alice');
      assert.equal(step.kind === 'success' && step.additionalData?.toString(), serverFinal);
    });

    it(`${name} accepts 'y' when the connection has no channel binding`, async () => {
      const { step } = await scramExchange(name, context(), 'alice', PASSWORD, { flag: 'y' });
      assert.equal(step.kind, 'success');
    });

    it(`${name} accepts 'n' on a connection with channel binding (the client does not support it)`, async () => {
      const { step } = await scramExchange(name, context([TLS_EXPORTER]), 'alice', PASSWORD);
      assert.equal(step.kind, 'success');
    });
  }

  for (const name of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS']) {
    for (const binding of [TLS_EXPORTER, TLS_SERVER_END_POINT]) {
      it(`${name} authenticates with ${binding.type}`, async () => {
        const ctx = context([TLS_EXPORTER, TLS_SERVER_END_POINT]);
        const { step, serverFinal } = await scramExchange(name, ctx, 'alice', PASSWORD, { flag: `p=${binding.type}`, bindingData: binding.data });
        assert.equal(step.kind, 'success');
        assert.equal(step.kind === 'success' && step.additionalData?.toString(), serverFinal);
      });
    }

    it(`${name} fails when the client sees other channel binding data (a man in the middle)`, async () => {
      const { step } = await scramExchange(name, context([TLS_EXPORTER]), 'alice', PASSWORD, { flag: 'p=tls-exporter', bindingData: randomBytes(32) });
      assertFailure(step, 'not-authorized');
    });

    it(`${name} fails when the client sends the binding data of another type`, async () => {
      const ctx = context([TLS_EXPORTER, TLS_SERVER_END_POINT]);
      const { step } = await scramExchange(name, ctx, 'alice', PASSWORD, { flag: 'p=tls-exporter', bindingData: TLS_SERVER_END_POINT.data });
      assertFailure(step, 'not-authorized');
    });

    it(`${name} fails for a channel binding type the connection does not provide`, async () => {
      for (const flag of ['p=tls-unique', 'p=tls-server-end-point']) {
        const client = scramClient('sha256', 'alice', PASSWORD, { flag });
        assertFailure(await mechanism(name, context([TLS_EXPORTER])).step(client.first()), 'not-authorized');
      }
    });

    it(`${name} requires the client to use channel binding`, async () => {
      for (const flag of ['n', 'y']) {
        const client = scramClient('sha256', 'alice', PASSWORD, { flag });
        assertFailure(await mechanism(name, context([TLS_EXPORTER])).step(client.first()), 'malformed-request');
      }
    });
  }
});

describe('SCRAM failures', () => {
  it('refuses a client that believes the server has no channel binding when it has (downgrade)', async () => {
    for (const name of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) {
      const client = scramClient('sha256', 'alice', PASSWORD, { flag: 'y' });
      assertFailure(await mechanism(name, context([TLS_SERVER_END_POINT])).step(client.first()), 'not-authorized');
    }
  });

  it('refuses channel binding in a mechanism without -PLUS', async () => {
    const client = scramClient('sha256', 'alice', PASSWORD, { flag: 'p=tls-exporter' });
    assertFailure(await mechanism('SCRAM-SHA-256', context([TLS_EXPORTER])).step(client.first()), 'malformed-request');
  });

  it('fails when c= does not repeat the gs2 header', async () => {
    const server = mechanism('SCRAM-SHA-256');
    const serverFirst = challenge(await server.step(Buffer.from('n,,n=alice,r=abc')));
    const nonce = serverFirst.split(',')[0]!;
    // "eSws" is "y,,": the header the client claims to have sent differs from the one it sent.
    assertFailure(await server.step(Buffer.from(`c=eSws,${nonce},p=AAAA`)), 'not-authorized');
  });

  it('rejects a wrong password at the proof', async () => {
    const { step } = await scramExchange('SCRAM-SHA-256', context(), 'alice', 'wrong');
    assertFailure(step, 'not-authorized');
  });

  it('treats an unknown user exactly like a wrong password', async () => {
    const server = mechanism('SCRAM-SHA-256');
    const unknown = scramClient('sha256', 'nobody', PASSWORD);
    const serverFirst = challenge(await server.step(unknown.first()));
    assert.match(serverFirst, /^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
    const step = await server.step(unknown.final(serverFirst));

    const { step: wrongPassword } = await scramExchange('SCRAM-SHA-256', context(), 'alice', 'wrong');
    assert.deepEqual(step, wrongPassword);
  });

  it('gives an unknown user a salt that stays the same, and differs between users and hashes', async () => {
    const salt = async (name: string, username: string) => {
      const serverFirst = challenge(await mechanism(name).step(scramClient('sha256', username, PASSWORD).first()));
      return serverFirst.split(',')[1];
    };
    const first = await salt('SCRAM-SHA-256', 'nobody');
    assert.equal(await salt('SCRAM-SHA-256', 'nobody'), first);
    assert.equal(await salt('SCRAM-SHA-256', 'NoBody'), first);
    assert.notEqual(await salt('SCRAM-SHA-256', 'someone'), first);
    assert.notEqual(await salt('SCRAM-SHA-1', 'nobody'), first);
  });

  it('treats a username no account can have like an unknown user', async () => {
    for (const username of ['al ice', 'alice@example.com', 'al/ice']) {
      const server = mechanism('SCRAM-SHA-256');
      const client = scramClient('sha256', username, PASSWORD);
      const serverFirst = challenge(await server.step(client.first()));
      assertFailure(await server.step(client.final(serverFirst)), 'not-authorized');
    }
  });

  it('rejects an authzid other than the user\'s own bare JID', async () => {
    for (const authzid of ['bob@example.com', 'alice@example.org', 'alice@example.com/phone', 'example.com', 'alice']) {
      const client = scramClient('sha256', 'alice', PASSWORD, { authzid });
      assertFailure(await mechanism('SCRAM-SHA-256').step(client.first()), 'invalid-authzid');
    }
  });

  it('rejects a nonce that differs from the one the server sent', async () => {
    const tamperings = [(nonce: string) => nonce + 'x', (nonce: string) => nonce.slice(0, -1), (nonce: string) => 'x' + nonce.slice(1)];
    for (const tamper of tamperings) {
      const server = mechanism('SCRAM-SHA-256');
      const client = scramClient('sha256', 'alice', PASSWORD);
      const serverFirst = challenge(await server.step(client.first()));
      const nonce = serverFirst.split(',')[0]!.slice(2);
      assertFailure(await server.step(client.final(serverFirst, { nonce: tamper(nonce) })), 'not-authorized');
    }
  });

  const malformedClientFirst: [string, string | Buffer][] = [
    ['an empty message', ''],
    ['no gs2 header', 'n=alice,r=abc'],
    ['an unknown channel binding flag', 'x,,n=alice,r=abc'],
    ['an authzid without a=', 'n,alice@example.com,n=alice,r=abc'],
    ['an empty authzid', 'n,a=,n=alice,r=abc'],
    ['no nonce', 'n,,n=alice'],
    ['attributes out of order', 'n,,r=abc,n=alice'],
    ['an empty username', 'n,,n=,r=abc'],
    ['a bad escape in the username', 'n,,n=al=ice,r=abc'],
    ['a lowercase escape in the username', 'n,,n=a=2cb,r=abc'],
    ['an empty nonce', 'n,,n=alice,r='],
    ['a nonce with a control character', 'n,,n=alice,r=ab\u0001c'],
    ['a nonce with a non-ASCII character', 'n,,n=alice,r=abcé'],
    ['a stray attribute', 'n,,n=alice,r=abc,nonsense'],
    ['a mandatory extension', 'n,,m=ext,n=alice,r=abc'],
    ['a NUL', 'n,,n=alice\u0000,r=abc'],
    ['an invalid channel binding name', 'p=tls exporter,,n=alice,r=abc'],
    ['bytes that are not UTF-8', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])],
  ];
  for (const [what, message] of malformedClientFirst) {
    it(`rejects a client-first message with ${what}`, async () => {
      const name = typeof message === 'string' && message.startsWith('p=') ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
      assertFailure(await mechanism(name, context([TLS_EXPORTER])).step(Buffer.from(message)), 'malformed-request');
    });
  }

  const malformedClientFinal: [string, (nonce: string) => string][] = [
    ['no proof', (nonce) => `c=biws,r=${nonce}`],
    ['no channel binding', (nonce) => `r=${nonce},p=AAAA`],
    ['attributes out of order', (nonce) => `r=${nonce},c=biws,p=AAAA`],
    ['a proof that is not base64', (nonce) => `c=biws,r=${nonce},p=A*A=`],
    ['channel binding that is not base64', (nonce) => `c=bi,r=${nonce},p=AAAA`],
    ['a stray attribute', (nonce) => `c=biws,r=${nonce},junk,p=AAAA`],
    ['an empty message', () => ''],
  ];
  for (const [what, message] of malformedClientFinal) {
    it(`rejects a client-final message with ${what}`, async () => {
      const server = mechanism('SCRAM-SHA-256');
      const nonce = challenge(await server.step(Buffer.from('n,,n=alice,r=abc'))).split(',')[0]!.slice(2);
      assertFailure(await server.step(Buffer.from(message(nonce))), 'malformed-request');
    });
  }

  it('accepts extensions it does not know in both client messages, and signs them', async () => {
    const { step, serverFinal } = await scramExchange('SCRAM-SHA-256', context(), 'alice', PASSWORD, { extension: 'x=future' });
    assert.equal(step.kind === 'success' && step.additionalData?.toString(), serverFinal);
  });

  it('ends the exchange after success or failure', async () => {
    const server = mechanism('SCRAM-SHA-256');
    const client = scramClient('sha256', 'alice', PASSWORD);
    const serverFirst = challenge(await server.step(client.first()));
    const final = client.final(serverFirst);
    assert.equal((await server.step(final)).kind, 'success');
    assertFailure(await server.step(final), 'malformed-request');

    const failed = mechanism('SCRAM-SHA-256');
    assertFailure(await failed.step(Buffer.from('junk')), 'malformed-request');
    assertFailure(await failed.step(client.first()), 'malformed-request');
  });
});

describe('PLAIN', () => {
  function plainResponse(credentials: ClientCredentials): Buffer {
    const response = clientMechanism('PLAIN', PlainClient).response(credentials);
    assert.equal(typeof response, 'string');
    return Buffer.from(response as string);
  }

  it('authenticates with the sasl-plain client', async () => {
    const step = await mechanism('PLAIN').step(plainResponse({ username: 'alice', password: PASSWORD }));
    assert.deepEqual(step, { kind: 'success', username: 'alice' });
  });

  it('normalises the username, and accepts the user\'s own bare JID as authzid', async () => {
    const step = await mechanism('PLAIN').step(plainResponse({ username: 'Alice', password: PASSWORD, authzid: 'alice@example.com' }));
    assert.deepEqual(step, { kind: 'success', username: 'alice' });
  });

  it('sends an empty challenge when the client sent no initial response', async () => {
    const server = mechanism('PLAIN');
    assert.equal(challenge(await server.step(undefined)), '');
    assert.deepEqual(await server.step(plainResponse({ username: 'alice', password: PASSWORD })), { kind: 'success', username: 'alice' });
  });

  it('answers a wrong password, an unknown user and an impossible username the same way', async () => {
    const wrongPassword = await mechanism('PLAIN').step(plainResponse({ username: 'alice', password: 'wrong' }));
    const unknownUser = await mechanism('PLAIN').step(plainResponse({ username: 'nobody', password: PASSWORD }));
    const impossibleUser = await mechanism('PLAIN').step(plainResponse({ username: 'no body', password: PASSWORD }));
    assertFailure(wrongPassword, 'not-authorized');
    assert.deepEqual(unknownUser, wrongPassword);
    assert.deepEqual(impossibleUser, wrongPassword);
  });

  it('checks an unknown user\'s password as slowly as a known one\'s', async () => {
    // The decoy check must derive keys like a real one (thousands of PBKDF2 rounds) rather than
    // return at once, which would be a hundred times faster; the loose bound keeps noise out.
    await mechanism('PLAIN').step(plainResponse({ username: 'nobody', password: PASSWORD })); // derives the decoy once
    const time = async (username: string) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 20; i++) await mechanism('PLAIN').step(plainResponse({ username, password: 'wrong' }));
      return Number(process.hrtime.bigint() - start);
    };
    const known = await time('alice');
    const unknown = await time('nobody');
    assert.ok(unknown > known / 10, `known ${known} ns, unknown ${unknown} ns`);
  });

  it('rejects an authzid other than the user\'s own bare JID', async () => {
    const step = await mechanism('PLAIN').step(plainResponse({ username: 'alice', password: PASSWORD, authzid: 'bob@example.com' }));
    assertFailure(step, 'invalid-authzid');
  });

  const malformed: [string, Buffer][] = [
    ['an empty message', Buffer.alloc(0)],
    ['no NUL', Buffer.from('alicepencil')],
    ['one NUL', Buffer.from('alice\0pencil')],
    ['three NULs', Buffer.from('\0alice\0pencil\0')],
    ['an empty username', Buffer.from('\0\0pencil')],
    ['an empty password', Buffer.from('\0alice\0')],
    ['bytes that are not UTF-8', Buffer.from([0, 0x61, 0, 0xc3, 0x28])],
  ];
  for (const [what, message] of malformed) {
    it(`rejects a message with ${what}`, async () => {
      assertFailure(await mechanism('PLAIN').step(message), 'malformed-request');
    });
  }

  it('ends the exchange after its one message', async () => {
    const server = mechanism('PLAIN');
    await server.step(plainResponse({ username: 'alice', password: PASSWORD }));
    assertFailure(await server.step(plainResponse({ username: 'alice', password: PASSWORD })), 'malformed-request');
  });
});

describe('ANONYMOUS', () => {
  it('succeeds without a username, with or without trace information', async () => {
    assert.deepEqual(await mechanism('ANONYMOUS').step(undefined), { kind: 'success', username: undefined });
    assert.deepEqual(await mechanism('ANONYMOUS').step(Buffer.alloc(0)), { kind: 'success', username: undefined });
    assert.deepEqual(await mechanism('ANONYMOUS').step(Buffer.from('sirhc@example.com')), { kind: 'success', username: undefined });
  });

  it('rejects trace information that is too long or not UTF-8', async () => {
    assertFailure(await mechanism('ANONYMOUS').step(Buffer.from('x'.repeat(256))), 'malformed-request');
    assertFailure(await mechanism('ANONYMOUS').step(Buffer.from([0xff])), 'malformed-request');
  });
});
