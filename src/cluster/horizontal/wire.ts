// What nodes say to each other, versioned and validated where it enters. Control
// messages are small JSON objects on the cluster topic (or a node's own topic);
// channel events travel on per-channel topics as `c1\n<origin>\n<except>\n<frame>`,
// so the frame is never parsed or re-encoded on the way.
//
// Compatibility: a node ignores fields it does not know and message types it does
// not know, so a node one version ahead can add both. A message that fails its
// schema is dropped and counted, never thrown into the broker client's callback.
import { z } from 'zod';
import { EPOCH_PATTERN, SOCKET_ID_PATTERN } from '../../protocol/limits.js';
import { CONSOLE_BATCH_MAX, CONSOLE_EVENT_TYPES } from '../ports.js';

export const WIRE_VERSION = 1;

const id = z.string().min(1).max(512);
const name = z.string().max(4096);
const seq = z.number().int().nonnegative();

/** A state change of the sender's own part of the cluster state. */
export const deltaOp = z.union([
  /** a presence connection joined / left */
  z.tuple([z.literal('pj'), name, name, name, z.unknown()]),
  z.tuple([z.literal('pl'), name, name, name]),
  /** a signed-in user's first connection on the node / last one gone */
  z.tuple([z.literal('uon'), name, name]),
  z.tuple([z.literal('uoff'), name, name]),
  /** the node gained its first / lost its last local subscriber of a channel */
  z.tuple([z.literal('ci'), name, name]),
  z.tuple([z.literal('cx'), name, name]),
]);
export type DeltaOp = z.infer<typeof deltaOp>;

const edgeWire = z.union([
  z.tuple([z.literal('c'), name, name, z.number().nonnegative()]),
  z.tuple([z.literal('m'), name, name, name, z.number().nonnegative()]),
]);
export type PendingWire = z.infer<typeof edgeWire>;

/** count/channels/conns: the HTTP API's figures; node/apps: the operator console's reports */
export const requestKind = z.enum(['count', 'channels', 'conns', 'node', 'apps']);
export type RequestKind = z.infer<typeof requestKind>;

const envelope = { v: z.number().int().positive().optional(), n: id };

/** Bounds of a console event as it crosses the bus (the sender clips payloads to less). */
const consoleEvent = z.object({
  ts: z.number().nonnegative(),
  node: id,
  type: z.enum(CONSOLE_EVENT_TYPES),
  socket_id: z.string().max(64).optional(),
  channel: name.optional(),
  event: name.optional(),
  data: z.string().max(8192).optional(),
  truncated: z.boolean().optional(),
  code: z.number().int().optional(),
  reason: z.string().max(1000).optional(),
  transport: z.string().max(32).optional(),
  user_id: name.optional(),
  status: z.number().int().optional(),
  ok: z.boolean().optional(),
  attempts: z.number().int().nonnegative().optional(),
  url: z.string().max(2048).optional(),
  events: z.array(z.string().max(200)).max(100).optional(),
});

/** Webhook events per relayed message. */
export const RELAY_BATCH_MAX = 500;

/** A webhook event as a peer relays it to the node forming the app's batches (unknown fields are dropped). */
const webhookEvent = z.union([
  z.object({ name: z.enum(['channel_occupied', 'channel_vacated', 'cache_miss']), channel: name }),
  z.object({ name: z.enum(['member_added', 'member_removed']), channel: name, user_id: name }),
  z.object({ name: z.literal('subscription_count'), channel: name, subscription_count: seq }),
  z.object({
    name: z.literal('client_event'),
    channel: name,
    event: name,
    data: z.string().max(10 * 1024 * 1024),
    socket_id: z.string().max(64),
    user_id: name.optional(),
  }),
]);

export const schemas = {
  /** heartbeat: s the latest sequence number, d the digest of the sender's state, r ready to own keys */
  hb: z.object({ ...envelope, t: z.literal('hb'), p: id, s: seq, d: z.number().int().nonnegative(), r: z.boolean().optional() }),
  /** a node (re)joined: peers answer with their snapshots */
  hello: z.object({ ...envelope, t: z.literal('hello'), p: id }),
  /** graceful leave */
  bye: z.object({ ...envelope, t: z.literal('bye') }),
  /** state deltas, in order, numbered as one step */
  d: z.object({ ...envelope, t: z.literal('d'), s: seq, ops: z.array(deltaOp).max(100_000) }),
  /** close a user's connections with a code (terminate_connections, force_reconnect) */
  disc: z.object({ ...envelope, t: z.literal('disc'), a: name, u: name, code: z.number().int(), msg: z.string().max(1000) }),
  req: z.object({ ...envelope, t: z.literal('req'), id: seq, k: requestKind, a: name, c: name.optional() }),
  res: z.object({ ...envelope, t: z.literal('res'), id: seq, val: z.unknown() }),
  snapreq: z.object({ ...envelope, t: z.literal('snapreq') }),
  snap: z.object({
    ...envelope,
    t: z.literal('snap'),
    /** the sender's sequence number the snapshot includes up to */
    s: seq,
    /** presence entries: app, channel, user, info, connections */
    e: z.array(z.tuple([name, name, name, z.unknown(), z.number().int().positive()])),
    /** signed-in users: app, user */
    o: z.array(z.tuple([name, name])),
    /** channels with local subscribers: app, channel */
    ch: z.array(z.tuple([name, name])),
    /** removals the sender is waiting out (so a node that joins reports them if it owns them) */
    pend: z.array(edgeWire).optional(),
  }),
  /** the sender's console viewers watch an app: send its events to the sender (renewed every few seconds) */
  cw: z.object({ ...envelope, t: z.literal('cw'), a: name }),
  /** the sender's events of an app for a watcher, and how many it skipped since its previous batch */
  cev: z.object({ ...envelope, t: z.literal('cev'), a: name, ev: z.array(consoleEvent).max(CONSOLE_BATCH_MAX), sk: seq }),
  /** a fence: back at its sender after every message the broker carried on the cluster topic before it (fences.ts) */
  f: z.object({ ...envelope, t: z.literal('f'), id: seq }),
  /** webhook events of an app for the node that forms its batches (webhook-relay.ts) */
  wh: z.object({ ...envelope, t: z.literal('wh'), a: name, ev: z.array(webhookEvent).min(1).max(RELAY_BATCH_MAX) }),
  /** a node declared gone by someone who knows (the primary of a box of workers) */
  dead: z.object({ ...envelope, t: z.literal('dead'), id }),
} as const;

