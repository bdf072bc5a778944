// The broker-side operations Chorus needs from Redis, shared by the single-node
// and the cluster transport (each call touches one key, so one slot).
import type { Cluster, Redis } from 'ioredis';

type Client = Redis | Cluster;

export async function claim(client: Client, key: string, ttlMs: number): Promise<boolean> {
  return (await client.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK';
}

export async function take(client: Client, key: string): Promise<boolean> {
  return (await client.del(key)) === 1;
}

export async function put(client: Client, key: string, value: string, ttlMs: number): Promise<void> {
  await client.set(key, value, 'PX', ttlMs);
}

export async function get(client: Client, key: string): Promise<{ value: string; ttlMs: number } | null> {
  const result = await client.multi().get(key).pttl(key).exec();
  const value = result?.[0]?.[1] as string | null | undefined;
  const ttl = result?.[1]?.[1] as number | undefined;
  return value == null ? null : { value, ttlMs: ttl !== undefined && ttl > 0 ? ttl : 0 };
}

/** SADD or SREM, then SMEMBERS, in one transaction. */
export async function setChange(
  client: Client,
  op: 'add' | 'remove',
  key: string,
  member: string,
): Promise<{ changed: boolean; members: string[] }> {
  const tx = client.multi();
  if (op === 'add') tx.sadd(key, member);
  else tx.srem(key, member);
  const result = await tx.smembers(key).exec();
  if (!result || result[0][0] || result[1][0]) throw result?.[0][0] ?? result?.[1][0] ?? new Error('transaction aborted');
  return { changed: result[0][1] === 1, members: result[1][1] as string[] };
}

const QUOTA_TAKE = `
local prune = ARGV[3] == '1'
local live = {}
for i = 4, #ARGV do live[ARGV[i]] = true end
live[ARGV[1]] = true
local sum = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if (not prune) or live[all[i]] then sum = sum + tonumber(all[i + 1])
  else redis.call('HDEL', KEYS[1], all[i]) end
end
if sum >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
`;

const QUOTA_RELEASE = `
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return left
`;

export async function quotaTake(
  client: Client,
  key: string,
  member: string,
  max: number,
  live: readonly string[] | null,
): Promise<boolean> {
  const args = [member, String(max), live ? '1' : '0', ...(live ?? [])];
  return (await client.eval(QUOTA_TAKE, 1, key, ...args)) === 1;
}

export async function quotaRelease(client: Client, key: string, member: string): Promise<void> {
  await client.eval(QUOTA_RELEASE, 1, key, member);
}
