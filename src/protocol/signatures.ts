// HMAC signatures for channel auth, user sign-in, the HTTP API and webhooks.
import { createHmac, createSecretKey, hash, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Key objects per secret: importing the key once saves work on every signature. Bounded. */
const keys = new Map<string, KeyObject>();

function keyFor(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    if (keys.size >= 10_000) keys.clear();
    keys.set(secret, (key = createSecretKey(Buffer.from(secret))));
  }
  return key;
}

export const hmacSha256Hex = (secret: string, data: string): string => createHmac('sha256', keyFor(secret)).update(data).digest('hex');

/** One-shot MD5 (crypto.hash skips the Hash object). */
export const md5Hex = (data: string | Buffer): string => hash('md5', data, 'hex');

/** Compares two strings in time that depends only on their length. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Checks a client `auth` value `<key>:<hex hmac>` against the string the client should have had signed. */
export function verifyClientAuth(auth: unknown, appKey: string, secret: string, stringToSign: string): boolean {
  if (typeof auth !== 'string') return false;
  const colon = auth.indexOf(':');
  if (colon <= 0) return false;
  const key = auth.slice(0, colon);
  const signature = auth.slice(colon + 1);
  const keyOk = safeEqual(key, appKey);
  const sigOk = safeEqual(signature, hmacSha256Hex(secret, stringToSign));
  return keyOk && sigOk;
}

export const channelStringToSign = (socketId: string, channel: string, channelData?: string): string =>
  channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;

export const userStringToSign = (socketId: string, userData: string): string => `${socketId}::user::${userData}`;

/**
 * The HTTP API string to sign: METHOD\nPATH\nQUERY, QUERY being every parameter but
 * auth_signature, keys lower-cased and sorted, joined unescaped.
 */
export function httpStringToSign(method: string, path: string, params: Map<string, string>): string {
  const keys = [...params.keys()].filter((k) => k !== 'auth_signature').sort();
  const query = keys.map((k) => `${k}=${params.get(k)}`).join('&');
  return `${method.toUpperCase()}\n${path}\n${query}`;
}
