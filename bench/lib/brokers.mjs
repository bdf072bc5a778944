// Brokers for the bench: the test suite's own helpers (test/helpers/brokers.ts, compiled by
// `npm run bench` into .build-test), plus the environment that points a node at each.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './node.mjs';

const COMPILED = join(ROOT, '.build-test/test/helpers/brokers.js');
if (!existsSync(COMPILED)) throw new Error(`${COMPILED} missing: run npm run bench (or npx tsc -p tsconfig.test.json) first`);
const helpers = await import(COMPILED);

export async function startRedis() {
  const b = await helpers.startRedis();
  return {
    port: b.port,
    stop: () => b.stop(),
    pids: [b.proc.pid],
    env: { ADAPTER_DRIVER: 'redis', DATABASE_REDIS_HOST: '127.0.0.1', DATABASE_REDIS_PORT: String(b.port) },
  };
}

/** Six redis-server processes joined by `redis-cli --cluster create` (3 masters, 3 replicas). */
export async function startRedisCluster() {
  const c = await helpers.startRedisCluster();
  return {
    stop: () => c.stop(),
    pids: c.nodes.map((n) => n.proc.pid),
    env: { ADAPTER_DRIVER: 'redis-cluster', REDIS_CLUSTER_NODES: c.seeds },
  };
}

export async function startNats() {
  const b = await helpers.startNats();
  return {
    port: b.port,
    stop: () => b.stop(),
    pids: [b.proc.pid],
    env: { ADAPTER_DRIVER: 'nats', NATS_SERVERS: `nats://127.0.0.1:${b.port}` },
  };
}

export const BROKERS = { redis: startRedis, 'redis-cluster': startRedisCluster, nats: startNats };
