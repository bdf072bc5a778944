// Builds the validated config: defaults < file < environment.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { applyEnv, DEFAULT_APP_ENV, defaultAppFromEnv, ENV_BINDINGS, LEGACY_CLIENT_MESSAGES_ENV } from './env.js';
import { applySoketiEnv } from './soketi-env.js';
import { findUnreadEnv } from './unread-env.js';
import { readConfigFile } from './read-file.js';
import { ConfigError } from './errors.js';
import { findUnknownKeys } from './unknown-keys.js';
import { applyServerWideDefaults } from './server-wide-limits.js';
import { foldAppPolicy } from './app-policy.js';
import { cacheRedisRefusal, foldQueueConcurrency } from './redis-parts.js';

export const DEMO_APP = {
  id: 'app-id',
  key: 'app-key',
  secret: 'app-secret',
  enable_client_messages: true,
} as const;

export interface LoadedConfig {
  config: Config;
  /** Where the file came from, or null for the embedded defaults. */
  source: string | null;
  /** Keys present in the file that Chorus does not use. */
  unknownKeys: string[];
  /** Set Sockudo / soketi environment variables that Chorus does not read, each with what to use instead. */
  unreadEnv: string[];
}

/** Every environment variable Chorus reads (the SOKETI_ ones are checked by their own reader). */
const READ_ENV: ReadonlySet<string> = new Set([
  ...ENV_BINDINGS.map((b) => b.env),
  ...Object.values(DEFAULT_APP_ENV),
  LEGACY_CLIENT_MESSAGES_ENV,
  'CONFIG_FILE',
  'LOG_LEVEL',
]);

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  return `${path || '(root)'}: ${issue.message}`;
}

/** Sockudo names the static app list `app_manager.array.apps`; older files use `app_manager.apps`. */
function normaliseAppList(raw: Record<string, unknown>): void {
  const manager = raw.app_manager as Record<string, unknown> | undefined;
  if (!manager || typeof manager !== 'object' || !Array.isArray(manager.apps)) return;
  const array = (manager.array ?? {}) as Record<string, unknown>;
  if (array.apps === undefined) array.apps = manager.apps;
  manager.array = array;
  delete manager.apps;
}

/** Sockudo 5's `policy` blocks folded into the flat app fields; returns the policy keys without a use. */
function foldAppPolicies(raw: Record<string, unknown>): string[] {
  const apps = (raw.app_manager as { array?: { apps?: unknown } } | undefined)?.array?.apps;
  if (!Array.isArray(apps)) return [];
  return apps.flatMap((app: unknown, i) =>
    app && typeof app === 'object' && !Array.isArray(app)
      ? foldAppPolicy(app as Record<string, unknown>, `app_manager.array.apps[${i}]`)
      : [],
  );
}

/** Sockudo also reads a top-level `cluster_health` (older files): it fills `adapter.cluster_health`. */
function normaliseClusterHealth(raw: Record<string, unknown>): void {
  const top = raw.cluster_health;
  if (!top || typeof top !== 'object' || Array.isArray(top)) return;
  const adapter = (raw.adapter ??= {}) as Record<string, unknown>;
  adapter.cluster_health = { ...(top as Record<string, unknown>), ...(adapter.cluster_health ?? {}) };
  delete raw.cluster_health;
}

/**
 * The default app from SOCKUDO_DEFAULT_APP_*, and the demo app. A secret is never filled in
 * silently: an id or key from the environment needs its secret, and outside the embedded
 * quick start (no config file at all) a node without apps does not start.
 */
