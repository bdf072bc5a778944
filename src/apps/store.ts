// Where apps come from. Lookups are by key (WebSocket connect) and by id (HTTP API).
import type { App } from './app.js';

export interface AppStore {
  /** The app with this key, or null when none exists. Throws an AppStoreError when the source is unreachable. */
  findByKey(key: string): Promise<App | null>;
  /** The app with this id, or null when none exists. */
  findById(id: string): Promise<App | null>;
  /**
   * The app with this id if the store knows it without waiting (memory, or a fresh cache
   * entry): null when it knows there is none, undefined when it would have to ask.
   */
  peekById(id: string): App | null | undefined;
  /** The same by key (a WebSocket upgrade whose app is known is admitted without waiting). */
  peekByKey(key: string): App | null | undefined;
  /** Every app the store knows (used by reload and admin commands). */
  list(): Promise<App[]>;
  close(): Promise<void>;
}

export class AppStoreError extends Error {
  readonly code = 'APP_STORE_UNAVAILABLE';
}
