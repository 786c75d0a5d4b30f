// TLS certificates per virtual host: PEM files from the configuration, else a self-signed
// certificate generated into <data-dir>/certs on first start. SNI picks the host's context.
// Virtual hosts added at runtime (core/vhosts.ts) get theirs through `ensure`: the PEM files
// <data-dir>/certs/<host>.crt and .key if an operator put them there, else a self-signed pair
// generated there on demand.
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';
import type { CoreConfig } from '../config/schema.js';

export interface CertificateStore {
  /** Context for a TLS server name (SNI), falling back to the first virtual host. */
  contextFor(servername: string | undefined): SecureContext;
  readonly defaultContext: SecureContext;
  /** Certificate and key file per virtual host, for `switchboard check`. */
  readonly files: Map<string, { cert: string; key: string; generated: boolean }>;
  /** Loads (generating it if need be) the certificate of a host added at runtime; a no-op for a host that has one. */
  ensure(host: string): Promise<void>;
}

export function selfSignedPaths(dataDir: string, host: string): { cert: string; key: string } {
  const dir = resolve(dataDir, 'certs');
  return { cert: join(dir, `${host}.crt`), key: join(dir, `${host}.key`) };
}

async function exists(path: string): Promise<boolean> {
  try { await access(path); return true; } catch { return false; }
}

async function generateSelfSigned(host: string, paths: { cert: string; key: string }): Promise<void> {
  const notAfterDate = new Date(Date.now() + 10 * 365 * 86400_000);
  const pems = await generate([{ name: 'commonName', value: host }], {
    keySize: 2048,
    notAfterDate,
    algorithm: 'sha256',
    // Subdomains too: services such as pubsub.<host> are reached through the same certificate.
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: host }, { type: 2, value: `*.${host}` }] }],
  } as never);
  await mkdir(resolve(paths.cert, '..'), { recursive: true });
  await writeFile(paths.key, pems.private, { mode: 0o600 });
  await writeFile(paths.cert, pems.cert);
}

export async function loadCertificates(config: CoreConfig, log: Logger): Promise<CertificateStore> {
  const contexts = new Map<string, SecureContext>();
  const files = new Map<string, { cert: string; key: string; generated: boolean }>();
  const pending = new Map<string, Promise<void>>();
  const load = async (host: string): Promise<void> => {
    const configured = config.tls.certificates[host];
    let paths: { cert: string; key: string };
    let generated = false;
    if (configured) {
      paths = { cert: resolve(configured.cert), key: resolve(configured.key) };
    } else {
      paths = selfSignedPaths(config['data-dir'], host);
      generated = true;
      if (!(await exists(paths.cert)) || !(await exists(paths.key))) {
        log.info({ host, cert: paths.cert }, 'generating a self-signed certificate');
        await generateSelfSigned(host, paths);
      }
    }
    let cert: Buffer, key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(paths.cert), readFile(paths.key)]);
    } catch (e) {
      throw new Error(`tls.certificates.${host}: cannot read ${(e as NodeJS.ErrnoException).path ?? paths.cert}: ${(e as Error).message}`);
    }
    try {
      contexts.set(host, createSecureContext({ cert, key }));
    } catch (e) {
      throw new Error(`tls.certificates.${host}: invalid certificate or key (${(e as Error).message})`);
    }
    files.set(host, { ...paths, generated });
  };
  for (const host of config['virtual-hosts']) await load(host);
  const defaultContext = contexts.get(config['virtual-hosts'][0]!)!;
  return {
    defaultContext,
    files,
    contextFor(servername) {
      if (!servername) return defaultContext;
      const name = servername.toLowerCase();
      let ctx = contexts.get(name);
      // A service subdomain (pubsub.example.com) uses its parent host's certificate.
      for (let dot = name.indexOf('.'); !ctx && dot >= 0; dot = name.indexOf('.', dot + 1)) ctx = contexts.get(name.slice(dot + 1));
      return ctx ?? defaultContext;
    },
    ensure(host) {
      if (contexts.has(host)) return Promise.resolve();
      let p = pending.get(host);
      if (!p) {
        p = load(host).finally(() => pending.delete(host));
        pending.set(host, p);
      }
      return p;
    },
  };
}
