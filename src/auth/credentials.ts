// Salted password credentials for SCRAM (RFC 5802 section 3, RFC 7677) and password
// preparation with SASLprep (RFC 4013). Only the derived keys are stored, never the password,
// so every mechanism that sees a cleartext password (PLAIN, XEP-0078 legacy auth) checks it by
// deriving the keys again with the stored salt.
//
// SASLprep is implemented here rather than taken from npm: the `saslprep` package has not been
// maintained for years, and the maintained `@mongodb-js/saslprep` would be a new runtime
// dependency with a large code-point table for what is, in practice, a handful of rules. This is
// a practical subset of RFC 4013: the mapping, normalisation and prohibition steps in full
// (with the tables of RFC 3454 appendices B.1 and C), the bidirectional check approximated by
// script, and "unassigned" judged by the Unicode version of Node's ICU rather than Unicode 3.2.

import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Credentials, ScramKeys } from '../storage/types.js';

export type ScramMechanismName = keyof Credentials;

/** The hash behind each SCRAM mechanism, and its output length (the length of every SCRAM key). */
export const scramHashes: Readonly<Record<ScramMechanismName, { algorithm: 'sha1' | 'sha256'; length: number }>> = {
  'SCRAM-SHA-1': { algorithm: 'sha1', length: 20 },
  'SCRAM-SHA-256': { algorithm: 'sha256', length: 32 },
};

const SALT_LENGTH = 16;

/** A password that SASLprep prohibits (RFC 4013 section 2.3-2.5). */
export class PasswordError extends Error {}

const pbkdf2Async = promisify(pbkdf2);

// RFC 3454 C.1.2, non-ASCII space characters: mapped to SPACE (RFC 4013 section 2.1).
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
// RFC 3454 B.1, "commonly mapped to nothing" (RFC 4013 section 2.1).
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
// RFC 4013 section 2.3: RFC 3454 tables C.1.2 (non-ASCII spaces), C.2.1 and C.2.2 (control
// characters), C.3 (private use), C.4 (non-characters), C.5 (surrogates), C.6 (inappropriate
// for plain text), C.7 (inappropriate for canonical representation), C.8 (change display
// properties or deprecated) and C.9 (tagging characters).
const PROHIBITED = new RegExp(
  '[' +
    '\\u00a0\\u1680\\u2000-\\u200b\\u202f\\u205f\\u3000' + // C.1.2
    '\\u0000-\\u001f\\u007f' + // C.2.1
    '\\u0080-\\u009f\\u06dd\\u070f\\u180e\\u200c\\u200d\\u2028\\u2029\\u2060-\\u2063\\u206a-\\u206f\\ufeff\\ufff9-\\ufffc\\u{1d173}-\\u{1d17a}' + // C.2.2
    '\\p{Co}' + // C.3
    '\\p{Noncharacter_Code_Point}' + // C.4
    '\\ud800-\\udfff' + // C.5: lone surrogates, the only ones a JavaScript string can hold
    '\\ufff9-\\ufffd' + // C.6
    '\\u2ff0-\\u2ffb' + // C.7
    '\\u0340\\u0341\\u200e\\u200f\\u202a-\\u202e\\u206a-\\u206f' + // C.8
    '\\u{e0001}\\u{e0020}-\\u{e007f}' + // C.9
    ']',
  'u',
);
// RFC 3454 section 6 compares bidirectional categories, which JavaScript regular expressions
// cannot query. Letters of the right-to-left scripts of Unicode 3.2 stand in for RandALCat, and
// all other letters for LCat.
const RIGHT_TO_LEFT_LETTER = /(?=\p{L})[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}]/u;
const LEFT_TO_RIGHT_LETTER = /(?![\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}])\p{L}/u;
const UNASSIGNED = /\p{Cn}/u;

/**
 * Prepares a password with SASLprep (RFC 4013). A stored string (a password being set) may not
 * contain unassigned code points; a query (a password being checked) may (RFC 3454 section 7).
 * Throws PasswordError when the password contains a prohibited character.
 */
