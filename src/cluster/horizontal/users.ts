// Signed-in users across the cluster: per app and user, the nodes where the user
// has at least one connection. A user is online while any node holds one.
import { entryDigest } from '../digest.js';

export class UsersReplica {
  /** app -> user -> nodes where the user is signed in */
  private readonly online = new Map<string, Map<string, Set<string>>>();
  private readonly digests = new Map<string, number>();

  constructor(private readonly onChange: (appId: string, userId: string, online: boolean) => void) {}

  /** Marks a user signed in (or not) on a node; reports cluster-wide online/offline edges. */
  set(nodeId: string, appId: string, userId: string, signedIn: boolean): boolean {
    let users = this.online.get(appId);
    if (!users) {
      if (!signedIn) return false;
      this.online.set(appId, (users = new Map<string, Set<string>>()));
    }
    let nodes = users.get(userId);
    if (!nodes) {
      if (!signedIn) return false;
      users.set(userId, (nodes = new Set()));
    }
    if (signedIn === nodes.has(nodeId)) return false;
    const before = nodes.size;
    if (signedIn) nodes.add(nodeId);
    else nodes.delete(nodeId);
    const h = entryDigest('u', appId, userId);
    const d = this.digests.get(nodeId) ?? 0;
    const next = (signedIn ? d + h : d - h) >>> 0;
    if (next === 0) this.digests.delete(nodeId);
    else this.digests.set(nodeId, next);
    if (nodes.size === 0) {
      users.delete(userId);
      if (users.size === 0) this.online.delete(appId);
    }
    if (before === 0 && signedIn) this.onChange(appId, userId, true);
    else if (before === 1 && !signedIn) this.onChange(appId, userId, false);
    return true;
  }

  has(nodeId: string, appId: string, userId: string): boolean {
    return this.online.get(appId)?.get(userId)?.has(nodeId) ?? false;
  }

  isOnline(appId: string, userId: string): boolean {
    return this.online.get(appId)?.has(userId) ?? false;
  }

  entriesOf(nodeId: string): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [appId, users] of this.online) for (const [userId, nodes] of users) if (nodes.has(nodeId)) out.push([appId, userId]);
    return out;
  }

  /** Makes the replica hold exactly `entries` for a node. */
  replace(nodeId: string, entries: ReadonlyArray<readonly [string, string]>): void {
    const wanted = new Set(entries.map(([a, u]) => JSON.stringify([a, u])));
    for (const [a, u] of this.entriesOf(nodeId)) if (!wanted.has(JSON.stringify([a, u]))) this.set(nodeId, a, u, false);
    for (const [a, u] of entries) this.set(nodeId, a, u, true);
  }

  digestOf(nodeId: string): number {
    return this.digests.get(nodeId) ?? 0;
  }
}
