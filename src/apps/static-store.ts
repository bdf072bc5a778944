// Apps from the config file, held in memory. `replace` supports SIGHUP reloads.
import type { App } from './app.js';
import type { AppStore } from './store.js';

export class StaticAppStore implements AppStore {
  private byKey = new Map<string, App>();
  private byId = new Map<string, App>();

  constructor(apps: readonly App[]) {
    this.replace(apps);
  }

  replace(apps: readonly App[]): void {
    this.byKey = new Map(apps.map((a) => [a.key, a]));
    this.byId = new Map(apps.map((a) => [a.id, a]));
  }

  async findByKey(key: string): Promise<App | null> {
    return this.byKey.get(key) ?? null;
  }

  async findById(id: string): Promise<App | null> {
    return this.byId.get(id) ?? null;
  }

  peekById(id: string): App | null {
    return this.byId.get(id) ?? null;
  }

  peekByKey(key: string): App | null {
    return this.byKey.get(key) ?? null;
  }

  async list(): Promise<App[]> {
    return [...this.byId.values()];
  }

  async close(): Promise<void> {}
}
