#!/usr/bin/env node
// chorus start [--config FILE] | --help | --version
import { isLoopbackHost, loadConfig, runsDemoApp } from './config/load.js';
import { ConfigError } from './config/errors.js';
import { createLogger } from './log.js';
import type { Logger } from 'pino';
import { startServer, type StartupError } from './server.js';
import { VERSION } from './version.js';
import { reloadApps } from './core/reload.js';
import { APPS_HELP, runApps, runMigrate } from './commands/apps.js';
import { runPrimary, workerCount } from './box/primary.js';
import { answerPrimary, workerConfig, workerPlace } from './box/worker.js';
import { holdYoungGeneration } from './box/young-generation.js';

const HELP = `Chorus ${VERSION}: a Pusher-compatible WebSocket server

Usage:
  chorus start [--config FILE] [--workers N|auto]
                                 start a node (FILE, or $CONFIG_FILE, or ./config/config.json, or defaults);
                                 --workers: N processes serve the port as one node (auto: one per core)
  chorus migrate [--config FILE] create the MySQL apps table
  chorus apps list|add|disable|enable [--config FILE]   manage apps in MySQL (chorus apps --help)
  chorus --help                  show this help
  chorus --version               print the version

Environment variables override the file (Sockudo's names: PORT, HOST, ADAPTER_DRIVER, ...).
LOG_LEVEL sets the log level (default info).
`;

interface Args {
  command: string | null;
  config?: string;
  /** --workers N|auto (over the config's `workers` and WORKERS) */
  workers?: number | 'auto';
  help: boolean;
  version: boolean;
  /** positional arguments after the command (for `apps`) */
  rest: string[];
  /** --name value flags of subcommands */
  flags: Map<string, string>;
}

/** Flags that subcommands take with a value. */
const VALUE_FLAGS = new Set(['id', 'key', 'secret', 'json']);

function parseWorkers(value: string | undefined): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n < 1 || n > 1024) {
    throw new ConfigError(
      `--workers needs a whole number from 1 to 1024 or "auto", got ${value === undefined ? 'nothing' : JSON.stringify(value)}`,
    );
  }
  return n;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { command: null, help: false, version: false, rest: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') args.help = true;
    else if (a === '--version' || a === '-v') args.version = true;
    else if (a === '--config' || a === '-c') {
      const next = argv[++i];
      if (!next) throw new ConfigError('--config needs a file path');
      args.config = next;
    } else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else if (a === '--workers' || a.startsWith('--workers=')) {
      const value = a === '--workers' ? argv[++i] : a.slice('--workers='.length);
      args.workers = parseWorkers(value);
    } else if (a.startsWith('--') && VALUE_FLAGS.has(a.slice(2)) && args.command === 'apps') {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`${a} needs a value`);
      args.flags.set(a.slice(2), next);
    } else if (!a.startsWith('-') && args.command === null) args.command = a;
    else if (!a.startsWith('-') && args.command === 'apps') args.rest.push(a);
    else throw new ConfigError(`unknown argument: ${a}`);
  }
  return args;
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chorus: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(args.command === 'apps' || args.command === 'migrate' ? `${APPS_HELP}\n` : HELP);
    return;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (args.command === 'migrate' || args.command === 'apps') {
    await runAdminCommand(args);
    return;
  }
  if (args.command !== 'start') {
    process.stderr.write(`chorus: ${args.command ? `unknown command "${args.command}"` : 'missing command'}\n\n${HELP}`);
    process.exit(2);
  }

  let log = createLogger();
  let loaded;
  try {
    loaded = loadConfig({ file: args.config });
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal({ code: err.code }, err.message);
      process.stderr.write(`chorus: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (args.workers !== undefined) loaded.config.workers = args.workers;
  // Sockudo's `debug` is verbose logging; LOG_LEVEL, when set, says exactly what is wanted.
  if (loaded.config.debug && !process.env.LOG_LEVEL) log.level = 'debug';
  const place = workerPlace();
  // Said once per box: by its primary, or by a node on its own.
  if (!place) {
    for (const key of loaded.unknownKeys) log.warn({ key }, `unknown config key "${key}" ignored`);
    for (const line of loaded.unreadEnv) log.warn(line);
    log.info({ config_file: loaded.source ?? '(embedded defaults)' }, 'configuration loaded');
  }
  if (!place && workerCount(loaded.config.workers) > 1) {
    try {
      await runPrimary({ config: loaded.config, configFile: args.config, cliPath: process.argv[1], log });
    } catch (err) {
      startupFailed(log, err as Error);
    }
    return;
  }
  if (place) {
    loaded.config = workerConfig(loaded.config, place);
    log = log.child({ worker: place.index });
  }

  const loopback = isLoopbackHost(loaded.config.host);
  if (runsDemoApp(loaded.config) && !loopback) {
    log.warn(
      { host: loaded.config.host },
      'an app uses the demo secret "app-secret" (documented in the README) and the node listens beyond loopback: anyone can publish; set your own secret',
    );
  }

  // A start-up that waits on something which can never happen (nothing left to run) must not
  // end as a silent exit 0: a supervisor would take that for a clean stop.
  const stalled = () => {
    log.fatal({ code: 'STARTUP_STALLED' }, 'start-up stopped making progress before the node could listen');
    process.stderr.write('chorus: start-up stopped making progress before the node could listen\n');
    process.exit(1);
  };
  process.once('beforeExit', stalled);
  // A node holding many idle sockets would otherwise keep a 32 MB young generation resident.
  holdYoungGeneration();
  let server;
  try {
    server = await startServer(loaded.config, log, place);
  } catch (err) {
    startupFailed(log, err as Error);
  }
  let stopping = false;
  // Listening, maybe still waiting for the broker: a refusal then still ends the process.
  server.ready.then(
    () => process.off('beforeExit', stalled),
    (err: Error) => {
      if (!stopping) startupFailed(log, err);
    },
  );

  const stop = (signal: string) => {
    stopping = true;
    process.off('beforeExit', stalled);
    log.info({ signal }, 'shutdown requested');
    const graceMs = loaded.config.shutdown_grace_period * 1000;
    const force = setTimeout(() => {
      log.warn('grace period over, exiting');
      process.exit(0);
    }, graceMs + 1000);
    force.unref();
    server.shutdown().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    try {
      const next = loadConfig({ file: args.config });
      reloadApps(server.apps, server.core.registry, next.config.app_manager.array.apps ?? []).then(
        (result) => {
          if (result) log.info(result, 'apps reloaded');
          else log.warn('SIGHUP ignored: apps come from a database (use its cache TTL)');
        },
        (err) => log.error({ err }, 'reload failed; keeping the current apps'),
      );
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload refused: invalid configuration; keeping the current apps');
    }
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  if (place) answerPrimary(server, log, (why) => stop(why));
}

function startupFailed(log: Logger, err: Error): never {
  log.fatal({ code: (err as StartupError).code ?? 'STARTUP_FAILED' }, err.message);
  process.stderr.write(`chorus: ${err.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

async function runAdminCommand(args: Args): Promise<void> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const { config } = loadConfig({ file: args.config });
    if (args.command === 'migrate') await runMigrate(config, out);
    else await runApps(config, args.rest, args.flags, out);
  } catch (err) {
    process.stderr.write(`chorus: ${(err as Error).message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}

main().catch((err) => {
  process.stderr.write(`chorus: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
