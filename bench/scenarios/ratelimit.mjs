// 8. Rate-limit check cost (issue 5): one `consume` as the HTTP API calls it,
// with the local fixed window and with Redis (one Lua round trip), sequential
// (latency) and with 64 checks in flight (throughput). CPU is this process's
// own (utime+stime), so it includes the ioredis client's work.
import { Redis } from 'ioredis';
import pino from 'pino';
import { LocalRateLimiter } from '../../dist/rate-limit/limiter.js';
import { RedisRateLimiter } from '../../dist/rate-limit/redis-limiter.js';
import { startRedis } from '../lib/brokers.mjs';
import { round, scoped } from '../lib/harness.mjs';

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function measure(limiter, count, inFlight) {
  const t0 = process.hrtime.bigint();
  const c0 = cpuNow();
  let next = 0;
  let allowed = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      // A limit that is never reached: every check runs the whole script.
      if (await limiter.consume('bench:app', 1, 1e12)) allowed++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    checks: count,
    allowed,
    per_s: round(count / seconds, 0),
    us_per_check: round((seconds * 1e6) / count, 2),
    cpu_us_per_check: round(((cpuNow() - c0) * 1e6) / count, 2),
  };
}

export async function ratelimit(cfg, emit) {
  const count = cfg.ratelimit?.checks ?? 20_000;
  const local = new LocalRateLimiter();
  await measure(local, 10_000, 1);
  emit({ scenario: 'ratelimit', driver: 'memory', in_flight: 1, ...(await measure(local, count * 10, 1)) });
  await scoped(async (res) => {
    const redis = await startRedis();
    res.add(redis, () => redis.stop());
    const client = new Redis({ host: '127.0.0.1', port: redis.port, enableOfflineQueue: true });
    const limiter = new RedisRateLimiter(client, 'bench:', true, pino({ level: 'silent' }));
    res.add(limiter, () => limiter.close());
    await measure(limiter, 2000, 1);
    for (const inFlight of [1, 64])
      emit({ scenario: 'ratelimit', driver: 'redis', in_flight: inFlight, ...(await measure(limiter, count, inFlight)) });
  });
}
