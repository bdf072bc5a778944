// A TTL cache in front of a slow app store (MySQL). A lookup that misses makes
// one query however many connections ask at once (no stampede); when the store
// fails, apps already known are served from the cache, however old.
import type { App } from './app.js';
import type { AppStore } from './store.js';

interface Entry {
  app: App | null;
  fetchedAt: number;
}

export class CachedAppStore implements AppStore {
  private readonly byKey = new Map<string, Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<App | null>>();
  /** bound on cached lookups; the oldest go first past it (unknown keys from a flood included) */
  private readonly maxEntries = 100_000;

  constructor(
    private readonly inner: AppStore,
    private readonly ttlMs: number,
    private readonly onStale: (error: Error) => void = () => undefined,
  ) {}

  findByKey(key: string): Promise<App | null> {
    return this.lookup(this.byKey, `k:${key}`, key, () => this.inner.findByKey(key));
  }

  findById(id: string): Promise<App | null> {
    return this.lookup(this.byId, `i:${id}`, id, () => this.inner.findById(id));
  }

  private lookup(cache: Map<string, Entry>, flightKey: string, key: string, load: () => Promise<App | null>): Promise<App | null> {
    const hit = cache.get(key);
    const fresh = this.freshApp(hit);
    if (fresh !== undefined) return Promise.resolve(fresh);
    const pending = this.inFlight.get(flightKey);
    if (pending) return pending;
    const p = load()
      .then((app) => {
        this.remember(app, cache, key);
        return app;
      })
      .catch((err: Error) => {
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

  private remember(app: App | null, cache: Map<string, Entry>, key: string): void {
    const entry = { app, fetchedAt: Date.now() };
    if (cache.size >= this.maxEntries) cache.delete(cache.keys().next().value!);
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

  peekById(id: string): App | null | undefined {
    return this.freshApp(this.byId.get(id));
  }

  peekByKey(key: string): App | null | undefined {
    return this.freshApp(this.byKey.get(key));
  }

  /** A cached answer while it is within its TTL (null: known absent), else undefined. */
  private freshApp(hit: Entry | undefined): App | null | undefined {
    return hit && Date.now() - hit.fetchedAt < this.ttlMs ? hit.app : undefined;
  }

  async list(): Promise<App[]> {
    return this.inner.list();
  }

  /** Drops everything cached (SIGHUP, tests). */
  clear(): void {
    this.byKey.clear();
    this.byId.clear();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
