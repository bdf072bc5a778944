// What the HTTP edge needs: its own settings and the parts it calls.
import type { Logger } from 'pino';
import type { AppStore } from '../../apps/store.js';
import type { Core } from '../../core/core.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { RateLimiter } from '../../rate-limit/limiter.js';
import type { BodyBudget } from './body.js';
import type { CorsSettings } from './cors.js';

export interface HttpSettings {
  pathPrefix: string;
  /** Sockudo's api_rate_limit: requests one address may make to /apps/... per window (null: off) */
  apiIpLimit: { maxRequests: number; windowSeconds: number; trustHops: number } | null;
  /** Sockudo's http_api.request_limit_in_mb: no request body is read past it */
  maxBodyBytes: number;
  cors: CorsSettings;
  /** Sockudo's [idempotency]: the server-wide values; an app's own enabled / ttl_seconds win */
  idempotency: IdempotencySettings;
}

export interface IdempotencySettings {
  enabled: boolean;
  ttlSeconds: number;
  maxKeyLength: number;
}

export interface HttpDeps {
  settings: HttpSettings;
  core: Core;
  apps: AppStore;
  metrics: Metrics;
  rateLimiter: RateLimiter;
  bodyBudget: BodyBudget;
  isDraining(): boolean;
  /** Null when serving; else why not (start-up waiting for its broker). */
  notServing(): string | null;
  log: Logger;
}

/** A request as the endpoint handlers see it: authenticated, its body read. */
export interface Call {
  params: Map<string, string>;
  /** route parameters after the app id, decoded */
  args: string[];
  body: Buffer;
  /** the X-Idempotency-Key header ('' when absent), read in the handler's synchronous part */
  idempotencyHeader: string;
}
