// `switchboard check`: the environment the server would start in, resolved and verified, in the
// spirit of `tigase.sh check`. Problems make the command fail; warnings are only shown.
import { constants, type Stats } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { dirname, join } from 'node:path';
import { openStorage } from '../storage/index.js';
import { selfSignedPaths } from '../transports/certificates.js';
import { readStoredVhosts } from '../core/vhosts.js';
import { allModules } from '../modules/index.js';
import { maskPassword } from './dump.js';
import { listenerPorts, vhostOptionsSchema } from './schema.js';
import type { Config, LoadedConfig } from './load.js';

export interface CheckReport {
  /** A label column, then the value; a value of several lines continues under the first. */
  lines: string[];
  problems: string[];
  warnings: string[];
}

const LABEL_WIDTH = 16;

export async function checkEnvironment({ config, file }: LoadedConfig): Promise<CheckReport> {
  const report: CheckReport = { lines: [], problems: [], warnings: [] };
  const add = (label: string, ...values: string[]) => {
    values.forEach((value, index) => report.lines.push((index === 0 ? label : '').padEnd(LABEL_WIDTH) + value));
  };
  add('config file', file ?? 'none, built-in defaults');
  add('data dir', await checkWritable('data dir', config['data-dir'], 'directory', report));
  add('storage', await checkStorage(config, report));
  add('listeners', ...listeners(config, report));
  add('authentication', authentication(config));
  add('virtual hosts', ...virtualHosts(config));
  add('runtime hosts', ...await runtimeHosts(config));
  add('certificates', ...await checkCertificates(config, report));
  add('admins', admins(config, report));
  add('modules', allModules.map((m) => m.name).join(', '));
  for (const module of allModules) {
    const result = await module.check?.(config[module.name] as never);
    if (!result) continue;
    add(module.name, ...result.lines);
    report.problems.push(...(result.problems ?? []));
    report.warnings.push(...(result.warnings ?? []));
  }
  add('log', `${config.log.level}, to ${config.log.file ? await checkWritable('log file', config.log.file, 'file', report) : 'standard output'}`);
  return report;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

async function isWritable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the server can write to `path` (a directory or a file), creating it if need be. */
async function checkWritable(what: string, path: string, kind: 'directory' | 'file', report: CheckReport): Promise<string> {
  const found = await statOrUndefined(path);
  if (found) {
    if (found.isDirectory() !== (kind === 'directory')) return fail(report, `${what} ${path} is not a ${kind}`, path);
    return (await isWritable(path)) ? `${path} (writable)` : fail(report, `${what} ${path} is not writable`, path);
  }
  // The server creates it, which works if the closest existing ancestor is a writable directory.
  let ancestor = dirname(path);
  let ancestorStat = await statOrUndefined(ancestor);
  while (!ancestorStat && dirname(ancestor) !== ancestor) {
    ancestor = dirname(ancestor);
    ancestorStat = await statOrUndefined(ancestor);
  }
  if (ancestorStat?.isDirectory() && (await isWritable(ancestor))) return `${path} (does not exist yet, will be created)`;
  return fail(report, `${what} ${path} does not exist and cannot be created (${ancestor} is not a writable directory)`, path);
}

function fail(report: CheckReport, problem: string, shown: string): string {
  report.problems.push(problem);
  return `${shown} (PROBLEM)`;
}

async function checkStorage(config: Config, report: CheckReport): Promise<string> {
  const { storage } = config;
  let described: string;
  if (storage.type === 'sqlite') {
    const path = storage.path ?? join(config['data-dir'], 'switchboard.sqlite');
    described = `sqlite ${path}`;
    // Opening would create the database; check only reports.
    if (!(await statOrUndefined(path))) return `${described} (does not exist yet, will be created on first start)`;
  } else {
    described = `postgres ${maskPassword(storage.url)}`;
  }
  try {
    const opened = await openStorage(storage, config['data-dir']);
    try {
      return `${described} (opened, schema version ${await opened.schemaVersion()})`;
    } finally {
      await opened.close();
    }
  } catch (e) {
    return fail(report, `storage ${described} cannot be opened: ${(e as Error).message}`, described);
  }
}

function listeners(config: Config, report: CheckReport): string[] {
  const enabled = listenerPorts(config);
  if (!enabled.some((l) => l.path[0] === 'c2s')) report.warnings.push('no client listener: c2s.port and c2s.tls-port are both 0');
  return enabled.map(({ serves, host, port }) => `${host}:${port} ${serves}`);
}

function authentication(config: Config): string {
  const c2s = config.c2s;
  const plain = { loopback: 'loopback connections only', always: 'always', never: 'never' }[c2s['plaintext-auth']];
  return `PLAIN without TLS: ${plain}; TLS required: ${c2s['require-encryption'] ? 'yes' : 'no'}; legacy jabber:iq:auth: ${c2s['legacy-auth'] ? 'yes' : 'no'}`;
}

function virtualHosts(config: Config): string[] {
  const defaults = vhostOptionsSchema.parse({});
  return config['virtual-hosts'].map((host, index) => {
    const options = config['vhost-options'][host] ?? defaults;
    const settings = Object.entries(options).map(([key, value]) => `${key} ${value}`).join(', ');
    return `${host}${index === 0 ? ' (default host)' : ''}: ${settings}`;
  });
}

/** Hosts added (or configured hosts changed) at runtime through the VHost Manager, as stored. */
async function runtimeHosts(config: Config): Promise<string[]> {
  if (config.storage.type === 'sqlite' && !(await statOrUndefined(config.storage.path ?? join(config['data-dir'], 'switchboard.sqlite')))) return ['none (no database yet)'];
  let stored: Awaited<ReturnType<typeof readStoredVhosts>>;
  try {
    const opened = await openStorage(config.storage, config['data-dir']);
    try {
      stored = await readStoredVhosts(opened);
    } finally {
      await opened.close();
    }
  } catch {
    return ['unknown (the storage cannot be opened)'];
  }
  const lines = Object.entries(stored).sort(([a], [b]) => a.localeCompare(b)).map(([domain, v]) => {
    const settings = [
      `enabled ${v.enabled}`, `anonymous-login ${v['anonymous-login']}`, `in-band-registration ${v['in-band-registration']}`,
      `tls-required ${v['tls-required']}`, `max-users ${v['max-users'] || 'unlimited'}`, `owner ${v.owner ?? 'none'}`,
      ...(v.administrators.length ? [`administrators ${v.administrators.join(' ')}`] : []),
      ...(v['presence-forward'] ? [`presence-forward ${v['presence-forward']}`] : []),
      ...(v['message-forward'] ? [`message-forward ${v['message-forward']}`] : []),
    ].join(', ');
    return `${domain}${config['virtual-hosts'].includes(domain) ? ' (configured; settings changed at runtime override vhost-options)' : ''}: ${settings}`;
  });
  return lines.length ? lines : ['none'];
}

async function checkCertificates(config: Config, report: CheckReport): Promise<string[]> {
  const lines: string[] = [];
  for (const host of config['virtual-hosts']) {
    const configured = config.tls.certificates[host];
    if (configured) {
      lines.push(`${host}: ${await describeCertificate(host, configured, report)}`);
      continue;
    }
    const paths = selfSignedPaths(config['data-dir'], host);
    const present = (await statOrUndefined(paths.cert)) && (await statOrUndefined(paths.key));
    lines.push(present
      ? `${host}: self-signed ${await describeCertificate(host, paths, report)}`
      : `${host}: self-signed ${paths.cert}, ${paths.key} (will be generated on first start)`);
  }
  return lines;
}

/** Files, expiry, and whether the key belongs to the certificate. */
async function describeCertificate(host: string, paths: { cert: string; key: string }, report: CheckReport): Promise<string> {
  const files = `${paths.cert}, ${paths.key}`;
  let certificate: X509Certificate;
  try {
    const [certPem, keyPem] = await Promise.all([readFile(paths.cert), readFile(paths.key)]);
    certificate = new X509Certificate(certPem);
    if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) return fail(report, `certificate of ${host}: ${paths.key} is not the key of ${paths.cert}`, files);
  } catch (e) {
    return fail(report, `certificate of ${host}: ${(e as Error).message}`, files);
  }
  const expiry = new Date(certificate.validTo);
  if (expiry.getTime() < Date.now()) return fail(report, `certificate of ${host} expired on ${expiry.toISOString().slice(0, 10)}`, files);
  return `${files} (valid until ${expiry.toISOString().slice(0, 10)})`;
}

function admins(config: Config, report: CheckReport): string {
  for (const admin of config.admins) {
    const domain = admin.slice(admin.indexOf('@') + 1);
    if (!config['virtual-hosts'].includes(domain)) report.warnings.push(`admin ${admin} is not on a virtual host of this server`);
  }
  return config.admins.length > 0 ? config.admins.join(', ') : 'none';
}
