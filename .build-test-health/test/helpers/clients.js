// Real clients: pusher-js for sockets, the `pusher` SDK for the HTTP API and
// auth signatures, and a raw `ws` socket for frames a good client never sends.
import PusherModule from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';
import { DEMO_APP } from './node.js';
export const Pusher = (PusherModule.default ??
    PusherModule);
export function serverSdk(node, app = DEMO_APP) {
    return new PusherServer({
        appId: app.id,
        key: app.key,
        secret: app.secret,
        host: '127.0.0.1',
        port: String(node.port),
        useTLS: false,
    });
}
/** A pusher-js client whose channel and user auth are signed in-process with the SDK. */
export function pusherClient(node, opts = {}) {
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
            customHandler: (params, cb) => {
                const presence = params.channelName.startsWith('presence-') ? opts.user ?? { user_id: 'anon' } : undefined;
                cb(null, sdk.authorizeChannel(params.socketId, params.channelName, presence));
            },
        },
        userAuthentication: {
            customHandler: (params, cb) => {
                cb(null, sdk.authenticateUser(params.socketId, (opts.signinUser ?? { id: 'anon' })));
            },
        },
        ...opts.extra,
    });
}
export function waitFor(bindable, event, timeoutMs = 5000) {
    return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`timed out waiting for ${event}`)), timeoutMs);
        const cb = (d) => {
            clearTimeout(timer);
            bindable.unbind?.(event, cb);
            res(d);
        };
        bindable.bind(event, cb);
    });
}
export async function connected(client, timeoutMs = 5000) {
    if (client.connection.state !== 'connected')
        await waitFor(client.connection, 'connected', timeoutMs);
    return client.connection.socket_id;
}
export function rawSocket(node, path = '/app/app-key?protocol=7&client=js&version=8.4.0', headers = {}) {
    const ws = new WebSocket(`ws://127.0.0.1:${node.port}${path}`, { headers });
    const frames = [];
    let cursor = 0;
    const waiters = [];
    ws.on('message', (buf) => {
        try {
            frames.push(JSON.parse(buf.toString()));
        }
        catch {
            frames.push({ event: '__unparseable__', data: buf.toString() });
        }
        waiters.splice(0).forEach((w) => w());
    });
    const closed = new Promise((res) => ws.on('close', (code, reason) => {
        res({ code, reason: reason.toString() });
        waiters.splice(0).forEach((w) => w());
    }));
    const sock = {
        ws,
        frames,
        send: (obj) => ws.send(JSON.stringify(obj)),
        sendRaw: (data, binary = false) => ws.send(data, { binary }),
        next: (pred = () => true, timeoutMs = 5000) => new Promise((res, rej) => {
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
export function dataOf(frame) {
    return (typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data);
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function cleanup(...items) {
    return Promise.all(items.map(async (item) => {
        if (!item)
            return;
        if ('disconnect' in item)
            item.disconnect();
        else if ('ws' in item && 'frames' in item)
            item.close();
        else if ('stop' in item)
            await item.stop();
    }));
}
