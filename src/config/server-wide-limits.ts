// Sockudo's and soketi's server-wide limit sections. Sockudo 5 accepts `channel_limits`,
// `event_limits` and `presence` but reads only its per-app values on the Pusher paths; soketi
// uses its server-wide limits as every app's defaults. Chorus does what soketi does, so a
// limit set there is neither dropped nor silently replaced by Chorus's own default.
import { z } from 'zod';

const size = z.preprocess(
  (v) => (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v),
  z.number().int().positive().nullish(),
);

export const serverWideLimitSchemas = {
  channel_limits: z.object({ max_name_length: size }).prefault({}),
  event_limits: z.object({ max_channels_at_once: size, max_name_length: size, max_payload_in_kb: size, max_batch_size: size }).prefault({}),
  presence: z.object({ max_members_per_channel: size, max_member_size_in_kb: size }).prefault({}),
};

/** [section, key in it, the per-app field it is the default of] */
export const SERVER_WIDE_DEFAULTS = [
  ['channel_limits', 'max_name_length', 'max_channel_name_length'],
  ['event_limits', 'max_channels_at_once', 'max_event_channels_at_once'],
  ['event_limits', 'max_name_length', 'max_event_name_length'],
  ['event_limits', 'max_payload_in_kb', 'max_event_payload_in_kb'],
  ['event_limits', 'max_batch_size', 'max_event_batch_size'],
  ['presence', 'max_members_per_channel', 'max_presence_members_per_channel'],
  ['presence', 'max_member_size_in_kb', 'max_presence_member_size_in_kb'],
] as const;

/**
 * Fills each configured app's unset limit from the server-wide section (before validation,
 * so the app schema checks the result). Apps from MySQL take their own columns.
 */
export function applyServerWideDefaults(raw: Record<string, unknown>): void {
  const manager = raw.app_manager as { array?: { apps?: unknown } } | undefined;
  const apps = manager?.array?.apps;
  if (!Array.isArray(apps)) return;
  for (const [section, key, field] of SERVER_WIDE_DEFAULTS) {
    const block = raw[section];
    if (!block || typeof block !== 'object' || Array.isArray(block)) continue;
    const value = (block as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    for (const app of apps) {
      if (app && typeof app === 'object' && (app as Record<string, unknown>)[field] == null)
        (app as Record<string, unknown>)[field] = value;
    }
  }
}
