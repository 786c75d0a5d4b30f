// Reloading the configuration file while the server runs (the HTTP API's POST /config/reload,
// SIGHUP). The file is read and validated exactly as at start; an invalid file changes nothing.
//
// What takes effect at once: `log.level`, `admins`, and the options of modules that declared them
// reloadable with `ctx.onReload` (less the ones they name as fixed). Everything else that changed
// (listeners, storage, virtual hosts, TLS, other modules' options) is reported as needing a
// restart and keeps its running value: those are wired into open sockets and loaded state.
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/load.js';

export interface ReloadReport {
  file: string;
  /** Option paths whose new value is in effect. */
  applied: string[];
  /** Option paths that changed in the file but keep their running value until a restart. */
  restartRequired: string[];
}

/** A module's reload handler: gets its options (already validated and updated in place). */
export type ReloadHandler = (options: Record<string, unknown>) => void | Promise<void>;

export interface Reloadable {
  config: Config;
  file: string | undefined;
  log: Logger;
  setAdmins(admins: readonly string[]): void;
  /** By module name: its handler and the options it cannot change at runtime. */
  modules: ReadonlyMap<string, { handler: ReloadHandler; fixed: readonly string[] }>;
}

/** Nothing to reload: the server runs without a configuration file. */
export class ReloadUnavailable extends Error {}

/** Reads the file again and applies what can be applied; throws ConfigError (nothing changed) when it is invalid. */
export async function reloadConfiguration(target: Reloadable): Promise<ReloadReport> {
  if (!target.file) throw new ReloadUnavailable('the server was started without a configuration file: there is nothing to reload');
  const { config: next } = await loadConfig({ file: target.file });
  const running = target.config;
  const applied: string[] = [];
  const restartRequired: string[] = [];
  const moduleChanges = new Map<string, string[]>();

  for (const path of changedPaths(running, next)) {
    const [section, option] = path;
    const name = path.join('.');
    if (name === 'log.level' || name === 'admins') {
      applied.push(name);
      continue;
    }
    const module = target.modules.get(section!);
    if (module && option !== undefined && !module.fixed.includes(option)) {
      moduleChanges.set(section!, [...(moduleChanges.get(section!) ?? []), option]);
      applied.push(name);
      continue;
    }
    restartRequired.push(name);
  }

  // Everything is validated above; from here on the new values go in.
  if (applied.includes('log.level')) {
    running.log.level = next.log.level;
    target.log.level = next.log.level;
  }
  if (applied.includes('admins')) {
    running.admins = next.admins;
    target.setAdmins(next.admins);
  }
  for (const [section, options] of moduleChanges) {
    const current = running[section] as Record<string, unknown>;
    const fresh = next[section] as Record<string, unknown>;
    for (const option of options) current[option] = fresh[option];
    try {
      await target.modules.get(section)!.handler(current);
    } catch (e) {
      target.log.error({ err: e, module: section }, 'module failed to apply reloaded options');
    }
  }
  target.log.info({ file: target.file, applied, restartRequired }, 'configuration reloaded');
  return { file: target.file, applied, restartRequired };
}

/**
 * Option paths whose value differs: `section.option` inside mappings of options (log, c2s, a
 * module's section), the top-level key for lists and plain values (admins, virtual-hosts).
 */
function changedPaths(running: Record<string, unknown>, next: Record<string, unknown>): string[][] {
  const out: string[][] = [];
  for (const key of new Set([...Object.keys(running), ...Object.keys(next)])) {
    const a = running[key];
    const b = next[key];
    if (same(a, b)) continue;
    if (isMapping(a) && isMapping(b)) {
      for (const option of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!same(a[option], b[option])) out.push([key, option]);
      }
    } else {
      out.push([key]);
    }
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
