// Generates config/example.yaml from the schemas: every option, core and modules, with its
// description as a comment and its default value, so that the file loads back to the defaults.
// Regenerate after changing an option:
//   node --import tsx src/config/example.ts > config/example.yaml
// src/config/example.test.ts fails while the file is out of date.
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { describeSchema, type OptionShape, type OptionSpec } from './describe.js';
import { configSchema, DEFAULT_CONFIG_FILE } from './load.js';

const HEADER = [
  '# Switchboard configuration: every option with its default value.',
  '#',
  '# Generated from the schemas, do not edit; regenerate with',
  '#   node --import tsx src/config/example.ts > config/example.yaml',
  '#',
  `# Copy it to ${DEFAULT_CONFIG_FILE} (or pass -c FILE, or set SWITCHBOARD_CONFIG) and change`,
  '# what you need. An option that is removed or left empty takes its default. Relative paths are',
  '# resolved against the working directory. `switchboard dump-config` shows the values in effect.',
];

export function exampleYaml(options: OptionSpec[] = describeSchema(configSchema())): string {
  const lines = [...HEADER];
  for (const option of options) lines.push('', ...optionLines(option, ''));
  return lines.join('\n') + '\n';
}

/**
 * An option's comment and value at an indentation. Options without a default are written
 * commented out, except inside a template (itself a comment) where they only need a value.
 */
function optionLines(option: OptionSpec, indent: string, inTemplate = false): string[] {
  const comment = `${indent}# ${commentOf(option)}`;
  const { shape } = option;
  if (shape.kind === 'section') {
    return [comment, `${indent}${option.key}:`, ...shape.options.flatMap((o) => optionLines(o, indent + '  ', inTemplate))];
  }
  const value = option.hasDefault ? yamlLines(option.key, option.default, indent)
    : [inTemplate ? `${indent}${option.key}:` : `${indent}# ${option.key}:`];
  if (shape.kind === 'map') value.push(...mapTemplate(shape, indent + '  '));
  return [comment, ...value];
}

function commentOf(option: OptionSpec): string {
  let text = option.description;
  if (option.shape.kind === 'value' && option.shape.type !== 'string') text += ` [${option.shape.type}]`;
  if (option.when) text += ` (only when ${option.when.key} is ${option.when.value})`;
  return text;
}

/** A commented-out entry showing what goes under each key of a map. */
function mapTemplate(shape: Extract<OptionShape, { kind: 'map' }>, indent: string): string[] {
  const entry = shape.entry.kind === 'section' ? shape.entry.options.flatMap((o) => optionLines(o, '  ', true)) : [];
  return [`<${shape.keyName}>:`, ...entry].map((line) => `${indent}# ${line}`);
}

function yamlLines(key: string, value: unknown, indent: string): string[] {
  return stringify({ [key]: value }).trimEnd().split('\n').map((line) => indent + line);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.stdout.write(exampleYaml());
