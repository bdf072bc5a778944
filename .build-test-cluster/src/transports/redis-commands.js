export async function claim(client, key, ttlMs) {
    return (await client.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK';
}
export async function take(client, key) {
    return (await client.del(key)) === 1;
}
export async function put(client, key, value, ttlMs) {
    await client.set(key, value, 'PX', ttlMs);
}
export async function get(client, key) {
    const result = await client.multi().get(key).pttl(key).exec();
    const value = result?.[0]?.[1];
    const ttl = result?.[1]?.[1];
    return value == null ? null : { value, ttlMs: ttl !== undefined && ttl > 0 ? ttl : 0 };
}
/** SADD or SREM, then SMEMBERS, in one transaction. */
export async function setChange(client, op, key, member) {
    const tx = client.multi();
    if (op === 'add')
        tx.sadd(key, member);
    else
        tx.srem(key, member);
    const result = await tx.smembers(key).exec();
    if (!result || result[0][0] || result[1][0])
        throw (result?.[0][0] ?? result?.[1][0] ?? new Error('transaction aborted'));
    return { changed: result[0][1] === 1, members: result[1][1] };
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
export async function quotaTake(client, key, member, max, live) {
    const args = [member, String(max), live ? '1' : '0', ...(live ?? [])];
    return (await client.eval(QUOTA_TAKE, 1, key, ...args)) === 1;
}
export async function quotaRelease(client, key, member) {
    await client.eval(QUOTA_RELEASE, 1, key, member);
}
