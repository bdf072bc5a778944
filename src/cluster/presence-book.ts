// The presence membership of every presence channel as this node knows it: per
// app, channel and user, the user_info and how many connections each node holds.
// Nested maps keyed by the ids themselves: no identifier is ever joined into a
// string and split again, so no id can be mistaken for two.
import { entryDigest } from './digest.js';
import type { MemberRef, MemberWithInfo } from './ports.js';

export interface Member {
  info: unknown;
  /** nodeId -> connections of this user in the channel on that node */
  readonly nodes: Map<string, number>;
}

/** One node's part of the book: what a snapshot carries. */
export interface NodeEntry {
  readonly appId: string;
  readonly channel: string;
  readonly userId: string;
  readonly info: unknown;
  readonly sockets: number;
}

type Channels = Map<string, Map<string, Member>>;

const EMPTY: ReadonlyMap<string, Member> = new Map();

export class PresenceBook {
  private readonly apps = new Map<string, Channels>();
  /** per node, the sum of its entries' hashes: updated on every change, compared on heartbeats */
  private readonly digests = new Map<string, number>();

  private adjust(nodeId: string, appId: string, channel: string, userId: string, before: number, after: number): void {
    let d = this.digests.get(nodeId) ?? 0;
    if (before > 0) d = (d - entryDigest('p', appId, channel, userId, before)) >>> 0;
    if (after > 0) d = (d + entryDigest('p', appId, channel, userId, after)) >>> 0;
    if (d === 0) this.digests.delete(nodeId);
    else this.digests.set(nodeId, d);
  }

  /** A digest of what this book holds for a node; equal books give equal digests. */
  digestOf(nodeId: string): number {
    return this.digests.get(nodeId) ?? 0;
  }

  private channelMembers(appId: string, channel: string, create: boolean): Map<string, Member> | undefined {
    let channels = this.apps.get(appId);
    if (!channels) {
      if (!create) return undefined;
      this.apps.set(appId, (channels = new Map<string, Map<string, Member>>()));
    }
    let members = channels.get(channel);
    if (!members && create) channels.set(channel, (members = new Map<string, Member>()));
    return members;
  }

  private dropIfEmpty(appId: string, channel: string): void {
    const channels = this.apps.get(appId);
    if (!channels) return;
    if (channels.get(channel)?.size === 0) channels.delete(channel);
    if (channels.size === 0) this.apps.delete(appId);
  }

  /** Adds one connection of `userId`; true when the user was in the channel on no node before. */
  join(appId: string, channel: string, nodeId: string, userId: string, info: unknown): boolean {
    const members = this.channelMembers(appId, channel, true)!;
    let member = members.get(userId);
    const isNew = member === undefined;
    if (!member) members.set(userId, (member = { info, nodes: new Map() }));
    else member.info = info;
    const before = member.nodes.get(nodeId) ?? 0;
    member.nodes.set(nodeId, before + 1);
    this.adjust(nodeId, appId, channel, userId, before, before + 1);
    return isNew;
  }

  /** Removes one connection of `userId`; true when that was the user's last in the channel anywhere. */
  leave(appId: string, channel: string, nodeId: string, userId: string): boolean {
    const members = this.channelMembers(appId, channel, false);
    const member = members?.get(userId);
    if (!members || !member) return false;
    const before = member.nodes.get(nodeId) ?? 0;
    if (before === 0) return false;
    const after = before - 1;
    if (after > 0) member.nodes.set(nodeId, after);
    else member.nodes.delete(nodeId);
    this.adjust(nodeId, appId, channel, userId, before, after);
    if (member.nodes.size > 0) return false;
    members.delete(userId);
    this.dropIfEmpty(appId, channel);
    return true;
  }

  members(appId: string, channel: string): ReadonlyMap<string, Member> {
    return this.apps.get(appId)?.get(channel) ?? EMPTY;
  }

