// Real clients: pusher-js for sockets, the `pusher` SDK for the HTTP API and
// auth signatures, and a raw `ws` socket for frames a good client never sends.
import PusherModule from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';
import type { ChorusNode, TestApp } from './node.js';
import { DEMO_APP } from './node.js';
import { until } from './wait.js';

// pusher-js is CommonJS whose typings declare a default export; at run time the module is the class.
type PusherClass = typeof PusherModule.default;
export const Pusher: PusherClass =
  (PusherModule as unknown as { default?: PusherClass }).default ?? (PusherModule as unknown as PusherClass);
export type PusherClient = InstanceType<PusherClass>;

/** The `pusher` server SDK for a node; `extra` adds SDK options (e.g. encryptionMasterKeyBase64). */
export function serverSdk(node: { port: number }, app: TestApp = DEMO_APP, extra: Record<string, unknown> = {}): PusherServer {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: '127.0.0.1',
    port: String(node.port),
    useTLS: false,
    ...extra,
  });
}

export interface ClientOptions {
  app?: TestApp;
  /** presence user for the built-in authorizer */
  user?: { user_id: string; user_info?: unknown };
  /** user data for sign-in */
  signinUser?: { id: string; user_info?: unknown; watchlist?: string[] };
  extra?: Record<string, unknown>;
}

/** A pusher-js client whose channel and user auth are signed in-process with the SDK. */
export function pusherClient(node: { port: number }, opts: ClientOptions = {}): PusherClient {
  const app = opts.app ?? DEMO_APP;
  const sdk = serverSdk(node, app);
  return new Pusher(app.key, {
    wsHost: '127.0.0.1',
    wsPort: node.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    cluster: 'mt1',
    channelAuthorization: {
      customHandler: (params: { socketId: string; channelName: string }, cb: (err: Error | null, data: unknown) => void) => {
        const presence = params.channelName.startsWith('presence-') ? (opts.user ?? { user_id: 'anon' }) : undefined;
        cb(null, sdk.authorizeChannel(params.socketId, params.channelName, presence as never));
      },
    } as never,
    userAuthentication: {
      customHandler: (params: { socketId: string }, cb: (err: Error | null, data: unknown) => void) => {
        cb(null, sdk.authenticateUser(params.socketId, opts.signinUser ?? { id: 'anon' }));
      },
    } as never,
    ...opts.extra,
  });
}

export function waitFor<T = unknown>(
  bindable: { bind(ev: string, cb: (d: T) => void): unknown; unbind?(ev: string, cb?: (d: T) => void): unknown },
  event: string,
  timeoutMs = 5000,
): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`timed out waiting for ${event}`)), timeoutMs);
    const cb = (d: T) => {
      clearTimeout(timer);
      bindable.unbind?.(event, cb);
      res(d);
    };
    bindable.bind(event, cb);
  });
}

export async function connected(client: PusherClient, timeoutMs = 5000): Promise<string> {
  if (client.connection.state !== 'connected') await waitFor(client.connection, 'connected', timeoutMs);
  return client.connection.socket_id;
}

/** A raw WebSocket that records every frame it receives. */
export interface RawSocket {
  ws: WebSocket;
  frames: Array<{ event: string; channel?: string; data?: unknown; [k: string]: unknown }>;
  send(obj: unknown): void;
  sendRaw(data: string | Buffer, binary?: boolean): void;
  /** waits for the next frame (after those already seen) matching the predicate */
  next(pred?: (f: RawSocket['frames'][number]) => boolean, timeoutMs?: number): Promise<RawSocket['frames'][number]>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function rawSocket(
  node: { port: number },
  path = '/app/app-key?protocol=7&client=js&version=8.4.0',
  headers: Record<string, string> = {},
): Promise<RawSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.port}${path}`, { headers });
  const frames: RawSocket['frames'] = [];
  let cursor = 0;
  const waiters: Array<() => void> = [];
  ws.on('message', (buf) => {
    try {
      frames.push(JSON.parse(buf.toString()));
    } catch {
      frames.push({ event: '__unparseable__', data: buf.toString() });
    }
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<{ code: number; reason: string }>((res) =>
    ws.on('close', (code, reason) => {
      res({ code, reason: reason.toString() });
      waiters.splice(0).forEach((w) => w());
    }),
  );
  const sock: RawSocket = {
    ws,
    frames,
    send: (obj) => ws.send(JSON.stringify(obj)),
    sendRaw: (data, binary = false) => ws.send(data, { binary }),
    next: (pred = () => true, timeoutMs = 5000) =>
      new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no matching frame; got ${JSON.stringify(frames.slice(cursor))}`)), timeoutMs);
        const check = () => {
          while (cursor < frames.length) {
            const f = frames[cursor++];
            if (pred(f)) {
              clearTimeout(timer);
              res(f);
              return;
            }
          }
          if (ws.readyState === WebSocket.CLOSED) {
            clearTimeout(timer);
            rej(new Error(`socket closed; frames ${JSON.stringify(frames)}`));
            return;
          }
          waiters.push(check);
        };
        check();
      }),
    closed,
    close: () => ws.close(),
  };
  return new Promise((res, rej) => {
    ws.once('open', () => res(sock));
    ws.once('error', rej);
  });
}

/** Parses a frame's data when it is a JSON string (server events are double-encoded). */
export function dataOf<T = Record<string, unknown>>(frame: { data?: unknown }): T {
  return (typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data) as T;
}

export { sleep, until } from './wait.js';

export function cleanup(...items: Array<PusherClient | RawSocket | ChorusNode | undefined>): Promise<unknown> {
  return Promise.all(
    items.map(async (item) => {
      if (!item) return;
      if ('disconnect' in item) item.disconnect();
      else if ('ws' in item && 'frames' in item) item.close();
      else if ('stop' in item) await item.stop();
    }),
  );
}

export const framesOf = (sock: RawSocket, event: string) => sock.frames.filter((f) => f.event === event);

/** Sends a ping and waits for the pong: every frame sent before it has been processed. */
export async function roundTrip(sock: RawSocket): Promise<void> {
  const before = framesOf(sock, 'pusher:pong').length;
  sock.send({ event: 'pusher:ping', data: {} });
  await until(() => framesOf(sock, 'pusher:pong').length > before, 3000, 'pong');
}
