// Cluster-wide state a node cannot hold by itself: connection quotas, the cache
// of cache channels and the idempotency keys of publishes. Two implementations behind
// one port, chosen once at connect: in the broker (exact), or per node when the broker
// has no shared state (NATS without JetStream) — quotas from a count of the live nodes,
// the cache and the idempotency keys per node.
import type { Logger } from 'pino';
import type { Transport } from '../../transports/transport.js';
import { brokerKey } from '../keys.js';
import { IDEMPOTENCY_IN_FLIGHT_MS } from '../../config/limits.js';
import type { ChannelCache, ConnectionQuotas, LedgerScope, LocalView, PublishLedger } from '../ports.js';
import { BUSY, decodeAnswer, encodeAnswer, FIRST, MemoryLedger } from '../publish-ledger.js';
import { TtlCache } from '../ttl-cache.js';

/** How long a publish to a cache channel waits for the broker to store it. */
const CACHE_WRITE_WAIT_MS = 2000;

export interface SharedState {
  readonly quotas: ConnectionQuotas;
  readonly cache: ChannelCache;
  readonly ledger: PublishLedger;
}

export interface BrokerStateDeps {
  transport: Transport;
  keyPrefix: string;
  nodeId: string;
  /** the live nodes, once this node has heard every peer (null before: it cannot tell dead counts yet) */
  liveNodes(): readonly string[] | null;
  log: Logger;
}

export function brokerState(d: BrokerStateDeps): SharedState {
  const quotaKey = (appId: string) => brokerKey(d.keyPrefix, 'conns', appId);
  const cacheKey = (appId: string, channel: string) => brokerKey(d.keyPrefix, 'cache', appId, channel);
  const ledgerKey = (appId: string, scope: LedgerScope, key: string) => brokerKey(d.keyPrefix, 'idem', scope, appId, key);
  return {
    quotas: {
      reserve: async (appId, max) => {
        try {
          return await d.transport.quotaTake(quotaKey(appId), d.nodeId, max, d.liveNodes());
        } catch (err) {
          // Fail open: a broker outage must not lock every client out.
          d.log.warn({ app_id: appId, err: (err as Error).message }, 'connection quota unavailable, admitting');
          return true;
        }
      },
      release: (appId) => {
        d.transport.quotaRelease(quotaKey(appId), d.nodeId).catch(() => undefined);
      },
    },
    cache: {
      set: (appId, channel, frame, ttlSeconds) => {
        // Waited for by the publish, but not for long: a frozen broker must not hang the API.
        let timer: NodeJS.Timeout | undefined;
        const enough = new Promise<void>((resolve) => (timer = setTimeout(resolve, CACHE_WRITE_WAIT_MS)));
        const write = d.transport
          .put(cacheKey(appId, channel), frame, ttlSeconds * 1000)
          .catch((err: Error) => d.log.warn({ app_id: appId, channel, err: err.message }, 'cache write failed'))
          .finally(() => clearTimeout(timer));
        return Promise.race([write, enough]);
      },
      get: async (appId, channel) => {
        try {
          const hit = await d.transport.get(cacheKey(appId, channel));
          return hit ? { frame: hit.value, ttl: Math.ceil(hit.ttlMs / 1000) } : null;
        } catch (err) {
          d.log.warn({ app_id: appId, channel, err: (err as Error).message }, 'cache read failed');
          return null;
        }
      },
    },
    // One key per idempotency key: the claim (the transport's marker, atomic: one winner across
    // the cluster) until the first publish completes, then its answer for the window. Errors
    // reach the caller, which fails closed. A claim released by abandon is deleted whoever holds
    // it: only a publish in flight longer than IDEMPOTENCY_IN_FLIGHT_MS could lose another's.
    ledger: {
      begin: async (appId, scope, key) => {
        const k = ledgerKey(appId, scope, key);
        for (let attempt = 0; attempt < 2; attempt++) {
          if (await d.transport.claim(k, IDEMPOTENCY_IN_FLIGHT_MS)) return FIRST;
          const hit = await d.transport.get(k);
          // Released or expired between the claim and the read: claim again (once).
          if (hit === null) continue;
          const answer = decodeAnswer(hit.value);
          return answer ? { kind: 'done', answer } : BUSY;
        }
        return BUSY;
      },
      complete: (appId, scope, key, answer, windowMs) => d.transport.put(ledgerKey(appId, scope, key), encodeAnswer(answer), windowMs),
      abandon: async (appId, scope, key) => {
        await d.transport.take(ledgerKey(appId, scope, key));
      },
    },
  };
}

export interface NodeStateDeps {
  local: () => LocalView | null;
  /** connections of the app on the other live nodes (a request to them) */
  countElsewhere(appId: string): Promise<number>;
}

/**
 * Without shared state: the quota from the cluster's count now (concurrent upgrades may overshoot a
 * little), the cache and the idempotency keys per node (a repeat that reaches another node publishes again).
 */
export function nodeLocalState(d: NodeStateDeps): SharedState {
  const entries = new TtlCache<string>();
  return {
    quotas: {
      reserve: async (appId, max) => (d.local()?.connectionCount(appId) ?? 0) + (await d.countElsewhere(appId)) < max,
      release: () => undefined,
    },
    cache: {
      set: (appId, channel, frame, ttlSeconds) => {
        entries.set(JSON.stringify([appId, channel]), frame, ttlSeconds * 1000);
        return undefined;
      },
      get: async (appId, channel) => {
        const hit = entries.get(JSON.stringify([appId, channel]));
        return hit ? { frame: hit.value, ttl: Math.ceil(hit.remainingMs / 1000) } : null;
      },
    },
    ledger: new MemoryLedger(),
  };
}
