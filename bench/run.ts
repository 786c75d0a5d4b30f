import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  loginScenario,
  memoryScenario,
  messagingScenario,
  type BenchOptions,
  type Results,
} from './scenarios.js';
import { LOAD_OPTIONS, parseTargets, positiveInteger } from './options.js';

const USAGE = `npm run bench -- [options]
  --scenario login|messaging|memory|all   default all (memory, first, only with --pid)
  --target host:port[,host:port...]       default 127.0.0.1:5222; several: a cluster's nodes, accounts in turn
  --domain D                              default localhost
  --users N                               accounts <prefix>1..N; messaging uses N/2 pairs (default 200)
  --password P                            default bench
  --user-prefix S                         default bench
  --duration SECONDS                      messaging duration (default 10)
  --in-flight K                           messages in flight per messaging pair (default 10)
  --concurrency C                         logins at once (default 50)
  --pid PID                               server process, for the memory scenario (VmRSS)
  --json                                  print the results as JSON`;

function parseOptions(): { options: BenchOptions; scenarios: string[]; json: boolean } {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      target: { type: 'string', default: '127.0.0.1:5222' },
      pid: { type: 'string' },
      ...LOAD_OPTIONS,
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const targets = parseTargets(values.target);
  const { host, port } = targets[0]!;
  const pid = values.pid === undefined ? undefined : positiveInteger('pid', values.pid);
  // Memory first: RSS rarely shrinks, so a heap grown by earlier scenarios would absorb new sessions unseen.
  const scenarios = values.scenario === 'all' ? [...(pid ? ['memory'] : []), 'login', 'messaging'] : [values.scenario];
  if (!scenarios.every((s) => ['login', 'messaging', 'memory'].includes(s))) throw new Error(`unknown --scenario "${values.scenario}"\n${USAGE}`);
  return {
    options: {
      host,
      port,
      targets,
      domain: values.domain,
      users: positiveInteger('users', values.users),
      password: values.password,
      userPrefix: values['user-prefix'],
      concurrency: positiveInteger('concurrency', values.concurrency),
      durationSeconds: positiveInteger('duration', values.duration),
      inFlightPerPair: positiveInteger('in-flight', values['in-flight']),
      loginTimeoutMs: 30_000,
      pid,
    },
    scenarios,
    json: values.json,
  };
}

function describe(scenario: string, results: Results): string {
  const { login, messaging, memory } = results;
  switch (scenario) {
    case 'login':
      return `login      ${login!.sessions} sessions in ${login!.seconds} s: ${login!.loginsPerSecond} logins/s, latency p50 ${login!.latency.p50Ms} ms, p99 ${login!.latency.p99Ms} ms`;
    case 'messaging':
      return `messaging  ${messaging!.pairs} pairs x ${messaging!.inFlightPerPair} in flight for ${messaging!.seconds} s: ${messaging!.messagesPerSecond} msgs/s, latency p50 ${messaging!.latency.p50Ms} ms, p99 ${messaging!.latency.p99Ms} ms`;
    default:
      return `memory     ${memory!.sessions} idle sessions: RSS ${memory!.rssBeforeKiB} -> ${memory!.rssAfterKiB} KiB, ${memory!.kibPerSession} KiB/session`;
  }
}

async function main(): Promise<void> {
  const { options, scenarios, json } = parseOptions();
  const results: Results = { target: (options.targets ?? [options]).map((t) => `${t.host}:${t.port}`).join(','), domain: options.domain, users: options.users };
  if (!json) console.log(`target ${results.target}, domain ${options.domain}, ${options.users} users`);
  for (const [i, scenario] of scenarios.entries()) {
    if (i > 0) await sleep(1000); // let the server finish closing the previous scenario's sessions
    if (scenario === 'login') results.login = await loginScenario(options);
    else if (scenario === 'messaging') results.messaging = await messagingScenario(options);
    else results.memory = await memoryScenario(options);
    if (!json) console.log(describe(scenario, results));
  }
  if (json) console.log(JSON.stringify(results, null, 2));
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
