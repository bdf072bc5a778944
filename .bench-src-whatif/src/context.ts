// The parts a request or frame handler may use, built once by server.ts.
import type { Logger } from 'pino';
import type { AppStore } from './apps/store.js';
import type { ChannelHub } from './channels/hub.js';
import type { LocalRegistry } from './channels/registry.js';
import type { Adapter } from './cluster/adapter.js';
import type { Config } from './config/schema.js';
import type { Metrics } from './metrics/metrics.js';
import type { RateLimiter } from './rate-limit/limiter.js';
import type { WebhookSink } from './webhooks/events.js';

export interface NodeContext {
  config: Config;
  log: Logger;
  apps: AppStore;
  registry: LocalRegistry;
  adapter: Adapter;
  hub: ChannelHub;
  metrics: Metrics;
  webhooks: WebhookSink;
  rateLimiter: RateLimiter;
  /** true once a drain has begun: new connections and /up are refused */
  draining: boolean;
}
