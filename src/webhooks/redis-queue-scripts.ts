// The Lua scripts of the Redis webhook queue (redis-queue.ts). Every key a
// script touches is passed in KEYS and shares the queue's hash tag, so each
// script runs on one Redis Cluster slot. `count` is an app's queued-batch
// counter: raised with the push, lowered with the removal that ends a job,
// in the same script, so it cannot drift from the lists by a crash in between.

/** KEYS: queue, delayed, count. ARGV: job, max per app, max in all, count ttl. 0 queued, 1 app full, 2 queue full. */
export const PUSH = `
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[2]) then return 1 end
if redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 2 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 0
`;

/** KEYS: processing, count. ARGV: job, count ttl. Ends a job (sent or given up); 0 when another node had it already. */
export const FINISH = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) else redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
`;

/** KEYS: processing, delayed, count. ARGV: job as taken, due (unix ms), job to store, count ttl. A retry or deferral. */
export const RESCHEDULE = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
return 1
`;

/** KEYS: delayed, queue. ARGV: now. Moves up to 100 due retries back to the queue. */
export const PROMOTE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('LPUSH', KEYS[2], job)
end
return #due
`;

/** KEYS: a processing list, queue. Moves a (lost) node's in-flight jobs back; counts do not change. */
export const REQUEUE_ALL = `
local moved = 0
while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do moved = moved + 1 end
return moved
`;
