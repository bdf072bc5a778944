// What this node holds: its open connections by socket id and, per app, the
// connection count, each channel's local subscriber count, signed-in users and
// watchers. Only the core changes it, through these methods.
import type { Connection } from './connection.js';

class AppState {
  connections = 0;
  /** channel -> local subscribers (each connection knows its own channels) */
  readonly channels = new Map<string, number>();
  /** user id -> connections signed in as that user */
  readonly users = new Map<string, Set<Connection>>();
  /** watched user id -> connections whose watchlist holds it */
  readonly watchers = new Map<string, Set<Connection>>();
}

const EMPTY_SET: ReadonlySet<Connection> = new Set();
const EMPTY_CHANNELS: ReadonlyMap<string, number> = new Map();

function addTo(map: Map<string, Set<Connection>>, key: string, conn: Connection): boolean {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  const before = set.size;
  set.add(conn);
  return before === 0 && set.size === 1;
}

function removeFrom(map: Map<string, Set<Connection>>, key: string, conn: Connection): boolean {
  const set = map.get(key);
  if (!set || !set.delete(conn)) return false;
  if (set.size > 0) return false;
  map.delete(key);
  return true;
}

export class LocalRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly apps = new Map<string, AppState>();
  /** connections admitted at upgrade but not open yet (counted against quotas and caps) */
  private pendingCount = 0;

  private state(appId: string): AppState {
    let s = this.apps.get(appId);
    if (!s) this.apps.set(appId, (s = new AppState()));
    return s;
  }

  /** An upgrade was admitted for the app: counted before its socket opens. */
  reserve(appId: string): void {
    this.state(appId).connections++;
    this.pendingCount++;
  }

  /** An admitted upgrade whose socket never opened (the client went away). */
  unreserve(appId: string): void {
    this.pendingCount--;
    this.dropConnection(appId);
  }

  /** The reserved connection opened. */
  add(conn: Connection): void {
    this.pendingCount--;
    this.byId.set(conn.socketId, conn);
  }

  remove(conn: Connection): void {
    if (this.byId.get(conn.socketId) === conn) this.byId.delete(conn.socketId);
    this.dropConnection(conn.app.id);
  }

  private dropConnection(appId: string): void {
    const s = this.apps.get(appId);
    if (!s) return;
    s.connections--;
    this.forgetIfEmpty(appId, s);
  }

  private forgetIfEmpty(appId: string, s: AppState): void {
    if (s.connections <= 0 && s.channels.size === 0 && s.users.size === 0 && s.watchers.size === 0) this.apps.delete(appId);
  }

  get(socketId: string): Connection | undefined {
    return this.byId.get(socketId);
  }

  has(socketId: string): boolean {
    return this.byId.has(socketId);
  }

  /** Every open connection (a snapshot: safe to close connections while iterating). */
  all(): Connection[] {
    return [...this.byId.values()];
  }

  forEach(fn: (conn: Connection) => void): void {
    for (const conn of this.byId.values()) fn(conn);
  }

  /** Open and admitted connections on this node. */
  totalConnections(): number {
    return this.byId.size + this.pendingCount;
  }

  connectionCount(appId: string): number {
    return this.apps.get(appId)?.connections ?? 0;
  }

  /** Adds a subscriber; true when it is the channel's first on this node. */
  addSubscriber(appId: string, channel: string): boolean {
    const channels = this.state(appId).channels;
    const n = (channels.get(channel) ?? 0) + 1;
    channels.set(channel, n);
    return n === 1;
  }

  /** Removes a subscriber; true when the channel has none left on this node. */
  removeSubscriber(appId: string, channel: string): boolean {
    const s = this.apps.get(appId);
    const n = s?.channels.get(channel);
    if (!s || n === undefined) return false;
    if (n > 1) {
      s.channels.set(channel, n - 1);
      return false;
    }
    s.channels.delete(channel);
    this.forgetIfEmpty(appId, s);
    return true;
  }

  subscriberCount(appId: string, channel: string): number {
    return this.apps.get(appId)?.channels.get(channel) ?? 0;
  }

  /** The app's channels with local subscribers, with their counts. */
  localChannels(appId: string): ReadonlyMap<string, number> {
    return this.apps.get(appId)?.channels ?? EMPTY_CHANNELS;
  }

  /** Signs a connection in as a user; true when it is the user's first connection on this node. */
  addUser(appId: string, userId: string, conn: Connection): boolean {
    return addTo(this.state(appId).users, userId, conn);
  }

  /** True when that was the user's last connection on this node. */
  removeUser(appId: string, userId: string, conn: Connection): boolean {
    const s = this.apps.get(appId);
    if (!s) return false;
    const last = removeFrom(s.users, userId, conn);
    this.forgetIfEmpty(appId, s);
    return last;
  }

  connectionsOfUser(appId: string, userId: string): ReadonlySet<Connection> {
    return this.apps.get(appId)?.users.get(userId) ?? EMPTY_SET;
  }

  addWatcher(appId: string, watched: string, conn: Connection): void {
    addTo(this.state(appId).watchers, watched, conn);
  }

  removeWatcher(appId: string, watched: string, conn: Connection): void {
    const s = this.apps.get(appId);
    if (!s) return;
    removeFrom(s.watchers, watched, conn);
    this.forgetIfEmpty(appId, s);
  }

  watchersOf(appId: string, watched: string): ReadonlySet<Connection> {
    return this.apps.get(appId)?.watchers.get(watched) ?? EMPTY_SET;
  }
}
