// Rate limits for the HTTP API: a fixed one-second window per key, which keeps
// "accepted per second" within the limit. Local by default; a Redis driver
// shares the window between nodes.
export class LocalRateLimiter {
    windows = new Map();
    sweeps = 0;
    async consume(key, points, limit, windowMs = 1000) {
        return this.consumeSync(key, points, limit, windowMs);
    }
    consumeSync(key, points, limit, windowMs = 1000) {
        const now = Date.now();
        const start = now - (now % windowMs);
        let w = this.windows.get(key);
        if (!w || w.start !== start) {
            if (++this.sweeps % 1024 === 0)
                this.sweep(now);
            w = { start, used: 0, len: windowMs };
            this.windows.set(key, w);
        }
        if (w.used + points > limit)
            return false;
        w.used += points;
        return true;
    }
    sweep(now) {
        for (const [k, w] of this.windows)
            if (now - w.start > w.len * 2)
                this.windows.delete(k);
    }
    async close() {
        this.windows.clear();
    }
}
