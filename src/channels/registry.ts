// What this node holds locally: sockets by id, per app its connections,
// channels with their local subscribers, and signed-in users.
import type { SocketData } from '../ws/socket.js';

/** A channel's local subscribers are only ever counted (each socket knows its own channels). */
export class LocalChannel {
  count = 0;
}

export class AppLocalState {
  connections = 0;
  readonly channels = new Map<string, LocalChannel>();
  /** user id -> sockets signed in as that user */
  readonly users = new Map<string, Set<SocketData>>();
  /** watched user id -> sockets whose watchlist holds it */
  readonly watchers = new Map<string, Set<SocketData>>();
}

export class LocalRegistry {
  readonly sockets = new Map<string, SocketData>();
  private readonly apps = new Map<string, AppLocalState>();

  app(appId: string): AppLocalState {
    let state = this.apps.get(appId);
    if (!state) this.apps.set(appId, (state = new AppLocalState()));
    return state;
  }

  peek(appId: string): AppLocalState | undefined {
    return this.apps.get(appId);
  }

  /** Adds a subscriber; true when it is the channel's first on this node. */
  addSubscriber(appId: string, channel: string): boolean {
    const state = this.app(appId);
    let ch = state.channels.get(channel);
    const first = ch === undefined;
    if (!ch) state.channels.set(channel, (ch = new LocalChannel()));
    ch.count++;
    return first;
  }

  /** Removes a subscriber; true when the channel has none left on this node. */
  removeSubscriber(appId: string, channel: string): boolean {
    const state = this.apps.get(appId);
    const ch = state?.channels.get(channel);
    if (!state || !ch) return false;
    if (--ch.count > 0) return false;
    state.channels.delete(channel);
    return true;
  }

  subscriberCount(appId: string, channel: string): number {
    return this.apps.get(appId)?.channels.get(channel)?.count ?? 0;
  }

  localChannels(appId: string): ReadonlyMap<string, LocalChannel> {
    return this.apps.get(appId)?.channels ?? new Map();
  }

  connectionCount(appId: string): number {
    return this.apps.get(appId)?.connections ?? 0;
  }

  totalConnections(): number {
    return this.sockets.size;
  }
}
