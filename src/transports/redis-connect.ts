// A bounded connect that reports what really went wrong. ioredis alone rejects a wrong
// password with "Connection is closed.", connects to db 0 when SELECT fails, and retries
// a server in protected mode (which answers -DENIED and hangs up before ioredis reads it)
// forever. Here the first error the broker itself sent wins, and the wait is bounded.
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Cluster, ReplyError, type Redis } from 'ioredis';
import { WAITING_REPORT_MS } from './transport.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, resolveRedisSettings, type RedisAddress, type RedisSettings } from './redis-settings.js';

export class RedisConnectError extends Error {
  readonly code = 'REDIS_CONNECT_FAILED';
  /** true when the text is the broker's own answer (WRONGPASS, NOPERM, DENIED ...), false for network trouble or a timeout. */
  readonly fromBroker: boolean;
  constructor(message: string, fromBroker: boolean) {
    super(message);
    this.fromBroker = fromBroker;
  }
}

/** Replies that mean "not yet", not "never": ioredis waits them out itself. */
const TRANSIENT = /^(LOADING|CLUSTERDOWN|TRYAGAIN|BUSY|MASTERDOWN\b|ERR max number of clients)/;

/** ioredis wraps a sentinel's own refusal in a plain error: "All sentinels are unreachable ... Last error: WRONGPASS ...". */
const SENTINEL_REFUSAL = /Last error: (?:ReplyError: )?((?:WRONGPASS|NOAUTH|NOPERM)\b.*)$/;

const isReply = (err: unknown): err is Error => err instanceof (ReplyError as new () => Error);

/** The error inside a cluster's "all nodes failed" wrapper. */
const innermost = (err: Error): Error => (err as { lastNodeError?: Error }).lastNodeError ?? err;

/** The server accepted the TCP connection and then hung up: it may have said why first. */
const hungUp = (err: Error): boolean => /EPIPE|ECONNRESET|Connection is closed/i.test(err.message);

/** Reads what a server sends unasked within `ms` (Redis only does that to refuse: -DENIED, -ERR max clients). */
function greeting(address: RedisAddress, tls: boolean, ms: number): Promise<string | null> {
  return new Promise((resolve) => {
    let text = '';
    const socket: Socket = tls
      ? tlsConnect({ host: address.host, port: address.port, rejectUnauthorized: false })
      : tcpConnect(address.port, address.host);
    const done = (value: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(null), ms);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\r\n');
      if (end >= 0 || text.length > 4096) done(text.startsWith('-') ? text.slice(1, end >= 0 ? end : undefined) : null);
    });
    socket.on('error', () => done(null));
    socket.on('close', () => done(text.startsWith('-') ? text.slice(1).trim() : null));
  });
}

/** Where a refusal could be read from (not for Sentinel: the master's address is not known up front). */
function probeTargets(settings: RedisSettings): { addresses: RedisAddress[]; tls: boolean } {
  const r = resolveRedisSettings(settings);
  if (settings.sentinels && settings.sentinels.length > 0) return { addresses: [], tls: false };
  const addresses =
    settings.clusterNodes && settings.clusterNodes.length > 0 ? [...settings.clusterNodes] : [{ host: r.host, port: r.port }];
  return { addresses: addresses.slice(0, 3), tls: r.tls !== undefined };
}

async function refusal(settings: RedisSettings): Promise<string | null> {
  const { addresses, tls } = probeTargets(settings);
  const answers = await Promise.all(addresses.map((a) => greeting(a, tls, 500)));
  return answers.find((a) => a !== null) ?? null;
}

/**
 * Connects a lazy client from createRedisClient and checks it with one PING. Rejects with
 * a RedisConnectError carrying the broker's own error text (WRONGPASS, NOAUTH, NOPERM,
 * DENIED, "DB index is out of range") or, after `settings.connectTimeoutMs`, the first
 * network error seen. On failure the client is disconnected (it stops retrying).
 *
 * With `patience`, network trouble never ends the wait (ioredis goes on retrying): every few
 * seconds `waiting` hears the latest error, and only the broker's own refusal, or the signal
 * (the transport closed), rejects.
 */
