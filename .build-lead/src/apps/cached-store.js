export class CachedAppStore {
    inner;
    ttlMs;
    onStale;
    byKey = new Map();
    byId = new Map();
    inFlight = new Map();
    /** bound on cached lookups; the oldest go first past it (unknown keys from a flood included) */
    maxEntries = 100_000;
    constructor(inner, ttlMs, onStale = () => undefined) {
        this.inner = inner;
        this.ttlMs = ttlMs;
        this.onStale = onStale;
    }
    findByKey(key) {
        return this.lookup(this.byKey, `k:${key}`, key, () => this.inner.findByKey(key));
    }
    findById(id) {
        return this.lookup(this.byId, `i:${id}`, id, () => this.inner.findById(id));
    }
    lookup(cache, flightKey, key, load) {
        const hit = cache.get(key);
        if (hit && Date.now() - hit.fetchedAt < this.ttlMs)
            return Promise.resolve(hit.app);
        const pending = this.inFlight.get(flightKey);
        if (pending)
            return pending;
        const p = load()
            .then((app) => {
            this.remember(app, cache, key);
            return app;
        })
            .catch((err) => {
            if (hit?.app) {
                this.onStale(err);
                return hit.app;
            }
            throw err;
        })
            .finally(() => this.inFlight.delete(flightKey));
        this.inFlight.set(flightKey, p);
        return p;
    }
    remember(app, cache, key) {
        const entry = { app, fetchedAt: Date.now() };
        if (cache.size >= this.maxEntries)
            cache.delete(cache.keys().next().value);
        cache.delete(key);
        cache.set(key, entry);
        // A hit by key also answers by id and the other way round.
        if (app) {
            const other = cache === this.byKey ? this.byId : this.byKey;
            const otherKey = cache === this.byKey ? app.id : app.key;
            other.delete(otherKey);
            other.set(otherKey, entry);
        }
    }
    async list() {
        return this.inner.list();
    }
    /** Drops everything cached (SIGHUP, tests). */
    clear() {
        this.byKey.clear();
        this.byId.clear();
    }
    close() {
        return this.inner.close();
    }
}
