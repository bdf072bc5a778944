// CORS for the HTTP API, from Sockudo's `cors` section. With "*" every response carries
// one constant header (the hot path allocates nothing); with a list, a listed Origin is
// echoed back (with Vary: Origin, and credentials if configured) and others get no
// Access-Control-Allow-Origin, so browsers refuse the call.
import { originListed } from '../origins.js';

export interface CorsSettings {
  origins: readonly string[];
  credentials: boolean;
  methods: readonly string[];
  allowedHeaders: readonly string[];
}

export type HeaderList = ReadonlyArray<readonly [string, string]>;

export const ANY_ORIGIN: HeaderList = [['Access-Control-Allow-Origin', '*']];
const VARY_ORIGIN: HeaderList = [['Vary', 'Origin']];
const PREFLIGHT_MAX_AGE = '86400';

export class CorsPolicy {
  /** No need to read the Origin header: every origin gets the same answer. */
  readonly anyOrigin: boolean;
  private readonly allowTail: HeaderList;

  constructor(private readonly settings: CorsSettings) {
    this.anyOrigin = settings.origins.some((o) => o === '*' || o.toLowerCase() === 'any');
    this.allowTail = [
      ['Access-Control-Allow-Methods', settings.methods.join(', ')],
      ['Access-Control-Allow-Headers', settings.allowedHeaders.join(', ')],
      ['Access-Control-Max-Age', PREFLIGHT_MAX_AGE],
    ];
  }

  /** For an API response to a request whose Origin header is `origin` ('' when absent). */
  responseHeaders(origin: string): HeaderList {
    if (this.anyOrigin) return ANY_ORIGIN;
    if (!originListed(this.settings.origins, origin)) return VARY_ORIGIN;
    const headers: Array<readonly [string, string]> = [
      ['Access-Control-Allow-Origin', origin],
      ['Vary', 'Origin'],
    ];
    // Browsers refuse credentials with "*", so Sockudo never sends them there either.
    if (this.settings.credentials) headers.push(['Access-Control-Allow-Credentials', 'true']);
    return headers;
  }

  /** For an OPTIONS preflight; an origin not allowed gets no Allow-* headers at all. */
  preflightHeaders(origin: string): HeaderList {
    const base = this.responseHeaders(origin);
    return base === VARY_ORIGIN ? VARY_ORIGIN : [...base, ...this.allowTail];
  }
}