export interface Patience {
  waiting: (reason: string) => void;
  signal: AbortSignal;
}

export async function connectRedis(client: Redis | Cluster, settings: RedisSettings, patience?: Patience): Promise<void> {
  const waiting = patience?.waiting;
  const timeoutMs = settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let network: Error | null = null;
  let latest: Error | null = null;
  let probing = false;
  let fail: (err: RedisConnectError) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const onError = (raw: Error) => {
    const err = innermost(raw);
    if (isReply(err)) {
      if (!TRANSIENT.test(err.message)) fail(new RedisConnectError(err.message, true));
      return;
    }
    // (isReply's guard narrows err to never here: ReplyError is an Error.)
    const message = (err as Error).message;
    const sentinel = SENTINEL_REFUSAL.exec(message);
    if (sentinel) return fail(new RedisConnectError(`sentinel: ${sentinel[1]}`, true));
    network ??= err;
    latest = err;
    // The first network trouble is reported at once: a patient node listens (503) without delay.
    if (waiting && !reportedOnce) {
      reportedOnce = true;
      waiting(message);
    }
    if (hungUp(err)) probe();
  };
  let reportedOnce = false;
  // What the server said before hanging up is read on a connection of our own: ioredis may have
  // taken it as the answer to its HELLO (it swallows a -DENIED that mentions "no password").
  const probe = () => {
    if (probing) return;
    probing = true;
    void refusal(settings).then((text) => {
      if (text && !TRANSIENT.test(text)) fail(new RedisConnectError(text, true));
      probing = false;
    });
  };
  let tcpUp = false;
  const onConnect = () => (tcpUp = true);
  const onClose = () => {
    if (tcpUp) probe(); // accepted, then closed before ready: it may have said why
    tcpUp = false;
  };
  const onAbort = () => fail(new RedisConnectError('the transport closed before the broker answered', false));
  patience?.signal.addEventListener('abort', onAbort);
  if (patience?.signal.aborted) onAbort();
  const isCluster = client instanceof Cluster;
  client.on('error', onError);
  if (isCluster) client.on('node error', onError);
  client.on('connect', onConnect);
  client.on('close', onClose);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    const expire = () => {
      if (!waiting) {
        reject(new RedisConnectError(`no connection within ${timeoutMs} ms${network ? `: ${network.message}` : ''}`, false));
        return;
      }
      waiting(latest?.message ?? 'no answer from the broker yet');
      timer = setTimeout(expire, WAITING_REPORT_MS);
    };
    timer = setTimeout(expire, waiting ? WAITING_REPORT_MS : timeoutMs);
  });
  try {
    const ready = new Promise<void>((resolve) => {
      if (client.status === 'ready') return resolve();
      client.once('ready', () => resolve());
      if (client.status === 'wait' || client.status === 'end' || client.status === 'close') client.connect().catch(() => undefined);
    });
    await Promise.race([ready, failed, timeout]);
    // One round trip: a refused SELECT (emitted as an error while still connecting) has been
    // reported by the time PING answers, and a user who may not even PING is refused here.
    await Promise.race([
      client.ping().catch((err: Error) => {
        if (isReply(err) && !TRANSIENT.test(err.message)) throw new RedisConnectError(err.message, true);
      }),
      failed,
      timeout,
    ]);
    await Promise.race([new Promise((r) => setImmediate(r)), failed]);
  } catch (err) {
    client.disconnect();
    if (err instanceof RedisConnectError) throw err;
    throw new RedisConnectError((err as Error).message, false);
  } finally {
    clearTimeout(timer);
    patience?.signal.removeEventListener('abort', onAbort);
    client.off('error', onError);
    client.off('connect', onConnect);
    client.off('close', onClose);
    if (isCluster) client.off('node error', onError);
  }
}
