// The frames between a box's workers and the hub in its primary, over a Unix socket: one
// JSON array per line (JSON escapes newlines, so a line is always one frame). Every frame is
// checked where it enters, on either side: a malformed one is dropped and counted, never
// thrown into the socket's callback.

/** Bumped when a frame's meaning changes; the hub refuses a worker that speaks another one. */
export const BOX_WIRE_VERSION = 1;

/** A frame longer than this ends the connection (the hub's payloads are bounded by the node's limits). */
export const BOX_MAX_FRAME = 64 * 1024 * 1024;

/** The operations a worker asks of the hub and waits for. */
export const BOX_OPS = [
  'sub',
  'unsub',
  'claim',
  'take',
  'put',
  'get',
  'quotaTake',
  'quotaRelease',
  'rate',
  'capTake',
  'capRelease',
  'logAppend',
  'logRange',
  'ping',
] as const;
export type BoxOp = (typeof BOX_OPS)[number];
const OPS = new Set<string>(BOX_OPS);

/** worker → hub */
export type ToHub =
  | { kind: 'hello'; version: number; label: string }
  | { kind: 'publish'; topic: string; payload: string }
  | { kind: 'op'; id: number; op: BoxOp; args: unknown[] };

/** hub → worker */
export type FromHub =
  | { kind: 'message'; topic: string; payload: string }
  | { kind: 'reply'; id: number; ok: true; value: unknown }
  | { kind: 'reply'; id: number; ok: false; error: string };

export const helloFrame = (label: string): string => `${JSON.stringify(['h', BOX_WIRE_VERSION, label])}\n`;
export const publishFrame = (topic: string, payload: string): string => `${JSON.stringify(['p', topic, payload])}\n`;
export const opFrame = (id: number, op: BoxOp, args: unknown[]): string => `${JSON.stringify(['o', id, op, args])}\n`;
export const messageFrame = (topic: string, payload: string): string => `${JSON.stringify(['m', topic, payload])}\n`;
export const replyFrame = (id: number, ok: boolean, value: unknown): string =>
  `${JSON.stringify(['r', id, ok ? 1 : 0, value === undefined ? null : value])}\n`;

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parse(line: string): unknown[] | null {
  try {
    const v: unknown = JSON.parse(line);
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

export function decodeToHub(line: string): ToHub | null {
  const f = parse(line);
  if (!f) return null;
  switch (f[0]) {
    case 'p':
      return f.length === 3 && typeof f[1] === 'string' && typeof f[2] === 'string'
        ? { kind: 'publish', topic: f[1], payload: f[2] }
        : null;
    case 'o':
      return f.length === 4 && isId(f[1]) && typeof f[2] === 'string' && OPS.has(f[2]) && Array.isArray(f[3])
        ? { kind: 'op', id: f[1], op: f[2] as BoxOp, args: f[3] as unknown[] }
        : null;
    case 'h':
      return f.length === 3 && isId(f[1]) && typeof f[2] === 'string' ? { kind: 'hello', version: f[1], label: f[2].slice(0, 200) } : null;
    default:
      return null;
  }
}

export function decodeFromHub(line: string): FromHub | null {
  const f = parse(line);
  if (!f) return null;
  if (f[0] === 'm') {
    return f.length === 3 && typeof f[1] === 'string' && typeof f[2] === 'string' ? { kind: 'message', topic: f[1], payload: f[2] } : null;
  }
  if (f[0] === 'r' && f.length === 4 && isId(f[1]) && (f[2] === 0 || f[2] === 1)) {
    if (f[2] === 1) return { kind: 'reply', id: f[1], ok: true, value: f[3] };
    return typeof f[3] === 'string' ? { kind: 'reply', id: f[1], ok: false, error: f[3] } : null;
  }
  return null;
}

/**
 * Splits a byte stream into lines. Holds at most BOX_MAX_FRAME of an unfinished line;
 * past that `feed` returns false and the connection should go.
 */
export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (line: string) => void) {}

  feed(chunk: string): boolean {
    let i = chunk.indexOf('\n');
    if (i < 0) {
      this.rest += chunk;
      return this.rest.length <= BOX_MAX_FRAME;
    }
    this.onLine(this.rest + chunk.slice(0, i));
    this.rest = '';
    let start = i + 1;
    while ((i = chunk.indexOf('\n', start)) >= 0) {
      this.onLine(chunk.slice(start, i));
      start = i + 1;
    }
    this.rest = chunk.slice(start);
    return this.rest.length <= BOX_MAX_FRAME;
  }
}