export function saslprep(input: string, kind: 'stored' | 'query'): string {
  const prepared = input.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (PROHIBITED.test(prepared)) throw new PasswordError('the password contains a prohibited character');
  if (kind === 'stored' && UNASSIGNED.test(prepared)) throw new PasswordError('the password contains an unassigned character');
  if (RIGHT_TO_LEFT_LETTER.test(prepared)) {
    const characters = [...prepared];
    if (LEFT_TO_RIGHT_LETTER.test(prepared) || !RIGHT_TO_LEFT_LETTER.test(characters[0]!) || !RIGHT_TO_LEFT_LETTER.test(characters[characters.length - 1]!)) {
      throw new PasswordError('the password mixes right-to-left and left-to-right text');
    }
  }
  return prepared;
}

/** SaltedPassword, then StoredKey and ServerKey (RFC 5802 section 3), from a prepared password. */
function computeKeys(mechanism: ScramMechanismName, preparedPassword: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const { algorithm, length } = scramHashes[mechanism];
  // Hi() is PBKDF2 with HMAC as the pseudorandom function and one block of output (RFC 5802 section 2.2).
  return keysFromSaltedPassword(mechanism, pbkdf2Sync(preparedPassword, salt, iterations, length, algorithm));
}

function keysFromSaltedPassword(mechanism: ScramMechanismName, saltedPassword: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  const { algorithm } = scramHashes[mechanism];
  const clientKey = createHmac(algorithm, saltedPassword).update('Client Key').digest();
  return {
    storedKey: createHash(algorithm).update(clientKey).digest(),
    serverKey: createHmac(algorithm, saltedPassword).update('Server Key').digest(),
  };
}

/** The stored SCRAM keys for one mechanism, with the given salt (RFC 5802 section 3). */
export function deriveScramKeys(mechanism: ScramMechanismName, password: string, salt: Buffer, iterations: number): ScramKeys {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`invalid SCRAM iteration count: ${iterations}`);
  const { storedKey, serverKey } = computeKeys(mechanism, saslprep(password, 'stored'), salt, iterations);
  return { salt: salt.toString('base64'), iterations, storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') };
}

/**
 * Credentials for a new password: SCRAM-SHA-1 and SCRAM-SHA-256 keys, each with its own random
 * salt. 4096 iterations is the minimum RFC 7677 section 4 recommends. Throws PasswordError for
 * a password that SASLprep prohibits.
 */
export function deriveCredentials(password: string, iterations = 4096): Credentials {
  return {
    'SCRAM-SHA-1': deriveScramKeys('SCRAM-SHA-1', password, randomBytes(SALT_LENGTH), iterations),
    'SCRAM-SHA-256': deriveScramKeys('SCRAM-SHA-256', password, randomBytes(SALT_LENGTH), iterations),
  };
}

/** SASLprep of a password being checked; undefined when SASLprep prohibits it (it cannot match). */
function preparedForQuery(password: string): string | undefined {
  try {
    return saslprep(password, 'query');
  } catch (e) {
    if (e instanceof PasswordError) return undefined;
    throw e;
  }
}

function storedKeyMatches(credentials: Credentials, storedKey: Buffer): boolean {
  const expected = Buffer.from(credentials['SCRAM-SHA-256'].storedKey, 'base64');
  return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
}

/** Checks a cleartext password (PLAIN, XEP-0078) against stored credentials, in constant time. */
export function verifyPassword(credentials: Credentials, password: string): boolean {
  const prepared = preparedForQuery(password);
  if (prepared === undefined) return false;
  const keys = credentials['SCRAM-SHA-256'];
  return storedKeyMatches(credentials, computeKeys('SCRAM-SHA-256', prepared, Buffer.from(keys.salt, 'base64'), keys.iterations).storedKey);
}

/**
 * verifyPassword with PBKDF2 on libuv's thread pool: logins with cleartext passwords then use
 * every core and do not stall the event loop that carries everyone's stanzas.
 */
export async function verifyPasswordAsync(credentials: Credentials, password: string): Promise<boolean> {
  const prepared = preparedForQuery(password);
  if (prepared === undefined) return false;
  const keys = credentials['SCRAM-SHA-256'];
  const { algorithm, length } = scramHashes['SCRAM-SHA-256'];
  const salted = await pbkdf2Async(prepared, Buffer.from(keys.salt, 'base64'), keys.iterations, length, algorithm);
  return storedKeyMatches(credentials, keysFromSaltedPassword('SCRAM-SHA-256', salted).storedKey);
}
