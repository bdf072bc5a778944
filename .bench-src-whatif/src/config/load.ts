// Builds the validated config: defaults < file < environment.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { applyEnv, defaultAppFromEnv } from './env.js';
import { ConfigError } from './errors.js';
import { findUnknownKeys } from './unknown-keys.js';

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
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
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

function withApps(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const manager = (raw.app_manager ??= {}) as Record<string, unknown>;
  const array = (manager.array ??= {}) as Record<string, unknown>;
  const fromEnv = defaultAppFromEnv(env);
  if (array.apps === undefined) {
    array.apps = [{ ...DEMO_APP, ...fromEnv }];
  } else if (Array.isArray(array.apps) && fromEnv.id !== undefined) {
    const apps = array.apps as Array<Record<string, unknown>>;
    if (!apps.some((a) => String(a?.id) === String(fromEnv.id))) apps.push({ ...DEMO_APP, ...fromEnv });
  }
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  let source: string | null = null;
  const explicit = options.file ?? env.CONFIG_FILE;
  if (explicit) source = resolve(cwd, explicit);
  else if (existsSync(resolve(cwd, 'config/config.json'))) source = resolve(cwd, 'config/config.json');

  const raw = source ? readJsonFile(source) : {};
  normaliseAppList(raw);
  const unknownKeys = findUnknownKeys(configSchema, raw);
  applyEnv(raw, env);
  withApps(raw, env);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map(describeIssue);
    throw new ConfigError(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${lines.join('\n  ')}`);
  }
  const config = result.data;
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const app of config.app_manager.array.apps ?? []) {
    if (ids.has(app.id)) throw new ConfigError(`app_manager.array.apps: duplicate app id "${app.id}"`);
    if (keys.has(app.key)) throw new ConfigError(`app_manager.array.apps: duplicate app key "${app.key}"`);
    ids.add(app.id);
    keys.add(app.key);
  }
  return { config, source, unknownKeys };
}
