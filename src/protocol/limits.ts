// The protocol's fixed numbers (PROTOCOL.md sections 5-7), in one place. Limits an
// operator may change live in the config schema; these are Pusher's own.

/** `socket_id` as the SDKs validate it. */
export const SOCKET_ID_PATTERN = /^\d+\.\d+$/;

/** A channel history's epoch (docs/RECOVERY.md), as the server makes it and a client gives it back. */
export const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Presence and sign-in user ids. */
export const MAX_USER_ID_LENGTH = 128;
/** Watchlists: the first 100 ids are kept, 4302 tells the client. */
export const MAX_WATCHLIST = 100;
/** HTTP API requests whose auth_timestamp is further than this from now are refused. */
export const TIMESTAMP_WINDOW_SECONDS = 600;
/** A cache channel keeps its last event for up to 30 minutes. */
export const CACHE_TTL_SECONDS = 30 * 60;
/** Above this many subscribers, subscription_count is sent at most every 5 s while there is churn. */
export const COUNT_THROTTLE_ABOVE = 100;
export const COUNT_THROTTLE_MS = 5000;
/** Protocol versions a client may ask for (pusher-js sends 7). */
export const SUPPORTED_PROTOCOLS: ReadonlySet<number> = new Set([5, 6, 7]);
