// Finds, reads and validates the configuration file. The full schema is the core schema plus each
// module's options under the module's name; every object is strict, so a misspelt key is an
// error rather than a silently ignored setting. Errors are reported all at once, one line each,
// as `<file>: <option.path>: <reason>`.
import { access, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { allModules } from '../modules/index.js';
import type { ModuleDefinition } from '../core/module-definition.js';
import { checkCoreReferences, checkDebugCategories, coreSchema, type CoreConfig } from './schema.js';
import { describeSchema, formatPath, optionValues, optionsAt, type OptionSpec, type PathSegment } from './describe.js';

/** The validated configuration: core options, and each module's options under its name. */
export type Config = CoreConfig & Record<string, unknown>;

export type OptionSource = 'default' | 'file';

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file read, or undefined when running on defaults. */
  file: string | undefined;
  /** For every option path as `formatPath` writes it (e.g. `c2s.port`), where its value came from. */
  sources: Map<string, OptionSource>;
}

export interface LoadConfigOptions {
  /** The file given with `-c`; takes precedence over SWITCHBOARD_CONFIG. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

/** Thrown for an unreadable or invalid configuration; the message lists every problem, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Read when neither `-c` nor SWITCHBOARD_CONFIG names a file, if it exists. */
export const DEFAULT_CONFIG_FILE = 'config/switchboard.yaml';

/** The core schema extended with the options of the given modules, each under the module's name. */
export function configSchema(modules: readonly ModuleDefinition[] = allModules): z.ZodObject {
  const moduleOptions: Record<string, z.ZodType> = {};
  for (const module of modules) {
    if (!module.config) continue;
    if (module.name in coreSchema.shape) throw new Error(`module "${module.name}" is named like a core option`);
    moduleOptions[module.name] = module.config.strict().prefault({}).describe(module.description);
  }
  return coreSchema.extend(moduleOptions).superRefine((config, ctx) => {
    checkCoreReferences(config as CoreConfig, ctx);
    checkDebugCategories(config as CoreConfig, modules.map((m) => m.name), ctx);
  });
}

export async function loadConfig({ file, env = process.env }: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const located = await locateConfigFile(file, env);
  const raw = located ? await readConfigFile(located.path, located.origin) : {};
  const schema = configSchema();
  const options = describeSchema(schema);
  const result = schema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const where = located?.path ?? 'built-in defaults';
    throw new ConfigError(result.error.issues.flatMap((issue) => problemsOf(issue, options)).map((problem) => `${where}: ${problem}`));
  }
  const config = result.data as Config;
  const sources = new Map<string, OptionSource>(optionValues(options, config)
    .map(({ path }) => [formatPath(path), located && isSetIn(raw, path) ? 'file' : 'default']));
  return { config, file: located?.path, sources };
}

async function locateConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv): Promise<{ path: string; origin: string } | undefined> {
  if (explicit) return { path: resolve(explicit), origin: '-c' };
  if (env.SWITCHBOARD_CONFIG) return { path: resolve(env.SWITCHBOARD_CONFIG), origin: 'SWITCHBOARD_CONFIG' };
  const fallback = resolve(DEFAULT_CONFIG_FILE);
  try {
    await access(fallback);
    return { path: fallback, origin: 'the default location' };
  } catch {
    return undefined;
  }
}

async function readConfigFile(path: string, origin: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new ConfigError([`${path}: cannot read the configuration file (named by ${origin}): ${reason}`]);
  }
  const document = parseDocument(text);
  if (document.errors.length > 0) {
    throw new ConfigError(document.errors.map((error) => {
      const at = error.linePos?.[0];
      // The message ends with its position and a code excerpt; the position is already in front.
      const reason = error.message.split(' at line ')[0]!.split('\n')[0];
      return `${path}${at ? `:${at.line}:${at.col}` : ''}: YAML syntax error: ${reason}`;
    }));
  }
  const content: unknown = document.toJS();
  if (content === null || content === undefined) return {};
  if (typeof content !== 'object' || Array.isArray(content)) {
    throw new ConfigError([`${path}: expected options as "key: value" lines, got ${describeInput(content)}`]);
  }
  return withoutEmptyValues(content as Record<string, unknown>);
}

