// Operational constants: the fixed numbers of how Chorus works that are not options
// (an option belongs in schema.ts with its default). One place, so no part keeps a
// private copy of a timeout another part depends on.

/** How long a first subscription waits for the broker's confirmation before going on without it. */
export const SUBSCRIBE_WAIT_MS = 3000;
/** How long a channel's broker subscription outlives its last local subscriber (churn costs nothing). */
export const TOPIC_LINGER_MS = 2000;
/** A slow client gets this long to send a whole HTTP body (slowloris). */
export const BODY_TIMEOUT_MS = 10_000;
/** Buffered bytes past which a connection that does not read is closed (4100: reconnect later). */
export const MAX_BACKPRESSURE_BYTES = 1024 * 1024;
/** The longest a cluster-wide question waits for its answers (also bounded by node_timeout_ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/** Webhooks: Pusher retries for about five minutes; ten attempts with backoff capped at a minute cover that. */
export const WEBHOOK_MAX_ATTEMPTS = 10;
/** How often queued webhooks of nodes no live node accounts for are looked for. */
export const WEBHOOK_ORPHAN_SWEEP_MS = 30_000;
/** How long a node that just started waits before it owns keys: it first learns its peers' state. */
export const READY_AFTER_HEARTBEATS = 2;
/** How long a starting node listens for its peers' answers to its hello before it serves. */
export const DISCOVERY_MS = 150;
/** How long an idempotent publish's claim holds its key while in flight (a node that dies mid-publish frees it then). */
export const IDEMPOTENCY_IN_FLIGHT_MS = 30_000;
/** How long a repeat of a key still in flight waits for its first publish's answer before it is told to retry (503). */
export const IDEMPOTENCY_WAIT_MS = 1000;
/** How often that repeat looks again. */
export const IDEMPOTENCY_POLL_MS = 50;
