// An independent SCRAM client, written from the formulas of RFC 5802 section 3, for the unit
// tests of the server mechanisms and the end-to-end tests over real TLS connections.
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export type Hash = 'sha1' | 'sha256';

export interface ScramClientOptions {
  authzid?: string;
  /** gs2-cbind-flag: 'n', 'y' or 'p=<type>'. */
  flag?: string;
  /** The channel binding data the client sees on its side of the connection. */
  bindingData?: Buffer;
  /** An extension attribute (RFC 5802 section 5.1) added to both client messages. */
  extension?: string;
}

export function escapeSaslname(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export function scramClient(hash: Hash, username: string, password: string, options: ScramClientOptions = {}) {
  const gs2Header = `${options.flag ?? 'n'},${options.authzid === undefined ? '' : `a=${escapeSaslname(options.authzid)}`},`;
  const clientNonce = randomBytes(18).toString('base64');
  const extension = options.extension === undefined ? '' : `,${options.extension}`;
  const clientFirstBare = `n=${escapeSaslname(username)},r=${clientNonce}${extension}`;
  let serverSignature = '';
  return {
    first: () => Buffer.from(gs2Header + clientFirstBare),
    final(serverFirst: string, tamper: { nonce?: string } = {}): Buffer {
      const attributes = new Map(serverFirst.split(',').map((a) => [a[0], a.slice(2)] as const));
      const nonce = attributes.get('r')!;
      assert.ok(nonce.startsWith(clientNonce) && nonce.length > clientNonce.length, 'the server nonce extends the client nonce');
      const length = hash === 'sha1' ? 20 : 32;
      const saltedPassword = pbkdf2Sync(password, Buffer.from(attributes.get('s')!, 'base64'), Number(attributes.get('i')), length, hash);
      const clientKey = createHmac(hash, saltedPassword).update('Client Key').digest();
      const storedKey = createHash(hash).update(clientKey).digest();
      const channelBinding = Buffer.concat([Buffer.from(gs2Header), options.bindingData ?? Buffer.alloc(0)]).toString('base64');
      const withoutProof = `c=${channelBinding},r=${tamper.nonce ?? nonce}${extension}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientSignature = createHmac(hash, storedKey).update(authMessage).digest();
      const proof = clientKey.map((byte, i) => byte ^ clientSignature[i]!);
      const serverKey = createHmac(hash, saltedPassword).update('Server Key').digest();
      serverSignature = createHmac(hash, serverKey).update(authMessage).digest('base64');
      return Buffer.from(`${withoutProof},p=${Buffer.from(proof).toString('base64')}`);
    },
    /** The server-final message proves the server knows the ServerKey. */
    serverFinal: () => `v=${serverSignature}`,
  };
}