/**
 * Drops keys with an empty value: a section whose options are all commented out reads as null in
 * YAML, and an option written without a value is taken to mean "the default".
 */
function withoutEmptyValues(mapping: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mapping)) {
    if (value === null) continue;
    out[key] = value && typeof value === 'object' && !Array.isArray(value) ? withoutEmptyValues(value as Record<string, unknown>) : value;
  }
  return out;
}

function isSetIn(raw: unknown, path: PathSegment[]): boolean {
  let current = raw;
  for (const segment of path) {
    if (!current || typeof current !== 'object') return false;
    const mapping = current as Record<string, unknown>;
    // Map keys are normalised while loading (domains lowercased), so match them the same way.
    const key = segment in mapping ? segment : Object.keys(mapping).find((k) => k.toLowerCase().replace(/\.$/, '') === segment);
    if (key === undefined) return false;
    current = mapping[key];
  }
  return current !== undefined;
}

type Issue = z.core.$ZodIssue;

function problemsOf(issue: Issue, options: OptionSpec[]): string[] {
  if (issue.code === 'unrecognized_keys') {
    const input = (issue.input ?? {}) as Record<string, unknown>;
    // Of a variant section (storage), only the chosen variant's options are valid.
    const valid = (optionsAt(options, issue.path as PathSegment[]) ?? [])
      .filter((o) => !o.when || input[o.when.key] === o.when.value)
      .map((o) => o.key);
    const hint = valid.length > 0 ? ` (valid here: ${valid.join(', ')})` : '';
    return issue.keys.map((key) => `${formatPath([...issue.path as PathSegment[], key])}: unknown key${hint}`);
  }
  const path = formatPath(issue.path as PathSegment[]);
  return [`${path || '(top level)'}: ${reasonOf(issue)}`];
}

function reasonOf(issue: Issue): string {
  const got = 'input' in issue && issue.input !== undefined ? `, got ${describeInput(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type':
      return got ? `expected ${describeExpected(issue.expected)}${got}` : `missing (expected ${describeExpected(issue.expected)})`;
    case 'too_small':
      return `${lowerBound(issue)}${got}`;
    case 'too_big':
      return `${upperBound(issue)}${got}`;
    case 'invalid_value':
      return `expected ${oneOf(issue.values)}${got}`;
    case 'invalid_union': {
      if (!issue.discriminator) return `does not match any of the allowed forms${got}`;
      const allowed = oneOf('options' in issue ? issue.options ?? [] : []);
      const chosen = (issue.input as Record<string, unknown> | undefined)?.[issue.discriminator];
      return chosen === undefined ? `missing (expected ${allowed})` : `expected ${allowed}, got ${describeInput(chosen)}`;
    }
    case 'invalid_key':
      return `invalid key: ${issue.issues.map(reasonOf).join('; ')}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}${got}`;
    default:
      // custom (our own refinements) and format checks carry a message written for people.
      return issue.message;
  }
}

function lowerBound(issue: z.core.$ZodIssueTooSmall): string {
  const n = Number(issue.minimum);
  switch (issue.origin) {
    case 'string': return n === 1 ? 'must not be empty' : `must be at least ${n} characters long`;
    case 'array': return `must list at least ${n} ${n === 1 ? 'entry' : 'entries'}`;
    default: return issue.inclusive === false ? `must be greater than ${n}` : `must be at least ${n}`;
  }
}

function upperBound(issue: z.core.$ZodIssueTooBig): string {
  const n = Number(issue.maximum);
  switch (issue.origin) {
    case 'string': return `must be at most ${n} characters long`;
    case 'array': return `must list at most ${n} ${n === 1 ? 'entry' : 'entries'}`;
    default: return issue.inclusive === false ? `must be less than ${n}` : `must be at most ${n}`;
  }
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'int': return 'a whole number';
    case 'number': return 'a number';
    case 'string': return 'a string';
    case 'boolean': return 'true or false';
    case 'array': return 'a list';
    case 'object':
    case 'record': return 'a mapping of "key: value" lines';
    default: return expected;
  }
}

function oneOf(values: readonly unknown[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  return quoted.length === 1 ? quoted[0]! : `one of ${quoted.join(', ')}`;
}

/** A value as the user wrote it in YAML, for "got ..." in messages. */
function describeInput(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
