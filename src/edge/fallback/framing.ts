// The wire of pusher-js's HTTP transports (SockJS's conventions): a response body is
// lines, each one letter and an optional JSON payload. `o` opens the session, `a` carries
// an array of Pusher frames (each a JSON string, so frames are encoded twice), `h` is a
// heartbeat and `c` closes with [code, reason]. The client posts arrays of frames.

export const OPEN_LINE = 'o\n';
export const HEARTBEAT_LINE = 'h\n';

/** One `a` line for the frames queued since the last write (each frame already a JSON string). */
export function messagesLine(frames: readonly string[]): string {
  return 'a' + JSON.stringify(frames) + '\n';
}

export function closeLine(code: number, reason: string): string {
  return 'c' + JSON.stringify([code, reason]) + '\n';
}

export type SendBody = { ok: true; frames: string[] } | { ok: false; reason: string };

/** An xhr_send body: a JSON array of strings (each one client frame); `[]` is a heartbeat. */
export function parseSendBody(body: Buffer): SendBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'Broken JSON encoding' };
  }
  if (!Array.isArray(parsed)) return { ok: false, reason: 'Payload expected to be a JSON array' };
  for (const f of parsed) if (typeof f !== 'string') return { ok: false, reason: 'Payload entries must be strings' };
  return { ok: true, frames: parsed as string[] };
}

/** `<server>/<session>` as pusher-js makes them (0-999 and 8 base-32 characters); SockJS allows any id without dots. */
const ID_PART = /^[^./\s]{1,64}$/;

export function validSessionParts(server: string, session: string): boolean {
  return ID_PART.test(server) && ID_PART.test(session);
}