export type MessageType = keyof typeof schemas;
export type Message = { [K in MessageType]: z.infer<(typeof schemas)[K]> }[MessageType];
export type MessageOf<K extends MessageType> = z.infer<(typeof schemas)[K]>;
/** What a sender writes: the envelope's version is added on the way out. */
export type Outgoing = { [K in MessageType]: Omit<MessageOf<K>, 'v' | 'n'> }[MessageType];

export type DecodeFailure = { ok: false; reason: 'json' | 'shape' | 'unknown_type' | 'invalid'; type: string; from: string | null };
export type Decoded = { ok: true; message: Message } | DecodeFailure;

const isType = (t: string): t is MessageType => Object.prototype.hasOwnProperty.call(schemas, t);

/** Decodes one control payload; never throws. */
export function decodeControl(payload: string): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'json', type: 'unknown', from: null };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'shape', type: 'unknown', from: null };
  const { t, n } = raw as { t?: unknown; n?: unknown };
  const from = typeof n === 'string' ? n.slice(0, 200) : null;
  if (typeof t !== 'string') return { ok: false, reason: 'shape', type: 'unknown', from };
  if (!isType(t)) return { ok: false, reason: 'unknown_type', type: 'other', from };
  const parsed = schemas[t].safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'invalid', type: t, from };
  return { ok: true, message: parsed.data };
}

export function encodeControl(nodeId: string, message: Outgoing): string {
  return JSON.stringify({ v: WIRE_VERSION, n: nodeId, ...message });
}

// channel payloads

const CHANNEL_V1 = 'c1\n';

export const encodeChannelPayload = (origin: string, except: string | undefined, frame: string): string =>
  CHANNEL_V1 + origin + '\n' + (except ?? '') + '\n' + frame;

export type ChannelPayload = { origin: string; except: string | undefined; frame: string };

/** Splits a channel payload, copying the frame once; null when it is not one this version reads. */
export function decodeChannelPayload(payload: string): ChannelPayload | null {
  if (!payload.startsWith(CHANNEL_V1)) return null;
  const a = payload.indexOf('\n', CHANNEL_V1.length);
  const b = a < 0 ? -1 : payload.indexOf('\n', a + 1);
  if (b < 0 || a === CHANNEL_V1.length || b === payload.length - 1) return null;
  const except = payload.slice(a + 1, b);
  if (except.length > 0 && (except.length > 64 || !SOCKET_ID_PATTERN.test(except))) return null;
  return { origin: payload.slice(CHANNEL_V1.length, a), except: except.length > 0 ? except : undefined, frame: payload.slice(b + 1) };
}

// A numbered event of a history channel: published by the broker's own append (the serial,
// epoch and time are filled in there, between head and tail), delivered by every node, the
// origin included, so each node's local delivery follows the serial order.
const NUMBERED_V1 = 'n1\n';

/** What goes before the broker's "<serial>\n<epoch>\n<timeMs>". */
export const numberedHead = (origin: string, except: string | undefined): string => NUMBERED_V1 + origin + '\n' + (except ?? '') + '\n';
export const numberedTail = (frame: string): string => '\n' + frame;

export interface NumberedPayload {
  origin: string;
  except: string | undefined;
  serial: number;
  epoch: string;
  timeMs: number;
  frame: string;
}

/** Splits a numbered payload; null when it is not one this version reads. */
export function decodeNumberedPayload(payload: string): NumberedPayload | null {
  if (!payload.startsWith(NUMBERED_V1)) return null;
  const cuts: number[] = [];
  let at = NUMBERED_V1.length - 1;
  for (let i = 0; i < 5; i++) {
    at = payload.indexOf('\n', at + 1);
    if (at < 0) return null;
    cuts.push(at);
  }
  const part = (i: number) => payload.slice(i === 0 ? NUMBERED_V1.length : cuts[i - 1] + 1, cuts[i]);
  const except = part(1);
  if (except.length > 0 && (except.length > 64 || !SOCKET_ID_PATTERN.test(except))) return null;
  const serial = Number(part(2));
  const epoch = part(3);
  const timeMs = Number(part(4));
  const frame = payload.slice(cuts[4] + 1);
  if (!Number.isSafeInteger(serial) || serial < 1 || !EPOCH_PATTERN.test(epoch) || !Number.isFinite(timeMs) || frame.length === 0)
    return null;
  return { origin: part(0), except: except.length > 0 ? except : undefined, serial, epoch, timeMs, frame };
}
