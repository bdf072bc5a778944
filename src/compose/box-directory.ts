// The directory of a box's HTTP fallback sessions (edge/fallback/forward.ts), kept in the hub of
// the box's primary over the worker's own link: claiming a session is the hub's atomic claim,
// and the holder's private address is stored beside it. Entries live SESSION_TTL_MS and are
// renewed while their session is used; a worker that dies leaves them to expire (its sessions'
// clients get a 404, as pusher-js gets from a node that died, and reconnect).
import type { Claim, SessionDirectory } from '../edge/fallback/forward.js';
import { BoxLink } from '../transports/box-link.js';

const SESSION_TTL_MS = 30 * 60_000;
const RENEW_AFTER_MS = 5 * 60_000;
/** The claim and the holder's address are two steps: a reader between them waits a moment. */
const HOLDER_RETRIES = 4;
const HOLDER_RETRY_MS = 25;

const claimKey = (sessionKey: string) => `fallback-session:${sessionKey}`;
const holderKey = (sessionKey: string) => `fallback-holder:${sessionKey}`;

export class BoxSessionDirectory implements SessionDirectory {
  /** this worker's private address, known once it listens there */
  self = '';
  private readonly link: BoxLink;
  private readonly connected: Promise<void>;
  private readonly renewedAt = new Map<string, number>();

  constructor(path: string, label: string) {
    this.link = new BoxLink(path, `${label} sessions`);
    this.connected = this.link.connect({ message: () => undefined, status: () => undefined }).catch(() => undefined);
  }

  async claim(sessionKey: string): Promise<Claim> {
    await this.connected;
    const mine = (await this.link.request('claim', [claimKey(sessionKey), SESSION_TTL_MS])) === true;
    if (!mine) return { mine: false, holder: await this.holderOf(sessionKey) };
    await this.link.request('put', [holderKey(sessionKey), this.self, SESSION_TTL_MS]);
    this.renewedAt.set(sessionKey, Date.now());
    return { mine: true };
  }

  async holderOf(sessionKey: string): Promise<string | null> {
    await this.connected;
    for (let i = 0; i < HOLDER_RETRIES; i++) {
      const v = (await this.link.request('get', [holderKey(sessionKey)])) as { value?: unknown } | null;
      if (v && typeof v.value === 'string') return v.value;
      await new Promise((r) => setTimeout(r, HOLDER_RETRY_MS));
    }
    return null;
  }

  touch(sessionKey: string): void {
    const at = this.renewedAt.get(sessionKey);
    if (at === undefined || Date.now() - at < RENEW_AFTER_MS) return;
    this.renewedAt.set(sessionKey, Date.now());
    // Best effort: a lost renewal only means the entry expires with the TTL.
    this.link.request('put', [claimKey(sessionKey), '1', SESSION_TTL_MS]).catch(() => undefined);
    this.link.request('put', [holderKey(sessionKey), this.self, SESSION_TTL_MS]).catch(() => undefined);
  }

  release(sessionKey: string): void {
    if (!this.renewedAt.delete(sessionKey)) return;
    this.link.request('take', [holderKey(sessionKey)]).catch(() => undefined);
    this.link.request('take', [claimKey(sessionKey)]).catch(() => undefined);
  }

  close(): void {
    this.link.close();
  }
}
