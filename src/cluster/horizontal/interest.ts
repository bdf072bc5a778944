// Which nodes hold local subscribers of which channels, this node included: the
// truth behind channel_occupied / channel_vacated. A channel is occupied while at
// least one node holds it; `onEdge` hears every 0 <-> 1 change of that count.
import { entryDigest } from '../digest.js';

type AppChannels = Map<string, Set<string>>;

export class InterestReplica {
  /** nodeId -> app -> channels it holds */
  private readonly byNode = new Map<string, AppChannels>();
  /** app -> channel -> how many nodes hold it */
  private readonly holders = new Map<string, Map<string, number>>();
  private readonly digests = new Map<string, number>();

  constructor(private readonly onEdge: (appId: string, channel: string, occupied: boolean) => void) {}

  /** Adds or removes one node's hold; returns whether anything changed. */
  set(nodeId: string, appId: string, channel: string, held: boolean): boolean {
    let apps = this.byNode.get(nodeId);
    if (!apps) {
      if (!held) return false;
      this.byNode.set(nodeId, (apps = new Map<string, Set<string>>()));
    }
    let channels = apps.get(appId);
    if (!channels) {
      if (!held) return false;
      apps.set(appId, (channels = new Set()));
    }
    if (held === channels.has(channel)) return false;
    if (held) channels.add(channel);
    else {
      channels.delete(channel);
      if (channels.size === 0) apps.delete(appId);
      if (apps.size === 0) this.byNode.delete(nodeId);
    }
    const h = entryDigest('c', appId, channel);
    const d = this.digests.get(nodeId) ?? 0;
    const next = (held ? d + h : d - h) >>> 0;
    if (next === 0) this.digests.delete(nodeId);
    else this.digests.set(nodeId, next);
    this.count(appId, channel, held ? 1 : -1);
    return true;
  }

  private count(appId: string, channel: string, delta: 1 | -1): void {
    let channels = this.holders.get(appId);
    if (!channels) this.holders.set(appId, (channels = new Map<string, number>()));
    const before = channels.get(channel) ?? 0;
    const after = before + delta;
    if (after > 0) channels.set(channel, after);
    else channels.delete(channel);
    if (channels.size === 0) this.holders.delete(appId);
    if (before === 0 && after === 1) this.onEdge(appId, channel, true);
    else if (before === 1 && after === 0) this.onEdge(appId, channel, false);
  }

  holds(nodeId: string, appId: string, channel: string): boolean {
    return this.byNode.get(nodeId)?.get(appId)?.has(channel) ?? false;
  }

  /** Every (app, channel) a node holds. */
  entriesOf(nodeId: string): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [appId, channels] of this.byNode.get(nodeId) ?? []) for (const c of channels) out.push([appId, c]);
    return out;
  }

  /** Makes the replica hold exactly `entries` for a node (a snapshot, or [] when it is gone). */
  replace(nodeId: string, entries: ReadonlyArray<readonly [string, string]>): void {
    const wanted = new Map<string, Set<string>>();
    for (const [a, c] of entries) {
      let s = wanted.get(a);
      if (!s) wanted.set(a, (s = new Set()));
      s.add(c);
    }
    for (const [a, c] of this.entriesOf(nodeId)) if (!wanted.get(a)?.has(c)) this.set(nodeId, a, c, false);
    for (const [a, channels] of wanted) for (const c of channels) this.set(nodeId, a, c, true);
  }

  digestOf(nodeId: string): number {
    return this.digests.get(nodeId) ?? 0;
  }
}
