// NATS core pub/sub for topics; JetStream key-value buckets (nats-kv.ts) for the
// atomic operations. Subjects are tokens joined by "."; parts are escaped so that
// any channel name stays exactly one valid token.
import { connect, Events, type ConnectionOptions, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import { Backlog } from './backlog.js';
import { NatsKv } from './nats-kv.js';
import { NatsLog, republishedPayload } from './nats-log.js';
import { joinParts, partEscaper } from './topic-escape.js';
import { SharedStateUnavailable, WAITING_REPORT_MS, type NumberedLog, type Transport, type TransportEvents } from './transport.js';

export interface NatsSettings {
  servers: string[];
  username?: string | null;
  password?: string | null;
  token?: string | null;
  connectTimeoutMs: number;
  /** bucket name prefix */
  prefix: string;
  /** JetStream replicas of the key-value buckets: 1 (default) for one server, 3 for a NATS cluster. */
  replicas?: number;
  /** Max age of the claims/values bucket, and so the longest TTL accepted (default 24 h). */
  kvMaxAgeMs?: number;
}

export const DEFAULT_KV_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * A token may not hold "." (separator), "*" or ">" (wildcards) or whitespace; control
 * characters would break the protocol line. "%" is the escape mark itself.
 */
/**
 * Codes that mean the server answered and said no, or the options cannot work (credentials,
 * permissions, certificates): waiting cannot help. By code only: a message such as
 * "getaddrinfo ENOTFOUND nats-tls" must not read as a TLS refusal.
 */
const REFUSED_CODES = new Set([
  'AUTHORIZATION_VIOLATION',
  'AUTHENTICATION_EXPIRED',
  'ACCOUNT_EXPIRED',
  'PERMISSIONS_VIOLATION',
  'BAD_AUTHENTICATION',
  'BAD_CREDS',
  'INVALID_OPTION',
  'WSS_REQUIRED',
  'SERVER_OPT_NA',
]);
const CERTIFICATE_CODE = /^(ERR_TLS_CERT|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_SSL_)/;

/** The broker (or its certificate) refused: `fromBroker`, as RedisConnectError says it. */
export class NatsRefusedError extends Error {
  readonly code = 'NATS_REFUSED';
  readonly fromBroker = true;
}

function refusal(err: Error): NatsRefusedError | null {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return null;
  return REFUSED_CODES.has(code) || CERTIFICATE_CODE.test(code) ? new NatsRefusedError(err.message, { cause: err }) : null;
}

const escapeToken = partEscaper('[%.*>\\s\\x00-\\x1f\\x7f]');

interface Held {
  sub: Subscription;
  /** the flush that confirmed (or will confirm) this topic's SUB */
  confirmed: Promise<void>;
}

export class NatsTransport implements Transport {
  readonly name = 'nats';
  /** JetStream (key-value buckets) is enabled on the server; probed at connect. */
  sharedState = true;
  private nc: NatsConnection | null = null;
  private kv: NatsKv | null = null;
  /** JetStream numbered logs (channel history); absent without JetStream */
  numbered?: NumberedLog;
  private readonly held = new Map<string, Held>();
  private events: TransportEvents | null = null;
  /** nats.js buffers publishes while reconnecting without a bound; we drop them instead. */
  private up = false;
  /** Bumped on every disconnect: a reconnect confirmation that started before it is stale. */
  private epoch = 0;
  /** nats.js does not report what is still unsent: a periodic flush round trip confirms it. */
  private readonly backlog: Backlog;
  private unflushed = 0;
  private flushing = false;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly settings: NatsSettings,
    private readonly log: Logger,
  ) {
    this.backlog = new Backlog(log);
  }

  /** close() was called: a patient first connect gives up. */
  private closed = false;

  topic(...parts: string[]): string {
    return joinParts(parts, '.', escapeToken);
  }

  async connect(events: TransportEvents): Promise<void> {
    this.events = events;
    const s = this.settings;
    const options: ConnectionOptions = {
      servers: s.servers,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // A server that stops answering (not just closing) is declared gone in 2-3 s.
      pingInterval: 1000,
      maxPingOut: 2,
      timeout: s.connectTimeoutMs,
      ...(s.username ? { user: s.username, pass: s.password ?? undefined } : {}),
      ...(s.token ? { token: s.token } : {}),
    };
    const nc = await this.firstConnect(options, events.waiting);
    if (this.closed) {
      await nc.close().catch(() => undefined);
      throw new Error('the transport closed before the broker answered');
    }
    this.nc = nc;
    this.up = true;
    try {
      const jsm = await nc.jetstreamManager();
      this.numbered = new NatsLog(nc, jsm, { prefix: s.prefix, replicas: s.replicas ?? 1 });
      this.kv = new NatsKv(nc, { prefix: s.prefix, replicas: s.replicas ?? 1, maxAgeMs: s.kvMaxAgeMs ?? DEFAULT_KV_MAX_AGE_MS }, this.log);
    } catch (err) {
      this.sharedState = false;
      this.log.warn(
        { err: (err as Error).message },
        'NATS server has no JetStream: claims, occupancy edges, connection quotas and cache channels fall back to per-node answers (start nats-server with -js)',
      );
    }
    this.flushTimer = setInterval(() => this.confirmSent(), 250);
    this.flushTimer.unref();
    void this.watchStatus(nc);
  }

  /**
   * nats.js rejects with the server's own words (Authorization Violation ...) or, when no
   * server answers, a timeout or refusal. With `waiting`, only the former ends the wait.
   */
  private async firstConnect(options: ConnectionOptions, waiting?: (reason: string) => void): Promise<NatsConnection> {
    let reported = 0;
    for (;;) {
      try {
        return await connect(options);
      } catch (err) {
        const refused = refusal(err as Error);
        if (refused) throw refused;
        if (this.closed) throw new Error('the transport closed before the broker answered', { cause: err });
        if (!waiting) throw err;
        if (Date.now() - reported >= WAITING_REPORT_MS) {
          reported = Date.now();
          waiting((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private emit(up: boolean): void {
    try {
      this.events?.status(up);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'transport status handler threw');
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) {
        this.epoch++;
        if (!this.up) continue;
        this.up = false;
        this.emit(false);
      } else if (status.type === Events.Reconnect) {
        // nats.js sent every SUB again on reconnecting; a round trip confirms the server has them.
        const epoch = this.epoch;
        nc.flush().then(
          () => {
            if (epoch !== this.epoch || this.up || this.nc !== nc) return;
            this.up = true;
            this.emit(true);
          },
          () => undefined,
        );
      }
    }
    // The connection closed for good (close(), or reconnecting was given up).
    if (this.nc === nc && this.up) {
      this.up = false;
      this.emit(false);
    }
  }

  /** Every 250 ms: a flush round trip; when it returns, what was published before it was sent. */
  private confirmSent(): void {
    const nc = this.nc;
    if (!nc || this.flushing || this.unflushed === 0) return;
    const covered = this.unflushed;
    this.unflushed = 0;
    this.flushing = true;
    // Either way the bytes are out of nats.js: sent, or dropped with the connection.
    const settle = () => {
      this.flushing = false;
      this.backlog.release(covered);
    };
    nc.flush().then(settle, settle);
  }

  publish(topic: string, payload: string): void {
    if (!this.up || !this.nc) return;
    const bytes = payload.length;
    if (!this.backlog.take(bytes)) return;
    this.unflushed += bytes;
    try {
      this.nc.publish(topic, payload);
    } catch {
      // closed, a bad subject or the buffer full: dropped by design
    }
  }

  private deliver(topic: string, payload: string): void {
    try {
      this.events?.message(topic, payload);
    } catch (err) {
      this.log.error({ err: (err as Error).message, topic }, 'transport message handler threw');
    }
  }

  /** One SUB per topic, then one flush for the batch: the server answers a refused SUB before that PONG. */
  async subscribe(topics: readonly string[]): Promise<void> {
    const nc = this.nc;
    if (!nc) throw new Error('nats transport is not connected');
    const waits: Promise<void>[] = [];
    const fresh: string[] = [];
    for (const topic of new Set(topics)) {
      const held = this.held.get(topic);
      if (held) waits.push(held.confirmed);
      else fresh.push(topic);
    }
    if (fresh.length === 0) return void (await Promise.all(waits));
    const refused = new Map<string, Error>();
    let answered = false;
    const subs: Array<[string, Subscription]> = [];
    try {
      for (const topic of fresh) {
        const sub = nc.subscribe(topic, {
          callback: (err, msg) => {
            if (!err) {
              // A stored log entry the stream republished: its sequence is in the headers.
              if (msg.headers) return this.deliver(msg.subject, republishedPayload(msg.headers, msg.string()) ?? '');
              return this.deliver(msg.subject, msg.string());
            }
            refused.set(topic, err);
            // Refused after the batch was confirmed (permissions changed): nats.js closed it.
            if (answered) {
              this.log.warn({ err: err.message, topic }, 'NATS dropped a subscription');
              this.forget(topic);
            }
          },
        });
        subs.push([topic, sub]);
      }
    } catch (err) {
      for (const [, sub] of subs) sub.unsubscribe();
      throw err;
    }
    const confirmed = nc.flush().then(() => {
      answered = true;
      if (refused.size === 0) return;
      for (const topic of refused.keys()) this.forget(topic);
      throw [...refused.values()][0];
    });
    for (const [topic, sub] of subs) this.held.set(topic, { sub, confirmed });
    confirmed.catch(() => {
      for (const [topic] of subs) if (this.held.get(topic)?.confirmed === confirmed) this.forget(topic);
    });
    waits.push(confirmed);
    await Promise.all(waits);
  }

  private forget(topic: string): void {
    const held = this.held.get(topic);
    if (!held) return;
    this.held.delete(topic);
    if (!held.sub.isClosed()) held.sub.unsubscribe();
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    const gone = [...new Set(topics)].filter((t) => this.held.has(t));
    if (gone.length === 0) return;
    for (const topic of gone) this.forget(topic);
    await this.nc?.flush();
  }

  private store(what: string): NatsKv {
    if (!this.sharedState) throw new SharedStateUnavailable(what);
    if (!this.kv) throw new Error(`${what}: nats transport is not connected`);
    return this.kv;
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return this.store('claim').claim(key, ttlMs);
  }

  async take(key: string): Promise<boolean> {
    return this.store('take').take(key);
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    return this.store('put').put(key, value, ttlMs);
  }

  async get(key: string): Promise<{ value: string; ttlMs: number } | null> {
    return this.store('get').get(key);
  }

  async quotaTake(key: string, member: string, max: number, live: readonly string[] | null): Promise<boolean> {
    return this.store('quotaTake').quotaTake(key, member, max, live);
  }

  async quotaRelease(key: string, member: string): Promise<void> {
    return this.store('quotaRelease').quotaRelease(key, member);
  }

  /** Not part of the Transport contract: kept for the old cluster adapter's occupancy sets. */
  async setChange(op: 'add' | 'remove', key: string, member: string): Promise<{ changed: boolean; members: string[] }> {
    return this.store('setChange').setChange(op, key, member);
  }

  async ping(): Promise<void> {
    if (!this.nc) throw new Error('nats transport is not connected');
    await this.nc.rtt();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.events = null;
    if (this.flushTimer) clearInterval(this.flushTimer);
    const nc = this.nc;
    this.nc = null;
    this.kv = null;
    this.held.clear();
    if (!nc) return;
    await nc.drain().catch(() => nc.close());
  }
}
