// Builds the validated config: defaults < file < environment.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema } from './schema.js';
import { applyEnv, defaultAppFromEnv } from './env.js';
import { ConfigError } from './errors.js';
import { findUnknownKeys } from './unknown-keys.js';
export const DEMO_APP = {
    id: 'app-id',
    key: 'app-key',
    secret: 'app-secret',
    enable_client_messages: true,
};
function readJsonFile(path) {
    let text;
    try {
        text = readFileSync(path, 'utf8');
    }
    catch (err) {
        throw new ConfigError(`cannot read config file ${path}: ${err.code ?? String(err)}`);
    }
    let parsed;
    try {
        parsed = JSON.parse(text);
    }
    catch (err) {
        throw new ConfigError(`config file ${path} is not valid JSON: ${err.message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new ConfigError(`config file ${path} must hold a JSON object`);
    }
    return parsed;
}
function describeIssue(issue) {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
    return `${path || '(root)'}: ${issue.message}`;
}
/** Sockudo names the static app list `app_manager.array.apps`; older files use `app_manager.apps`. */
function normaliseAppList(raw) {
    const manager = raw.app_manager;
    if (!manager || typeof manager !== 'object' || !Array.isArray(manager.apps))
        return;
    const array = (manager.array ?? {});
    if (array.apps === undefined)
        array.apps = manager.apps;
    manager.array = array;
    delete manager.apps;
}
/** Sockudo also reads a top-level `cluster_health` (older files): it fills `adapter.cluster_health`. */
function normaliseClusterHealth(raw) {
    const top = raw.cluster_health;
    if (!top || typeof top !== 'object' || Array.isArray(top))
        return;
    const adapter = (raw.adapter ??= {});
    adapter.cluster_health = { ...top, ...(adapter.cluster_health ?? {}) };
    delete raw.cluster_health;
}
function withApps(raw, env) {
    const manager = (raw.app_manager ??= {});
    const array = (manager.array ??= {});
    const fromEnv = defaultAppFromEnv(env);
    if (array.apps === undefined) {
        array.apps = [{ ...DEMO_APP, ...fromEnv }];
    }
    else if (Array.isArray(array.apps) && fromEnv.id !== undefined) {
        const apps = array.apps;
        if (!apps.some((a) => String(a?.id) === String(fromEnv.id)))
            apps.push({ ...DEMO_APP, ...fromEnv });
    }
}
export function loadConfig(options = {}) {
    const env = options.env ?? process.env;
    const cwd = options.cwd ?? process.cwd();
    let source = null;
    const explicit = options.file ?? env.CONFIG_FILE;
    if (explicit)
        source = resolve(cwd, explicit);
    else if (existsSync(resolve(cwd, 'config/config.json')))
        source = resolve(cwd, 'config/config.json');
    const raw = source ? readJsonFile(source) : {};
    normaliseAppList(raw);
    normaliseClusterHealth(raw);
    const unknownKeys = findUnknownKeys(configSchema, raw);
    applyEnv(raw, env);
    withApps(raw, env);
    const result = configSchema.safeParse(raw);
    if (!result.success) {
        const lines = result.error.issues.map(describeIssue);
        throw new ConfigError(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${lines.join('\n  ')}`);
    }
    const config = result.data;
    const ids = new Set();
    const keys = new Set();
    for (const app of config.app_manager.array.apps ?? []) {
        if (ids.has(app.id))
            throw new ConfigError(`app_manager.array.apps: duplicate app id "${app.id}"`);
        if (keys.has(app.key))
            throw new ConfigError(`app_manager.array.apps: duplicate app key "${app.key}"`);
        ids.add(app.id);
        keys.add(app.key);
    }
    return { config, source, unknownKeys };
}
