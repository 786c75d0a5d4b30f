// The program a worker process of `workers` runs (workers.ts forks it): the same configuration
// file as its primary, a whole server whose cluster bus is the IPC channel, logs sent to the
// primary, and a graceful stop when the primary asks (or a signal, or the primary is gone).
// Argument: the configuration file, if the primary was given one.
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { runFilePaths, writeStatistics } from '../core/run-files.js';
import { startServer } from '../core/server.js';
import { VERSION } from '../modules/version.js';
import { nodeWideMetrics } from './worker-metrics.js';
import { primaryLogDestination, primaryRequests, sendToPrimary, workerBus, workerIndex } from './workers.js';

async function runWorker(): Promise<number> {
  const index = workerIndex();
  if (index === undefined) throw new Error('worker-entry runs only as a worker forked by the primary');
  const log = pino({ level: 'info' }, primaryLogDestination());
  let loaded;
  try {
    loaded = await loadConfig({ file: process.argv[2] });
  } catch (e) {
    sendToPrimary({ sb: 'failed', error: (e as Error).message });
    return 1;
  }
  const { config, file } = loaded;
  log.level = config.log.level;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, { configFile: file, log, worker: { index, bus: workerBus(index, log.child({ component: 'cluster' })) } });
  } catch (e) {
    log.fatal({ err: e }, 'cannot start');
    sendToPrimary({ sb: 'failed', error: (e as Error).message });
    return 1;
  }
  // GET /metrics and the statistics show the whole node, whichever worker is asked.
  const stopNodeWideMetrics = nodeWideMetrics(server.metrics, (e) => log.warn({ err: e }, 'node statistics incomplete: showing this worker\'s alone'));
  sendToPrimary({ sb: 'ready', listeners: server.addresses.map((a) => `${a.name} ${a.host}:${a.port}`) });
  const requests = primaryRequests(() => { server.reload().catch((e: unknown) => log.error({ err: e }, 'configuration reload refused; nothing changed')); });
  // A terminal's Ctrl-C reaches the whole process group, the primary's stop request follows: the first one counts.
  const signal = new Promise<NodeJS.Signals>((resolve) => { process.once('SIGINT', resolve).once('SIGTERM', resolve); });
  const why = await Promise.race([requests.stop, signal]);
  log.info({ reason: why }, 'worker stopping');
  await server.stop();
  stopNodeWideMetrics();
  try {
    const statistics = runFilePaths(config).statistics.replace(/(\.json)?$/, `.worker${index}.json`);
    await writeStatistics(statistics, server.metrics, { startedAt: server.startedAt, version: VERSION });
  } catch (e) {
    log.error({ err: e }, 'cannot write the statistics');
  }
  log.info('worker stopped');
  requests.cancel();
  // Lets the last log lines reach the primary, then closes the channel so that the process ends.
  await new Promise<void>((resolve) => { if (process.connected) process.send!({ sb: 'bye' }, () => resolve()); else resolve(); });
  if (process.connected) process.disconnect();
  return 0;
}

process.exitCode = await runWorker();
