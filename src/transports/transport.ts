// A transport moves bytes between nodes and knows nothing of Pusher: topics to
// publish and subscribe, and a few atomic key-value operations in the broker.
// Everything with meaning (presence, counts, who gets what) lives in the cluster
// layer above it; a new broker is one file that passes test/transport-contract.

export interface TransportEvents {
  /** A payload arrived on a subscribed topic. Must not throw back into the broker client. */
  message(topic: string, payload: string): void;
  /** The broker connection went down (false) or came back with subscriptions restored (true). */
  status(up: boolean): void;
  /**
   * Given: the first connect waits as long as the broker is unreachable (down, failing over,
   * not yet started) and calls this every few seconds with why. It still rejects at once when
   * the broker itself refuses (wrong password, ACL, protected mode ...). Not given: connect
   * rejects after its bound.
   */
  waiting?: (reason: string) => void;
}

/** How often a patient first connect says why it is still waiting. */
export const WAITING_REPORT_MS = 5000;

/** Thrown by key-value operations of a transport whose broker has no shared state. */
export class SharedStateUnavailable extends Error {
  readonly code = 'SHARED_STATE_UNAVAILABLE';
  constructor(what: string) {
    super(`${what}: the broker has no shared key-value state`);
  }
}

export interface Transport {
  /** For logs and metrics: "redis", "redis-cluster", "nats", "memory". */
  readonly name: string;
  /**
   * False when the broker has no shared key-value state (NATS without JetStream): the
   * key-value operations below then reject with SharedStateUnavailable. Known after connect.
   */
  readonly sharedState: boolean;
  /**
   * A topic name from parts in the broker's own syntax. Injective: different part lists
   * always give different topics, whatever characters the parts hold.
   */
  topic(...parts: string[]): string;
  /** Connects; rejects if the broker cannot be reached at all (or refuses us, with its own error). */
  connect(events: TransportEvents): Promise<void>;
  /** Fire and forget; dropped (never buffered without bound) while the broker is down or stalled. */
  publish(topic: string, payload: string): void;
  /** Resolves once the broker confirmed every topic's subscription. Subscribing twice is a no-op. */
  subscribe(topics: readonly string[]): Promise<void>;
  /** Resolves once the broker confirmed; topics not held are ignored. */
  unsubscribe(topics: readonly string[]): Promise<void>;

  /** Creates the key for ttlMs unless it exists (and has not expired): true for exactly one caller. */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** Deletes the key; true only for the one caller that found it there (and not expired). */
  take(key: string): Promise<boolean>;
  /** Sets a value that expires after ttlMs. */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value and its remaining time to live, or null when absent or expired. */
  get(key: string): Promise<{ value: string; ttlMs: number } | null>;
  /**
   * A counter per member in one key: takes one unit for `member` when the counts of
   * `live` members (all members when `live` is null) add up to less than `max`.
   * Counts of members not in `live` are dropped on the way (nodes that died).
   */
  quotaTake(key: string, member: string, max: number, live: readonly string[] | null): Promise<boolean>;
  /** Gives one unit of `member` back (never below zero). */
  quotaRelease(key: string, member: string): Promise<void>;

  /** One round trip to the broker (for the RTT metric). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
