// HMAC signatures for channel auth, user sign-in, the HTTP API and webhooks.
import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';

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

/** Scratch for safeEqual: both strings' UTF-8, compared byte by byte. */
const SCRATCH_BYTES = 1024;
const scratchA = Buffer.allocUnsafe(SCRATCH_BYTES * 3);
const scratchB = Buffer.allocUnsafe(SCRATCH_BYTES * 3);

/**
 * Compares two strings in time that depends only on their lengths (and on whether `a` is
 * ASCII, the caller's input, never the secret): every byte (or code unit)
 * is compared, with no early exit and nothing allocated (two Buffers per compare were ~2% of
 * an API call, and charCodeAt over uWS's strings more).
 */
export function safeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  if (a.length > SCRATCH_BYTES || b.length > SCRATCH_BYTES) {
    // Past b's end charCodeAt is NaN (0 in `^`): the lengths already differ then.
    for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    return diff === 0;
  }
  // Equal code units give equal bytes; unequal ones of equal count give unequal bytes, except
  // lone surrogates (all written as U+FFFD): the UTF-16 compare below sees those.
  const n = scratchA.write(a, 0, 'utf8');
  const m = scratchB.write(b, 0, 'utf8');
  diff |= n ^ m;
  for (let i = 0; i < n; i++) diff |= scratchA[i] ^ scratchB[i];
  if (n !== a.length) for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
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
  const keys: string[] = [];
  for (const k of params.keys()) if (k !== 'auth_signature') keys.push(k);
  // The SDKs send the keys sorted: sorted only when they are not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys.sort();
      break;
    }
  }
  let query = '';
  for (let i = 0; i < keys.length; i++) query += (i === 0 ? '' : '&') + keys[i] + '=' + params.get(keys[i]);
  return method.toUpperCase() + '\n' + path + '\n' + query;
}
