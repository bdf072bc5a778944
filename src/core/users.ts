// Signed-in users: a connection's user, the cluster-wide online state behind
// watchlists, and closing every connection of a user (terminate, force reconnect).
import type { UserDirectory } from '../cluster/ports.js';
import type { Connection, SignedInUser } from '../conn/connection.js';
import type { LocalRegistry } from '../conn/registry.js';
import { CloseCode } from '../protocol/codes.js';
import { errorFrame, signinSuccessFrame, watchlistFrame } from '../protocol/frames.js';
import { MAX_WATCHLIST } from '../protocol/limits.js';

export class Users {
  constructor(
    private readonly registry: LocalRegistry,
    private readonly directory: UserDirectory,
  ) {}

  /** Binds a connection to a user (already verified by the edge) and answers it. */
  signIn(conn: Connection, user: SignedInUser, watchlistOverflow: boolean): void {
    const appId = conn.app.id;
    if (!conn.user) {
      if (this.registry.addUser(appId, user.id, conn) && this.directory.online(appId, user.id)) {
        this.presenceChanged(appId, user.id, true);
      }
    } else {
      this.unwatch(conn);
    }
    conn.user = user;
    conn.authDeadline = 0;
    conn.send(signinSuccessFrame(user.userData));
    if (user.watchlist.length === 0 || !conn.app.enable_watchlist_events) return;
    for (const watched of user.watchlist) this.registry.addWatcher(appId, watched, conn);
    if (watchlistOverflow) {
      conn.send(errorFrame(CloseCode.WATCHLIST_LIMIT, `Watchlist limit exceeded: only the first ${MAX_WATCHLIST} ids are watched`));
    }
    // As Pusher does, the first report names the watched users who are online now.
    conn.send(
      watchlistFrame(
        user.watchlist.filter((w) => this.directory.isOnline(appId, w)),
        [],
      ),
    );
  }

  private unwatch(conn: Connection): void {
    if (!conn.user) return;
    for (const watched of conn.user.watchlist) this.registry.removeWatcher(conn.app.id, watched, conn);
  }

  /** Undoes a sign-in when its connection closes. */
  signOut(conn: Connection): void {
    const user = conn.user;
    if (!user) return;
    const appId = conn.app.id;
    this.unwatch(conn);
    conn.user = null;
    if (this.registry.removeUser(appId, user.id, conn) && this.directory.offline(appId, user.id)) {
      this.presenceChanged(appId, user.id, false);
    }
  }

  /** A user came online or went offline in the cluster: this node's watchers are told. */
  presenceChanged(appId: string, userId: string, online: boolean): void {
    const watchers = this.registry.watchersOf(appId, userId);
    if (watchers.size === 0) return;
    const frame = online ? watchlistFrame([userId], []) : watchlistFrame([], [userId]);
    for (const conn of watchers) if (conn.app.enable_watchlist_events) conn.send(frame);
  }

  /** Closes this node's connections signed in as the user. */
  disconnectLocal(appId: string, userId: string, code: number, message: string): void {
    const frame = errorFrame(code, message);
    for (const conn of [...this.registry.connectionsOfUser(appId, userId)]) conn.close(code, message.slice(0, 100), frame);
  }

  /** Closes the user's connections on every node. */
  disconnectEverywhere(appId: string, userId: string, code: number, message: string): void {
    this.disconnectLocal(appId, userId, code, message);
    this.directory.disconnectEverywhere(appId, userId, code, message);
  }
}
