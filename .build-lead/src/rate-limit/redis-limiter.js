const SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local points = tonumber(ARGV[1])
if used + points > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], points)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;
export class RedisRateLimiter {
    prefix;
    failOpen;
    log;
    client;
    failing = false;
    constructor(client, prefix, failOpen, log) {
        this.prefix = prefix;
        this.failOpen = failOpen;
        this.log = log;
        client.defineCommand('chorusConsume', { numberOfKeys: 1, lua: SCRIPT });
        client.on('error', () => undefined);
        this.client = client;
    }
    async consume(key, points, limit, windowMs = 1000) {
        const now = Date.now();
        const window = now - (now % windowMs);
        // The window start is part of the key, so a window's count never leaks into the next.
        const redisKey = `${this.prefix}rl:${key}:${window}`;
        try {
            const allowed = (await this.client.chorusConsume(redisKey, points, limit, windowMs * 2)) === 1;
            if (this.failing) {
                this.failing = false;
                this.log.info('rate limiter reaches Redis again');
            }
            return allowed;
        }
        catch (err) {
            if (!this.failing) {
                this.failing = true;
                this.log.error({ err: err.message, fail_open: this.failOpen }, 'rate limiter cannot reach Redis');
            }
            return this.failOpen;
        }
    }
    async close() {
        await this.client.quit().catch(() => this.client.disconnect());
    }
}
