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

export class PresenceBook {
  private readonly channels = new Map<string, Map<string, Member>>();

  /** Adds one socket of `userId`; true when the user was not in the channel on any node before. */
  join(appId: string, channel: string, nodeId: string, userId: string, info: unknown): boolean {
    const k = key(appId, channel);
    let members = this.channels.get(k);
    if (!members) this.channels.set(k, (members = new Map()));
    let member = members.get(userId);
    const isNew = member === undefined;
    if (!member) members.set(userId, (member = { info, nodes: new Map() }));
    else member.info = info;
    member.nodes.set(nodeId, (member.nodes.get(nodeId) ?? 0) + 1);
    return isNew;
  }

  /** Removes one socket of `userId`; true when that was the user's last socket in the channel anywhere. */
  leave(appId: string, channel: string, nodeId: string, userId: string): boolean {
    const k = key(appId, channel);
    const members = this.channels.get(k);
    const member = members?.get(userId);
    if (!members || !member) return false;
    const count = (member.nodes.get(nodeId) ?? 0) - 1;
    if (count > 0) member.nodes.set(nodeId, count);
    else member.nodes.delete(nodeId);
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
    return gone;
  }

  /** This node's own entries (for snapshots and digests). */
  entriesOf(nodeId: string): Array<MemberRef & { info: unknown; sockets: number }> {
    const out: Array<MemberRef & { info: unknown; sockets: number }> = [];
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
