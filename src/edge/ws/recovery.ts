// `chorus:recovery`: a client (the add-on, docs/RECOVERY.md) opts its connection in to
// numbered delivery on history channels and gives the positions to resume from. A
// malformed request changes nothing and gets a pusher:error.
import type { Connection, HistoryPosition } from '../../conn/connection.js';
import { channelNameProblem } from '../../protocol/channels.js';
import { dataAsObject, errorFrame } from '../../protocol/frames.js';
import { EPOCH_PATTERN, SOCKET_ID_PATTERN } from '../../protocol/limits.js';
import { RECOVERY_ACK } from '../../protocol/recovery-frames.js';

const MAX_POSITIONS = 100;
const MAX_PREVIOUS_SOCKETS = 8;

type Parsed = { ok: true; positions: Map<string, HistoryPosition>; previous: Set<string> } | { ok: false; problem: string };

function parse(raw: unknown, maxChannelName: number | null): Parsed {
  const data = dataAsObject(raw);
  if (!data) return { ok: false, problem: 'data must be an object' };
  if (data.v !== 1) return { ok: false, problem: 'unsupported version (v must be 1)' };
  const positions = new Map<string, HistoryPosition>();
  const given = data.positions ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) return { ok: false, problem: 'positions must be an object' };
  const entries = Object.entries(given as Record<string, unknown>);
  if (entries.length > MAX_POSITIONS) return { ok: false, problem: `at most ${MAX_POSITIONS} positions` };
  for (const [channel, value] of entries) {
    if (channelNameProblem(channel, maxChannelName)) return { ok: false, problem: `invalid channel name in positions` };
    const p = value as { serial?: unknown; epoch?: unknown } | null;
    if (typeof p !== 'object' || p === null) return { ok: false, problem: `position of ${channel.slice(0, 100)} must be an object` };
    if (typeof p.serial !== 'number' || !Number.isSafeInteger(p.serial) || p.serial < 0) {
      return { ok: false, problem: `position of ${channel.slice(0, 100)}: serial must be a non-negative integer` };
    }
    if (p.epoch !== null && (typeof p.epoch !== 'string' || !EPOCH_PATTERN.test(p.epoch))) {
      return { ok: false, problem: `position of ${channel.slice(0, 100)}: epoch must be a string of letters, digits, - or _ (or null)` };
    }
    positions.set(channel, { serial: p.serial, epoch: p.epoch });
  }
  const previous = new Set<string>();
  const ids = data.previous_socket_ids ?? [];
  if (!Array.isArray(ids) || ids.length > MAX_PREVIOUS_SOCKETS) {
    return { ok: false, problem: `previous_socket_ids must be an array of at most ${MAX_PREVIOUS_SOCKETS} socket ids` };
  }
  for (const id of ids) {
    if (typeof id !== 'string' || id.length > 64 || !SOCKET_ID_PATTERN.test(id))
      return { ok: false, problem: 'invalid socket id in previous_socket_ids' };
    previous.add(id);
  }
  return { ok: true, positions, previous };
}

export function handleRecovery(conn: Connection, raw: unknown): void {
  const parsed = parse(raw, conn.app.max_channel_name_length);
  if (!parsed.ok) {
    conn.send(errorFrame(null, `Invalid chorus:recovery: ${parsed.problem}`));
    return;
  }
  conn.recovery = { positions: parsed.positions, previousSocketIds: parsed.previous };
  conn.send(RECOVERY_ACK);
}
