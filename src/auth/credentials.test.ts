import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { deriveCredentials, deriveScramKeys, PasswordError, saslprep, verifyPassword } from './credentials.js';

// The exchanges published in RFC 5802 section 5 (SCRAM-SHA-1) and RFC 7677 section 3
// (SCRAM-SHA-256): user "user", password "pencil".
const vectors = [
  {
    mechanism: 'SCRAM-SHA-1',
    algorithm: 'sha1',
    salt: 'QSXCR+Q6sek8bf92',
    authMessage:
      'n=user,r=fyko+d2lbbFgONRv9qkxdawL,' +
      'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,' +
      'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j',
    proof: 'v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
    serverSignature: 'rmF9pqV8S7suAoZWja4dJRkFsKQ=',
  },
  {
    mechanism: 'SCRAM-SHA-256',
    algorithm: 'sha256',
    salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
    authMessage:
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  },
] as const;

describe('deriveScramKeys', () => {
  for (const v of vectors) {
    it(`matches the published ${v.mechanism} exchange`, () => {
      const keys = deriveScramKeys(v.mechanism, 'pencil', Buffer.from(v.salt, 'base64'), 4096);
      assert.equal(keys.salt, v.salt);
      assert.equal(keys.iterations, 4096);
      // The client's proof must lead back to StoredKey, and ServerKey must sign as the server did.
      const storedKey = Buffer.from(keys.storedKey, 'base64');
      const clientSignature = createHmac(v.algorithm, storedKey).update(v.authMessage).digest();
      const clientKey = Buffer.from(v.proof, 'base64').map((byte, i) => byte ^ clientSignature[i]!);
      assert.deepEqual(createHash(v.algorithm).update(clientKey).digest(), storedKey);
      const serverSignature = createHmac(v.algorithm, Buffer.from(keys.serverKey, 'base64')).update(v.authMessage).digest('base64');
      assert.equal(serverSignature, v.serverSignature);
    });
  }

  it('rejects an iteration count that is not a positive integer', () => {
    assert.throws(() => deriveScramKeys('SCRAM-SHA-1', 'pencil', Buffer.alloc(16), 0), RangeError);
    assert.throws(() => deriveScramKeys('SCRAM-SHA-1', 'pencil', Buffer.alloc(16), 1.5), RangeError);
  });
});

describe('deriveCredentials', () => {
  it('derives keys for both hashes, each with its own random 16-byte salt', () => {
    const credentials = deriveCredentials('pencil');
    const sha1 = credentials['SCRAM-SHA-1'];
    const sha256 = credentials['SCRAM-SHA-256'];
    assert.equal(sha1.iterations, 4096);
    assert.equal(sha256.iterations, 4096);
    assert.equal(Buffer.from(sha1.salt, 'base64').length, 16);
    assert.equal(Buffer.from(sha256.salt, 'base64').length, 16);
    assert.notEqual(sha1.salt, sha256.salt);
    assert.equal(Buffer.from(sha1.storedKey, 'base64').length, 20);
    assert.equal(Buffer.from(sha1.serverKey, 'base64').length, 20);
    assert.equal(Buffer.from(sha256.storedKey, 'base64').length, 32);
    assert.equal(Buffer.from(sha256.serverKey, 'base64').length, 32);
    assert.notEqual(deriveCredentials('pencil')['SCRAM-SHA-256'].salt, sha256.salt);
  });

  it('takes the iteration count', () => {
    const credentials = deriveCredentials('pencil', 5000);
    assert.equal(credentials['SCRAM-SHA-1'].iterations, 5000);
    assert.equal(credentials['SCRAM-SHA-256'].iterations, 5000);
  });

  it('stores the same keys as deriveScramKeys with the same salt', () => {
    const credentials = deriveCredentials('pencil');
    for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
      const keys = credentials[mechanism];
      assert.deepEqual(deriveScramKeys(mechanism, 'pencil', Buffer.from(keys.salt, 'base64'), keys.iterations), keys);
    }
  });

  it('refuses a password that SASLprep prohibits', () => {
    assert.throws(() => deriveCredentials('bell\u0007'), PasswordError);
    assert.throws(() => deriveCredentials('unassigned\u0378'), PasswordError);
  });
});

describe('verifyPassword', () => {
  const credentials = deriveCredentials('pencil');

  it('accepts the password and rejects any other', () => {
    assert.equal(verifyPassword(credentials, 'pencil'), true);
    assert.equal(verifyPassword(credentials, 'Pencil'), false);
    assert.equal(verifyPassword(credentials, 'pencil '), false);
    assert.equal(verifyPassword(credentials, ''), false);
  });

  it('compares passwords after SASLprep', () => {
    const prepared = deriveCredentials('I\u00adX \u00aa');
    assert.equal(verifyPassword(prepared, 'IX a'), true);
    assert.equal(verifyPassword(prepared, '\u2168\u3000a'), true);
  });

  it('rejects a prohibited password instead of throwing', () => {
    assert.equal(verifyPassword(credentials, 'pencil\u0000'), false);
  });
});

describe('saslprep', () => {
  // RFC 4013 section 3.
  it('prepares the examples of RFC 4013', () => {
    assert.equal(saslprep('I\u00adX', 'query'), 'IX');
    assert.equal(saslprep('user', 'query'), 'user');
    assert.equal(saslprep('USER', 'query'), 'USER');
    assert.equal(saslprep('\u00aa', 'query'), 'a');
    assert.equal(saslprep('\u2168', 'query'), 'IX');
    assert.throws(() => saslprep('\u0007', 'query'), PasswordError);
    assert.throws(() => saslprep('\u0627\u0031', 'query'), PasswordError);
  });

  it('maps non-ASCII spaces to SPACE and removes characters mapped to nothing', () => {
    assert.equal(saslprep('a\u00a0b\u2003c\u3000d', 'query'), 'a b c d');
    assert.equal(saslprep('a\u200bb\ufeffc\u034fd', 'query'), 'abcd');
  });

  it('prohibits control, private-use, non-character, surrogate and tagging characters', () => {
    for (const input of ['\u0000', '\u007f', '\u0085', '\u2028', '\ue000', '\u{f0000}', '\ufdd0', '\uffff', '\ud800', '\u202e', '\u{e0001}', '\u2ff0']) {
      assert.throws(() => saslprep(`a${input}b`, 'query'), PasswordError, `U+${input.codePointAt(0)!.toString(16)}`);
    }
  });

  it('allows unassigned code points in queries only (RFC 3454 section 7)', () => {
    assert.equal(saslprep('a\u0378', 'query'), 'a\u0378');
    assert.throws(() => saslprep('a\u0378', 'stored'), PasswordError);
  });

  it('allows right-to-left text that starts and ends right-to-left, without left-to-right letters', () => {
    assert.equal(saslprep('\u05d0\u0031\u05d1', 'query'), '\u05d0\u0031\u05d1');
    assert.throws(() => saslprep('\u05d0a\u05d1', 'query'), PasswordError);
    assert.throws(() => saslprep('\u05d0\u05d1\u0031', 'query'), PasswordError);
  });
});
