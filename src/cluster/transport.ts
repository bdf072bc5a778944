// A transport moves bytes between nodes and knows nothing of Pusher: topics to
// publish and subscribe, and a few atomic operations in the broker. Everything
// with meaning (presence, counts, who gets what) lives in the adapter above it.

export interface TransportEvents {
  /** A payload arrived on a subscribed topic. */
  message(topic: string, payload: string): void;
  /** The broker connection went down (false) or came back with subscriptions restored (true). */
  status(up: boolean): void;
}

export interface Transport {
  /**
   * False when the broker has no shared key-value state (NATS without JetStream): the adapter
   * then falls back to per-node answers for claims, occupancy, quotas and the cache.
   */
  readonly sharedState: boolean;
  /** Builds a topic name from parts in the broker's own syntax (escaping what it must). */
  topic(...parts: string[]): string;
  /** Connects and subscribes nothing yet; rejects if the broker cannot be reached at all. */
  connect(events: TransportEvents): Promise<void>;
  /** Fire and forget; dropped (not buffered) while the broker is down. */
  publish(topic: string, payload: string): void;
  /** Resolves once the broker confirmed the subscription. */
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Atomically claims a key for ttlMs: true for exactly one caller cluster-wide. */
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** Deletes a key; true only for the one caller that found it there. */
  take(key: string): Promise<boolean>;
  /** Adds to or removes from a set atomically; `changed` tells whether the set changed, `members` what it holds after. */
  setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }>;
  /**
   * A counter per member in one key: takes one unit for `member` when the counts of
   * `live` members (all members when `live` is null) add up to less than `max`.
   * Counts of members not in `live` are dropped on the way (nodes that died).
   */
  quotaTake(key: string, member: string, max: number, live: string[] | null): Promise<boolean>;
  quotaRelease(key: string, member: string): Promise<void>;
  /** A value with a time to live (cache channels). */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value and its remaining time to live, or null. */
  get(key: string): Promise<{ value: string; ttlMs: number } | null>;
  /** One round trip to the broker (for the RTT metric). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
