// The presence membership of every presence channel, as this node knows it:
// per (app, channel, user) the user_info and how many sockets each node holds.
// The local adapter feeds it from this node only; a horizontal adapter also
// feeds it from peers' deltas and snapshots, so member lists are local reads.

export interface Member {
  info: unknown;
  /** nodeId -> sockets of this user in the channel on that node */
  nodes: Map<string, number>;
}

export interface MemberRef {
  appId: string;
  channel: string;
  userId: string;
}

const key = (appId: string, channel: string) => `${appId}\n${channel}`;

/** FNV-1a, 32 bits: cheap, stable across processes, good enough to notice divergence. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const entryHash = (k: string, userId: string, sockets: number) => fnv1a(`${k}\n${userId}\n${sockets}`);

export interface NodeEntry {
  appId: string;
  channel: string;
  userId: string;
  info: unknown;
  sockets: number;
}

export class PresenceBook {
  private readonly channels = new Map<string, Map<string, Member>>();
  /** per node, the sum of its entries' hashes: updated on every change, compared on heartbeats */
  private readonly digests = new Map<string, number>();

  private adjust(nodeId: string, k: string, userId: string, before: number, after: number): void {
    let d = this.digests.get(nodeId) ?? 0;
    if (before > 0) d = (d - entryHash(k, userId, before)) >>> 0;
    if (after > 0) d = (d + entryHash(k, userId, after)) >>> 0;
    if (d === 0 && after === 0) this.digests.delete(nodeId);
    else this.digests.set(nodeId, d);
  }

  /** A digest of what this book holds for a node; equal books give equal digests. */
  digestOf(nodeId: string): number {
    return this.digests.get(nodeId) ?? 0;
  }

  /** Adds one socket of `userId`; true when the user was not in the channel on any node before. */
  join(appId: string, channel: string, nodeId: string, userId: string, info: unknown): boolean {
    const k = key(appId, channel);
    let members = this.channels.get(k);
    if (!members) this.channels.set(k, (members = new Map()));
    let member = members.get(userId);
    const isNew = member === undefined;
    if (!member) members.set(userId, (member = { info, nodes: new Map() }));
    else member.info = info;
    const before = member.nodes.get(nodeId) ?? 0;
    member.nodes.set(nodeId, before + 1);
    this.adjust(nodeId, k, userId, before, before + 1);
    return isNew;
  }

  /** Removes one socket of `userId`; true when that was the user's last socket in the channel anywhere. */
  leave(appId: string, channel: string, nodeId: string, userId: string): boolean {
    const k = key(appId, channel);
    const members = this.channels.get(k);
    const member = members?.get(userId);
    if (!members || !member) return false;
    const before = member.nodes.get(nodeId) ?? 0;
    if (before === 0) return false;
    const count = before - 1;
    if (count > 0) member.nodes.set(nodeId, count);
    else member.nodes.delete(nodeId);
    this.adjust(nodeId, k, userId, before, count);
    if (member.nodes.size > 0) return false;
    members.delete(userId);
    if (members.size === 0) this.channels.delete(k);
    return true;
  }

  members(appId: string, channel: string): ReadonlyMap<string, Member> {
    return this.channels.get(key(appId, channel)) ?? new Map();
  }

  memberCount(appId: string, channel: string): number {
    return this.channels.get(key(appId, channel))?.size ?? 0;
  }

  has(appId: string, channel: string, userId: string): boolean {
    return this.channels.get(key(appId, channel))?.has(userId) ?? false;
  }

  /** Presence channels of an app with their member counts. */
  *channelsOf(appId: string): Iterable<[string, number]> {
    const prefix = `${appId}\n`;
    for (const [k, members] of this.channels) {
      if (k.startsWith(prefix)) yield [k.slice(prefix.length), members.size];
    }
  }

  /** Forgets everything a node held; returns the users who thereby left a channel entirely. */
  dropNode(nodeId: string): MemberRef[] {
    const gone: MemberRef[] = [];
    for (const [k, members] of this.channels) {
      const [appId, channel] = k.split('\n', 2);
      for (const [userId, member] of members) {
        if (!member.nodes.delete(nodeId)) continue;
        if (member.nodes.size === 0) {
          members.delete(userId);
          gone.push({ appId, channel, userId });
        }
      }
      if (members.size === 0) this.channels.delete(k);
    }
    this.digests.delete(nodeId);
    return gone;
  }

  /**
   * Makes the book hold exactly `entries` for a node (a snapshot from it).
   * Returns the users who thereby joined a channel cluster-wide, and those who left one.
   */
  replaceNode(nodeId: string, entries: readonly NodeEntry[]): { added: Array<MemberRef & { info: unknown }>; removed: MemberRef[] } {
    const wanted = new Map<string, NodeEntry>();
    for (const e of entries) wanted.set(`${key(e.appId, e.channel)}\n${e.userId}`, e);
    const added: Array<MemberRef & { info: unknown }> = [];
    const removed: MemberRef[] = [];
    // Drop or correct what the book holds for the node.
    for (const [k, members] of [...this.channels]) {
      const [appId, channel] = k.split('\n', 2);
      for (const [userId, member] of [...members]) {
        const held = member.nodes.get(nodeId);
        if (held === undefined) continue;
        const target = wanted.get(`${k}\n${userId}`);
        wanted.delete(`${k}\n${userId}`);
        const next = target?.sockets ?? 0;
        if (next === held) continue;
        if (next > 0) member.nodes.set(nodeId, next);
        else member.nodes.delete(nodeId);
        if (target) member.info = target.info;
        this.adjust(nodeId, k, userId, held, next);
        if (member.nodes.size === 0) {
          members.delete(userId);
          removed.push({ appId, channel, userId });
        }
      }
      if (members.size === 0) this.channels.delete(k);
    }
    // Add what the node has that the book lacked.
    for (const e of wanted.values()) {
      if (e.sockets <= 0) continue;
      const k = key(e.appId, e.channel);
      let members = this.channels.get(k);
      if (!members) this.channels.set(k, (members = new Map()));
      let member = members.get(e.userId);
      if (!member) {
        members.set(e.userId, (member = { info: e.info, nodes: new Map() }));
        added.push({ appId: e.appId, channel: e.channel, userId: e.userId, info: e.info });
      }
      member.nodes.set(nodeId, e.sockets);
      this.adjust(nodeId, k, e.userId, 0, e.sockets);
    }
    return { added, removed };
  }

  /** This node's own entries (for snapshots and digests). */
  entriesOf(nodeId: string): NodeEntry[] {
    const out: NodeEntry[] = [];
    for (const [k, members] of this.channels) {
      const [appId, channel] = k.split('\n', 2);
      for (const [userId, member] of members) {
        const sockets = member.nodes.get(nodeId);
        if (sockets) out.push({ appId, channel, userId, info: member.info, sockets });
      }
    }
    return out;
  }
}