  memberCount(appId: string, channel: string): number {
    return this.apps.get(appId)?.get(channel)?.size ?? 0;
  }

  has(appId: string, channel: string, userId: string): boolean {
    return this.apps.get(appId)?.get(channel)?.has(userId) ?? false;
  }

  /** Presence channels of an app with their member counts. */
  *channelsOf(appId: string): Iterable<[string, number]> {
    for (const [channel, members] of this.apps.get(appId) ?? []) yield [channel, members.size];
  }

  /** Forgets everything a node held; returns the users who thereby left a channel entirely. */
  dropNode(nodeId: string): MemberRef[] {
    const gone: MemberRef[] = [];
    for (const [appId, channels] of [...this.apps]) {
      for (const [channel, members] of [...channels]) {
        for (const [userId, member] of [...members]) {
          if (!member.nodes.delete(nodeId)) continue;
          if (member.nodes.size > 0) continue;
          members.delete(userId);
          gone.push({ appId, channel, userId });
        }
        this.dropIfEmpty(appId, channel);
      }
    }
    this.digests.delete(nodeId);
    return gone;
  }

  /**
   * Makes the book hold exactly `entries` for a node (a snapshot from it). Returns the
   * users who thereby joined a channel cluster-wide, and those who left one.
   */
  replaceNode(nodeId: string, entries: readonly NodeEntry[]): { added: MemberWithInfo[]; removed: MemberRef[] } {
    const wanted = new PresenceBook();
    for (const e of entries) if (e.sockets > 0) wanted.set(e, nodeId);
    const added: MemberWithInfo[] = [];
    const removed: MemberRef[] = [];
    // Drop or correct what the book holds for the node.
    for (const [appId, channels] of [...this.apps]) {
      for (const [channel, members] of [...channels]) {
        for (const [userId, member] of [...members]) {
          const held = member.nodes.get(nodeId);
          if (held === undefined) continue;
          const target = wanted.members(appId, channel).get(userId);
          const next = target?.nodes.get(nodeId) ?? 0;
          wanted.leaveAll(appId, channel, userId);
          if (target) member.info = target.info;
          if (next === held) continue;
          if (next > 0) member.nodes.set(nodeId, next);
          else member.nodes.delete(nodeId);
          this.adjust(nodeId, appId, channel, userId, held, next);
          if (member.nodes.size === 0) {
            members.delete(userId);
            removed.push({ appId, channel, userId });
          }
        }
        this.dropIfEmpty(appId, channel);
      }
    }
    // Add what the node has that the book lacked.
    for (const e of wanted.entriesOf(nodeId)) {
      const members = this.channelMembers(e.appId, e.channel, true)!;
      let member = members.get(e.userId);
      if (!member) {
        members.set(e.userId, (member = { info: e.info, nodes: new Map() }));
        added.push({ appId: e.appId, channel: e.channel, userId: e.userId, info: e.info });
      }
      member.nodes.set(nodeId, e.sockets);
      this.adjust(nodeId, e.appId, e.channel, e.userId, 0, e.sockets);
    }
    return { added, removed };
  }

  private set(e: NodeEntry, nodeId: string): void {
    const members = this.channelMembers(e.appId, e.channel, true)!;
    members.set(e.userId, { info: e.info, nodes: new Map([[nodeId, e.sockets]]) });
  }

  private leaveAll(appId: string, channel: string, userId: string): void {
    this.channelMembers(appId, channel, false)?.delete(userId);
    this.dropIfEmpty(appId, channel);
  }

  /** A node's own entries (for snapshots). */
  entriesOf(nodeId: string): NodeEntry[] {
    const out: NodeEntry[] = [];
    for (const [appId, channels] of this.apps) {
      for (const [channel, members] of channels) {
        for (const [userId, member] of members) {
          const sockets = member.nodes.get(nodeId);
          if (sockets) out.push({ appId, channel, userId, info: member.info, sockets });
        }
      }
    }
    return out;
  }
}
