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

/** The position a numbered append got. */
export interface LogPosition {
  readonly serial: number;
  readonly epoch: string;
  readonly timeMs: number;
}

export interface LogAppend {
  /** what is kept: the body and a tag (opaque to the transport) */
  readonly body: string;
  readonly tag: string;
  readonly maxEntries: number;
  /** how long the log is kept after its last append */
  readonly ttlMs: number;
  /** the epoch to start when the log is absent, or behind `seen` under `seenEpoch` (writes were lost) */
  readonly newEpoch: string;
  readonly seen: number;
  readonly seenEpoch: string;
  /** published on the topic as head + "<serial>\n<epoch>\n<timeMs>" + tail */
  readonly head: string;
  readonly tail: string;
}

export interface LogEntry {
  readonly serial: number;
  readonly timeMs: number;
  readonly body: string;
  readonly tag: string;
}

/**
 * A numbered, bounded log per topic kept by the broker, where it can keep one (Redis Streams).
 * An append numbers, stores and publishes in one atomic step, so the topic's subscribers see
 * its numbered payloads in serial order whichever node appended them.
 */
export interface LogRange {
  readonly fromSerial: number;
  readonly toSerial: number;
  readonly limit: number;
  readonly newestFirst: boolean;
  /** the log's bounds, as appended with (a broker may keep logs of different bounds apart) */
  readonly maxEntries: number;
  readonly ttlMs: number;
}

export interface LogRead {
  /** null when the log does not exist */
  readonly epoch: string | null;
  readonly lastSerial: number;
  readonly entries: LogEntry[];
  /** no entry of the log from fromSerial on was dropped before the first one returned (or before lastSerial) */
  readonly continuous: boolean;
}

/**
 * A numbered, bounded log per topic kept by the broker, where it can keep one (Redis Streams,
 * JetStream). An append numbers, stores and publishes in one atomic step, so the topic's
 * subscribers see its numbered payloads in serial order whichever node appended them.
 */
export interface NumberedLog {
  append(topic: string, entry: LogAppend): Promise<LogPosition>;
  /** Entries with from <= serial <= to (at most limit, newest first when asked) and the log's position now. */
  range(topic: string, range: LogRange): Promise<LogRead>;
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

  /** Present where the broker keeps numbered logs (channel history); absent otherwise. */
  readonly numbered?: NumberedLog;

  /** One round trip to the broker (for the RTT metric). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
