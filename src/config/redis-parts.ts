// Sockudo's per-part Redis sections: `queue.redis`, `rate_limiter.redis`, `cache.redis`, and
// the adapter's `redis_pub_options` / `redis_sub_options`. Each part may use another Redis
// (url_override), a Redis Cluster (cluster_mode) and its own key prefix; unset, a part uses
// `database.redis` as every other part does.
import { z } from 'zod';
import { lenient } from './lenient.js';

/** A Redis URL is checked here, so a typo stops start-up naming the key instead of failing at connect. */
const redisUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'redis:' || url.protocol === 'rediss:';
    } catch {
      return false;
    }
  },
  { message: 'must be a redis:// or rediss:// URL' },
);

const partFields = {
  /** Replaces `database.redis.key_prefix` for this part's keys. */
  prefix: z.string().min(1).nullish(),
  /** Another Redis for this part: redis://[user:password@]host[:port][/db] or rediss://. */
  url_override: redisUrl.nullish(),
  /** This part on a Redis Cluster (seeds: database.redis.cluster_nodes, else the url_override's host). */
  cluster_mode: z.boolean().default(false),
};

export const partRedisSchema = z.object(partFields).prefault({});

export const queueRedisSchema = z
  .object({
    ...partFields,
    /** Sockudo's worker count: the webhook deliveries a node runs at once (webhooks.max_concurrency wins). */
    concurrency: lenient(z.number().int().positive().nullish()),
    /** Bound on one queue command, in ms (default 5000). */
    response_timeout_ms: lenient(z.number().int().positive().nullish()),
  })
  .prefault({});

/** Sockudo reads only `url` from these maps; other keys are reported as unknown. */
export const pubSubOptionsSchema = z.object({ url: redisUrl.nullish() }).prefault({});

export type PartRedis = z.output<typeof partRedisSchema>;

/** Sockudo's queue.redis.concurrency sizes the webhook deliveries when webhooks.max_concurrency is not set. */
export function foldQueueConcurrency(raw: Record<string, unknown>): void {
  const queue = raw.queue as { redis?: { concurrency?: unknown } } | undefined;
  const concurrency = queue?.redis?.concurrency;
  if (concurrency === undefined || concurrency === null) return;
  const webhooks = (raw.webhooks ??= {}) as Record<string, unknown>;
  if (typeof webhooks !== 'object' || Array.isArray(webhooks)) return;
  webhooks.max_concurrency ??= concurrency;
}

/**
 * Chorus keeps cache channels' last events in the adapter's broker, next to the channels'
 * topics, so a separate cache Redis cannot be honoured: such a setting is refused, naming it.
 */
export function cacheRedisRefusal(cache: PartRedis): string | null {
  const set = (['url_override', 'cluster_mode', 'prefix'] as const).filter(
    (k) => cache[k] !== null && cache[k] !== undefined && cache[k] !== false,
  );
  if (set.length === 0) return null;
  return (
    `cache.redis.${set[0]}: Chorus keeps cache channels in the adapter's broker (adapter.driver and database.redis), ` +
    'not in a separate cache Redis; remove the key (or point database.redis / adapter.redis at that server)'
  );
}
