// What nodes say to each other on the bus. Control messages are small JSON
// objects on the cluster topic (or a node's own topic); channel events travel
// on per-channel topics as `<origin node>\n<excepted socket id>\n<frame>` so the
// frame is never parsed or re-encoded on the way.
import type { NodeEntry } from '../channels/presence-book.js';

export type ControlMessage =
  /** heartbeat: d is the digest of the sender's own presence entries */
  | { t: 'hb'; n: string; p: string; d: number; s?: number }
  /** a node (re)joined: peers answer with their snapshots */
  | { t: 'hello'; n: string; p: string }
  /** graceful leave */
  | { t: 'bye'; n: string }
  /** presence socket joined / left */
  | { t: 'pj'; n: string; s?: number; a: string; c: string; u: string; i: unknown }
  | { t: 'pl'; n: string; s?: number; a: string; c: string; u: string }
  /** a signed-in user's first socket on the node / last socket gone */
  | { t: 'uon' | 'uoff'; n: string; s?: number; a: string; u: string }
  | { t: 'term'; n: string; a: string; u: string }
  /** the node gained its first / lost its last local subscriber of a channel */
  | { t: 'ci' | 'cx'; n: string; s?: number; a: string; c: string }
  | { t: 'req'; n: string; id: number; k: RequestKind; a: string; c?: string }
  | { t: 'res'; n: string; id: number; v: unknown }
  | { t: 'snapreq'; n: string }
  | {
      t: 'snap';
      n: string;
      /** the sender's sequence number the snapshot includes up to */
      s?: number;
      /** presence entries */
      e: Array<[string, string, string, unknown, number]>;
      /** signed-in users */
      o: Array<[string, string]>;
      /** channels with local subscribers */
      ch: Array<[string, string]>;
    };

export type RequestKind = 'count' | 'channels' | 'conns';

export const entriesToWire = (entries: NodeEntry[]): Array<[string, string, string, unknown, number]> =>
  entries.map((e) => [e.appId, e.channel, e.userId, e.info, e.sockets]);

export const entriesFromWire = (wire: Array<[string, string, string, unknown, number]>): NodeEntry[] =>
  wire.map(([appId, channel, userId, info, sockets]) => ({ appId, channel, userId, info, sockets }));

/** Splits a channel-topic payload without copying the frame more than once. */
export function parseChannelPayload(payload: string): { origin: string; except: string | undefined; frame: string } | null {
  const a = payload.indexOf('\n');
  const b = a < 0 ? -1 : payload.indexOf('\n', a + 1);
  if (b < 0) return null;
  const except = payload.slice(a + 1, b);
  return { origin: payload.slice(0, a), except: except.length > 0 ? except : undefined, frame: payload.slice(b + 1) };
}

export const channelPayload = (origin: string, except: string | undefined, frame: string): string =>
  origin + '\n' + (except ?? '') + '\n' + frame;
