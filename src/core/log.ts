// Logging (seed 001 sections 11.3 and 11.4), with pino.
//
// Two outputs, as in Tigase:
// - the main log, `log.file`: every line at `log.level` (and debug for the categories in
//   `log.debug`), JSON, rotated by size: the newest always at the configured name, older ones
//   at <file>.1 (the most recent) to <file>.<max-files - 1>;
// - the console (standard output): the start-up environment, the loaded modules, warnings and
//   errors, and the statistics at shutdown; human-readable on a terminal, JSON lines otherwise.
// Without `log.file`, everything goes to the console, at `log.level`.
//
// Debug categories name a module (`pubsub`), a core component (`router`, `http`, `vhosts`) or
// `xmpp.io`, every byte sent and received per connection (see `ioLogger`).
import { accessSync, constants, mkdirSync, openSync, closeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { pino, type Logger, type DestinationStream, type StreamEntry } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import type { CoreConfig } from '../config/schema.js';

export type LogOptions = CoreConfig['log'];

export interface Logging {
  /** The server's logger (the main log, or the console without a file). */
  log: Logger;
  /** The console: start-up environment, loaded modules, errors, shutdown statistics. */
  console: Logger;
  /** Writes a line to the console and, when there is a file, to the main log too. */
  announce(fields: Record<string, unknown>, message: string): void;
  /** Flushes and closes the main log file. */
  close(): Promise<void>;
}

/** The console stream: pretty on a terminal, JSON lines otherwise (a service manager, a pipe). */
function consoleDestination(): DestinationStream {
  if (process.stdout.isTTY) return PinoPretty({ colorize: true, sync: true, destination: 1, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l' });
  return pino.destination({ dest: 1, sync: true });
}

export function createLogging(options: LogOptions, destinations: { console?: DestinationStream } = {}): Logging {
  const consoleStream = destinations.console ?? consoleDestination();
  // The console always shows the start-up environment, whatever `log.level` says.
  const console = pino({ level: 'info' }, consoleStream);
  if (!options.file) {
    const log = pino({ level: options.level }, consoleStream);
    return { log, console, announce: (fields, message) => console.info(fields, message), close: async () => {} };
  }
  const file = mainLogStream(options.file, options['max-size'], options['max-files']);
  const streams: StreamEntry[] = [
    // Lines are filtered by each logger's level (debug categories are below the root's); the file takes them all.
    { level: 'trace', stream: file },
    { level: 'warn', stream: consoleStream },
  ];
  const log = pino({ level: options.level }, pino.multistream(streams));
  return {
    log,
    console,
    announce(fields, message) {
      console.info(fields, message);
      log.info(fields, message);
    },
    close: () => new Promise<void>((resolve) => {
      if (file.writableEnded) return resolve();
      file.once('finish', () => resolve());
      file.once('error', () => resolve());
      file.end();
    }),
  };
}

/**
 * The main log file, rotated by size (rotating-file-stream's classical logrotate mode: the newest
 * keeps the name, rotated files are numbered from 1, the oldest beyond `maxFiles` is removed).
 * Opened once synchronously first, so that an unwritable path fails at start with a clear error.
 */
export function mainLogStream(path: string, maxSize: number, maxFiles: number): RotatingFileStream {
  mkdirSync(dirname(path), { recursive: true });
  closeSync(openSync(path, 'a'));
  accessSync(path, constants.W_OK);
  const name = basename(path);
  const stream = createStream((index: number | Date | null) => (typeof index === 'number' && index > 0 ? `${name}.${index}` : name), {
    path: dirname(path),
    size: `${maxSize}B`,
    rotate: Math.max(1, maxFiles - 1),
  });
  // A write error (disk full) must not crash the server; it goes to standard error once per error.
  stream.on('error', (e: Error) => { process.stderr.write(`switchboard: cannot write the log file ${path}: ${e.message}\n`); });
  return stream;
}

/** Whether a debug category is on. */
function debugOn(options: Pick<LogOptions, 'debug'>, category: string): boolean {
  return options.debug.includes(category);
}

/**
 * A child logger for a module (`{ module: name }`) or a core component (`{ component: name }`),
 * at debug level when its name is one of the debug categories.
 */
export function categoryLogger(root: Logger, options: Pick<LogOptions, 'debug'>, kind: 'module' | 'component', name: string): Logger {
  const child = root.child({ [kind]: name });
  if (debugOn(options, name) && child.levelVal > root.levels.values.debug!) child.level = 'debug';
  return child;
}

/** Logs what a connection sent or received: `conn` is the stream's id. */
export type IoLog = (conn: string, direction: 'in' | 'out', data: string | Buffer) => void;

/**
 * The `xmpp.io` category: every byte sent and received, per connection. Undefined when the
 * category is off, so that transports test one variable and do nothing else.
 */
export function ioLogger(root: Logger, options: Pick<LogOptions, 'debug'>): IoLog | undefined {
  if (!debugOn(options, 'xmpp.io')) return undefined;
  const io = root.child({ category: 'xmpp.io' });
  if (io.levelVal > root.levels.values.debug!) io.level = 'debug';
  return (conn, direction, data) => {
    io.debug({ conn, direction, data: typeof data === 'string' ? data : data.toString('utf8') }, direction === 'in' ? 'received' : 'sent');
  };
}
