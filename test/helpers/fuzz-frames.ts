// Seeded generators of bad (and some good) client frames, shared by the fuzz suites of
// the WebSocket edge and of the HTTP fallbacks, and the frames a node may answer with.
import { createHmac } from 'node:crypto';
import { DEMO_APP } from './node.js';
import type { Rng } from './rng.js';

export const sign = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

export const CHANNELS = [
  'f-a',
  'private-f-b',
  'presence-f-c',
  'private-encrypted-f-d',
  'cache-f-e',
  'private-cache-f-f',
  '#server-to-user-u1',
  '#server-to-user-',
  'presence-',
  'private-',
];
const EVENTS = [
  'pusher:subscribe',
  'pusher:unsubscribe',
  'pusher:ping',
  'pusher:pong',
  'pusher:signin',
  'client-x',
  'client-',
  'pusher_internal:member_added',
  'pusher:error',
  'pusher:subscription_error',
  'foo',
  '',
  'PUSHER:SUBSCRIBE',
  'client-' + 'x'.repeat(300),
];
const CHARS = 'abcXYZ019-_=@,.;#:/\\ "\'{}[]%\u00e9\u4e2d\u0000\u001f\ud83d\ude00';

export function randomString(rng: Rng, max = 20): string {
  const n = rng.chance(0.05) ? rng.int(3000) : rng.int(max);
  let s = '';
  for (let i = 0; i < n; i++) s += CHARS[rng.int(CHARS.length)];
  return s;
}

export function randomValue(rng: Rng, depth = 0): unknown {
  const r = rng.int(depth > 2 ? 6 : 9);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, rng.int(1000)]);
    case 3:
    case 4:
      return randomString(rng);
    case 5:
      return rng.pick(CHANNELS);
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--)
        o[rng.pick(['channel', 'auth', 'channel_data', 'user_data', 'data', '__proto__', 'constructor', randomString(rng, 6)])] =
          randomValue(rng, depth + 1);
      return o;
    }
  }
}

/** An auth value: mostly wrong in some way, sometimes right (so deeper paths are reached too). */
function randomAuth(rng: Rng, socketId: string, channel: string, channelData?: string): unknown {
  const right = `${DEMO_APP.key}:${sign(DEMO_APP.secret, channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`)}`;
  switch (rng.int(6)) {
    case 0:
      return right;
    case 1:
      return right.slice(0, rng.int(right.length));
    case 2:
      return right.toUpperCase();
    case 3:
      return `${DEMO_APP.key}:${sign('wrong', channel)}`;
    case 4:
      return randomValue(rng);
    default:
      return rng.chance(0.5) ? right : randomString(rng);
  }
}

function randomChannelData(rng: Rng): string {
  switch (rng.int(5)) {
    case 0:
      return JSON.stringify({ user_id: rng.pick(['u1', 'u2', 'u3']), user_info: randomValue(rng) });
    case 1:
      return JSON.stringify({ user_id: randomValue(rng) });
    case 2:
      return randomString(rng);
    case 3:
      return JSON.stringify({ user_id: 'u'.repeat(rng.int(200) + 1), user_info: { b: 'x'.repeat(rng.int(1500)) } });
    default:
      return `{"user_id":"deep","user_info":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
  }
}

/** One frame for a socket: returns the payload and whether to send it as binary. */
export function randomFrame(rng: Rng, socketId: string): { payload: string | Buffer; binary: boolean } {
  const kind = rng.int(1000);
  if (kind < 30) return { payload: Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256))), binary: true };
  if (kind < 36) {
    // Invalid UTF-8 in a text frame: the socket is closed (RFC 6455).
    return { payload: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), binary: false };
  }
  if (kind < 40) return { payload: '{"event":"pusher:ping","data":"' + 'x'.repeat(70 * 1024) + '"}', binary: false }; // over 64 KB: closed
  if (kind < 70) {
    const deep = '['.repeat(25_000) + ']'.repeat(25_000);
    return {
      payload: `{"event":"${rng.pick(['client-deep', 'pusher:subscribe', 'pusher:ping'])}","channel":"private-f-b","data":${deep}}`,
      binary: false,
    };
  }
  const channel = rng.chance(0.7) ? rng.pick(CHANNELS) : randomValue(rng);
  const event = rng.chance(0.8) ? rng.pick(EVENTS) : randomString(rng);
  let frame: Record<string, unknown>;
  if (event === 'pusher:subscribe' && typeof channel === 'string') {
    const cd = channel.startsWith('presence-') ? randomChannelData(rng) : undefined;
    frame = {
      event,
      data: { channel, auth: randomAuth(rng, socketId, channel, cd), channel_data: rng.chance(0.9) ? cd : randomValue(rng) },
    };
    if (rng.chance(0.2)) frame.data = JSON.stringify(frame.data); // some clients send data as a string
  } else if (event === 'pusher:signin') {
    const userData = rng.chance(0.7)
      ? JSON.stringify({ id: rng.pick(['u1', 'u2', '', 'u'.repeat(200)]), watchlist: randomValue(rng) })
      : randomValue(rng);
    frame = {
      event,
      data: {
        user_data: userData,
        auth:
          typeof userData === 'string' && rng.chance(0.5)
            ? `${DEMO_APP.key}:${sign(DEMO_APP.secret, `${socketId}::user::${userData}`)}`
            : randomValue(rng),
      },
    };
  } else {
    frame = { event, channel, data: randomValue(rng) };
  }
  let text = JSON.stringify(frame);
  if (rng.chance(0.15)) {
    // Byte-level damage: truncate, insert, or replace a character.
    const at = rng.int(text.length + 1);
    const op = rng.int(3);
    text =
      op === 0
        ? text.slice(0, at)
        : op === 1
          ? text.slice(0, at) + CHARS[rng.int(CHARS.length)] + text.slice(at)
          : text.slice(0, at) + text.slice(at + 1);
  }
  return { payload: text, binary: false };
}

/** Every event a node may send a fuzzing client. */
export const ALLOWED_EVENTS = new Set([
  'pusher:connection_established',
  'pusher:error',
  'pusher:subscription_error',
  'pusher_internal:subscription_succeeded',
  'pusher:pong',
  'pusher:ping',
  'pusher:signin_success',
  'pusher:cache_miss',
  'pusher_internal:member_added',
  'pusher_internal:member_removed',
  'pusher_internal:watchlist_events',
]);
