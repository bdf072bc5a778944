// Who may use the console: whoever holds console.token. A browser logs in once with
// a form and keeps a session cookie (HttpOnly, SameSite=Strict) that is derived from
// the token, never the token itself, so the token is not echoed anywhere; scripts send
// `Authorization: Bearer <token>`. Every comparison takes the same time whatever the
// input (HMACs of equal length compared with timingSafeEqual).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'chorus_console';
/** How long a login lasts. */
export const SESSION_SECONDS = 12 * 60 * 60;
const SESSION_VERSION = 'v1';

/** The request's credentials, read in the handler's synchronous part (uWS forgets the request after). */
export interface Credentials {
  cookie: string;
  authorization: string;
}

export class ConsoleAuth {
  /** Keyed by the token: a session made with another token (rotated, another cluster) does not verify. */
  private readonly key: Buffer;
  /** The token is not kept: its HMAC stands in for it in comparisons. */
  private readonly tokenMac: Buffer;

  constructor(token: string) {
    this.key = createHmac('sha256', 'chorus-console').update(token).digest();
    this.tokenMac = this.mac('token', token);
  }

  private mac(purpose: string, value: string): Buffer {
    return createHmac('sha256', this.key).update(purpose).update('\n').update(value).digest();
  }

  /** Whether the token given equals console.token (constant time: both sides are HMACs). */
  tokenMatches(given: string): boolean {
    return timingSafeEqual(this.mac('token', given), this.tokenMac);
  }

  allowed(c: Credentials): boolean {
    const bearer = /^Bearer\s+(.+)$/i.exec(c.authorization.trim());
    if (bearer) return this.tokenMatches(bearer[1]);
    const session = cookieValue(c.cookie, SESSION_COOKIE);
    return session !== null && this.sessionValid(session);
  }

  /** A new session cookie's value: version, expiry and their MAC. */
  newSession(now = Date.now()): string {
    const expires = String(Math.floor(now / 1000) + SESSION_SECONDS);
    return `${SESSION_VERSION}.${expires}.${this.mac('session', expires).toString('base64url')}`;
  }

  sessionValid(value: string, now = Date.now()): boolean {
    const [version, expires, mac] = value.split('.');
    if (version !== SESSION_VERSION || !expires || !mac || !/^\d{1,12}$/.test(expires)) return false;
    if (Number(expires) * 1000 <= now) return false;
    const want = this.mac('session', expires);
    const got = Buffer.from(mac, 'base64url');
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/** One cookie's value from a Cookie header, or null. */
export function cookieValue(header: string, name: string): string | null {
  if (header.length === 0 || header.length > 8192) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export const sessionCookie = (value: string): string =>
  `${SESSION_COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${SESSION_SECONDS}`;

export const clearedCookie = `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
