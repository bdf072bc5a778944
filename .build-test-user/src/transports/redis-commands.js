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
