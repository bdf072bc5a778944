// Sockudo 5 writes an app's settings under `policy` — { limits, features, channels,
// webhooks, ... } — in config files and in its MySQL `policy` JSON column, and reads the
// older flat fields only when `policy` is absent. Chorus's app schema is the flat one, so
// a policy is folded into it before validation: a Sockudo 5 app keeps its limits and
// features instead of silently getting Chorus's defaults.
import { ConfigError } from './errors.js';
import { APP_IDEMPOTENCY_KEYS } from './idempotency.js';

/** policy.<group>.<key> → the flat app field with the same meaning. */
const POLICY_FIELDS: Record<string, readonly string[]> = {
  limits: [
    'max_connections',
    'max_backend_events_per_second',
    'max_client_events_per_second',
    'max_read_requests_per_second',
    'max_presence_members_per_channel',
    'max_presence_member_size_in_kb',
    'max_channel_name_length',
    'max_event_channels_at_once',
    'max_event_name_length',
    'max_event_payload_in_kb',
    'max_event_batch_size',
  ],
  features: ['enable_client_messages', 'enable_user_authentication', 'enable_watchlist_events'],
  channels: ['allowed_origins'],
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Folds `app.policy` into the flat fields (a policy value wins over a flat one, as in
 * Sockudo) and removes it. Returns the policy keys Chorus has no equivalent for, as paths
 * under `path`, so the caller reports them like any other key it does not use.
 */
export function foldAppPolicy(app: Record<string, unknown>, path: string): string[] {
  if (!('policy' in app)) return [];
  const policy = app.policy;
  delete app.policy;
  if (policy === null || policy === undefined) return [];
  if (!isRecord(policy)) throw new ConfigError(`${path}.policy must be an object`);
  const unused: string[] = [];
  for (const [group, value] of Object.entries(policy)) {
    if (group === 'webhooks') {
      if (value !== null && value !== undefined) app.webhooks = value;
      continue;
    }
    if (value === null || value === undefined) continue;
    if (group === 'idempotency') {
      unused.push(...foldIdempotency(app, value, path));
      continue;
    }
    if (group === 'history') {
      unused.push(...foldHistory(app, value, path));
      continue;
    }
    const fields = POLICY_FIELDS[group];
    if (!fields) {
      unused.push(`${path}.policy.${group}`);
      continue;
    }
    if (!isRecord(value)) throw new ConfigError(`${path}.policy.${group} must be an object`);
    for (const [key, setting] of Object.entries(value)) {
      if (!fields.includes(key)) unused.push(`${path}.policy.${group}.${key}`);
      else if (setting !== null && setting !== undefined) app[key] = setting;
    }
  }
  return unused;
}

/** policy.idempotency {enabled, ttl_seconds} over the app's own `idempotency` block (a policy value wins). */
function foldIdempotency(app: Record<string, unknown>, value: unknown, path: string): string[] {
  if (!isRecord(value)) throw new ConfigError(`${path}.policy.idempotency must be an object`);
  const flat = app.idempotency;
  const merged: Record<string, unknown> = isRecord(flat) ? { ...flat } : {};
  const unused: string[] = [];
  for (const [key, setting] of Object.entries(value)) {
    if (!APP_IDEMPOTENCY_KEYS.includes(key)) unused.push(`${path}.policy.idempotency.${key}`);
    else if (setting !== null && setting !== undefined) merged[key] = setting;
  }
  app.idempotency = merged;
  return unused;
}

/** Sockudo's policy.history names → Chorus's `history` block (a policy value wins). */
const HISTORY_NAMES: Record<string, string> = {
  enabled: 'enabled',
  retention_window_seconds: 'ttl_seconds',
  max_messages_per_channel: 'max_messages',
};

function foldHistory(app: Record<string, unknown>, value: unknown, path: string): string[] {
  if (!isRecord(value)) throw new ConfigError(`${path}.policy.history must be an object`);
  const merged: Record<string, unknown> = isRecord(app.history) ? { ...app.history } : {};
  const unused: string[] = [];
  for (const [key, setting] of Object.entries(value)) {
    const name = HISTORY_NAMES[key];
    if (!name) unused.push(`${path}.policy.history.${key}`);
    else if (setting !== null && setting !== undefined) merged[name] = setting;
  }
  app.history = merged;
  return unused;
}