function withApps(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  soketiApp: Record<string, unknown>,
  quickStart: boolean,
): 'missing' | null {
  const manager = (raw.app_manager ??= {}) as Record<string, unknown>;
  const array = (manager.array ??= {}) as Record<string, unknown>;
  const fromEnv = { ...soketiApp, ...defaultAppFromEnv(env) };
  const named = fromEnv.id !== undefined || fromEnv.key !== undefined;
  if (named && fromEnv.secret === undefined) {
    throw new ConfigError(
      `${DEFAULT_APP_ENV.id} / ${DEFAULT_APP_ENV.key} (or SOKETI_DEFAULT_APP_ID / _KEY) are set without ${DEFAULT_APP_ENV.secret} (or SOKETI_DEFAULT_APP_SECRET): set the app's secret (no default secret is used)`,
    );
  }
  if (array.apps === undefined) {
    if (named) array.apps = [{ ...DEMO_APP, ...fromEnv }];
    else if (quickStart) array.apps = [{ ...DEMO_APP, ...fromEnv }];
    else return 'missing';
  } else if (Array.isArray(array.apps) && named) {
    const apps = array.apps as Array<Record<string, unknown>>;
    if (!apps.some((a) => String(a?.id) === String(fromEnv.id))) apps.push({ ...DEMO_APP, ...fromEnv });
  }
  return null;
}

/** True when the config runs the documented demo app (its secret is in the README). */
export const runsDemoApp = (config: Config): boolean => (config.app_manager.array.apps ?? []).some((a) => a.secret === DEMO_APP.secret);

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.file ?? env.CONFIG_FILE;
  // Without a named file, Sockudo's order: config/config.toml, then config/config.json.
  const source = explicit
    ? resolve(cwd, explicit)
    : (['config/config.toml', 'config/config.json'].map((f) => resolve(cwd, f)).find((f) => existsSync(f)) ?? null);

  const raw = source ? readConfigFile(source, env) : {};
  normaliseAppList(raw);
  normaliseClusterHealth(raw);
  const unusedPolicy = foldAppPolicies(raw);
  const unknownKeys = [...findUnknownKeys(configSchema, raw), ...unusedPolicy];
  const soketi = applySoketiEnv(raw, env);
  applyEnv(raw, env);
  const unreadEnv = [...findUnreadEnv(env, READ_ENV), ...soketi.warnings];
  const apps = withApps(raw, env, soketi.defaultApp, source === null);
  applyServerWideDefaults(raw);
  foldQueueConcurrency(raw);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map(describeIssue);
    throw new ConfigError(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${lines.join('\n  ')}`);
  }
  const config = result.data;
  if (!config.adapter.cluster_health.enabled && config.adapter.driver !== 'local') {
    throw new ConfigError(
      'adapter.cluster_health.enabled: false is not supported with a broker adapter: Chorus counts occupancy and presence ' +
        "and cleans up after a dead node by its peers' heartbeats; remove the key and tune heartbeat_interval_ms / node_timeout_ms instead",
    );
  }
  const cacheRefusal = cacheRedisRefusal(config.cache.redis);
  if (cacheRefusal) throw new ConfigError(cacheRefusal);
  if (apps === 'missing' && (config.app_manager.driver === 'memory' || config.app_manager.driver === 'array')) {
    throw new ConfigError(
      `no apps configured: set app_manager.array.apps, or ${DEFAULT_APP_ENV.id}, ${DEFAULT_APP_ENV.key} and ${DEFAULT_APP_ENV.secret}, or app_manager.driver "mysql"`,
    );
  }
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const app of config.app_manager.array.apps ?? []) {
    if (ids.has(app.id)) throw new ConfigError(`app_manager.array.apps: duplicate app id "${app.id}"`);
    if (keys.has(app.key)) throw new ConfigError(`app_manager.array.apps: duplicate app key "${app.key}"`);
    ids.add(app.id);
    keys.add(app.key);
  }
  if (config.client.enabled === true && !isLoopbackHost(config.host) && !config.client.token) {
    throw new ConfigError(
      `client.enabled on host ${config.host} (beyond loopback) needs client.token (env CLIENT_TOKEN): ` +
        'the test client signs channel auth and sign-in for anyone who can reach it; set a token or listen on 127.0.0.1',
    );
  }
  if (config.console.enabled && !config.console.token) {
    throw new ConfigError(
      'console.enabled needs console.token (env CONSOLE_TOKEN): the console shows every app and may publish; there is no default token',
    );
  }
  if (config.console.enabled && !config.metrics.enabled) {
    throw new ConfigError('console.enabled needs metrics.enabled: the console is served on the metrics port, never on the public one');
  }
  return { config, source, unknownKeys, unreadEnv };
}

/** Addresses only this machine can reach. */
export const isLoopbackHost = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
