// Sockudo's `[idempotency]` section and its per-app override: a repeat of a publish with the
// same idempotency key within the window is answered like the first and not published again.
// An app's unset values take the server-wide ones (resolved when a publish reads them, so apps
// from MySQL are covered too: edge/http/idempotency.ts).
import { z } from 'zod';
import { lenient } from './lenient.js';

/** The longest window: a day (NATS's key-value bucket keeps values a day by default). */
const MAX_TTL_SECONDS = 86_400;

const ttlSeconds = z.number().int().positive().max(MAX_TTL_SECONDS);

export const idempotencySchema = z
  .object({
    enabled: z.boolean().default(true),
    /** how long a completed publish's answer is kept for repeats of its key */
    ttl_seconds: lenient(ttlSeconds.default(120)),
    /** the longest key accepted (characters); longer keys are refused with 400 */
    max_key_length: lenient(z.number().int().min(1).max(1024).default(128)),
  })
  .prefault({});

/** Per app (Sockudo's `apps[].idempotency` and `apps[].policy.idempotency`): null takes the server-wide value. */
export const appIdempotencySchema = z
  .object({
    enabled: z
      .boolean()
      .nullish()
      .transform((v) => v ?? null),
    ttl_seconds: lenient(ttlSeconds.nullish()).transform((v) => v ?? null),
  })
  .nullish()
  .transform((v) => v ?? { enabled: null, ttl_seconds: null });

/** The keys an app's idempotency block may hold (the rest of a Sockudo policy block is reported). */
export const APP_IDEMPOTENCY_KEYS: readonly string[] = ['enabled', 'ttl_seconds'];
