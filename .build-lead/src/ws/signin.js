import { watchlistFrame } from '../channels/hub.js';
import { CloseCode } from '../protocol/codes.js';
import { dataAsObject, errorFrame } from '../protocol/frames.js';
import { userStringToSign, verifyClientAuth } from '../protocol/signatures.js';
import { MAX_USER_ID_LENGTH } from './subscribe.js';
import { sendFrame } from './socket.js';
/** Pusher's watchlist limit: the first 100 ids are kept, 4302 tells the client. */
export const MAX_WATCHLIST = 100;
const fail = (sock, message) => sendFrame(sock, errorFrame(CloseCode.UNAUTHORIZED, message));
function encodable(value) {
    try {
        JSON.stringify(value);
        return true;
    }
    catch {
        return false;
    }
}
export function handleSignin(ctx, sock, rawData) {
    const app = sock.app;
    const data = dataAsObject(rawData);
    const userData = data?.user_data;
    if (typeof userData !== 'string')
        return fail(sock, 'pusher:signin needs user_data as a JSON string');
    if (!verifyClientAuth(data.auth, app.key, app.secret, userStringToSign(sock.socketId, userData))) {
        return fail(sock, 'Invalid signature for user sign-in');
    }
    let user;
    try {
        const parsed = JSON.parse(userData);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
            throw new Error();
        user = parsed;
    }
    catch {
        return fail(sock, 'user_data must be a JSON object');
    }
    const id = user.id;
    if (typeof id !== 'string' || id.length === 0)
        return fail(sock, 'user_data.id must be a non-empty string');
    if (id.length > MAX_USER_ID_LENGTH)
        return fail(sock, `user id is longer than ${MAX_USER_ID_LENGTH} characters`);
    if (sock.user && sock.user.id !== id)
        return fail(sock, 'This connection is already signed in as another user');
    // user_info is re-encoded into presence frames; too deep for JSON.stringify, it would break
    // every later subscribe to a presence channel this user joins.
    if (!encodable(user.user_info))
        return fail(sock, 'user_data.user_info is nested too deeply');
    let watchlist = Array.isArray(user.watchlist) ? user.watchlist.filter((w) => typeof w === 'string') : [];
    const overflow = watchlist.length > MAX_WATCHLIST;
    if (overflow)
        watchlist = watchlist.slice(0, MAX_WATCHLIST);
    const state = ctx.registry.app(app.id);
    if (!sock.user) {
        let sockets = state.users.get(id);
        if (!sockets)
            state.users.set(id, (sockets = new Set()));
        sockets.add(sock);
        if (ctx.adapter.userOnline(app.id, id))
            ctx.hub.userPresenceChanged(app.id, id, true);
    }
    else {
        unwatch(ctx, sock);
    }
    sock.user = { id, userData, info: user.user_info ?? null, watchlist };
    sock.authDeadline = 0;
    sendFrame(sock, JSON.stringify({ event: 'pusher:signin_success', data: JSON.stringify({ user_data: userData }) }));
    if (watchlist.length === 0 || !app.enable_watchlist_events)
        return;
    for (const watched of watchlist) {
        let watchers = state.watchers.get(watched);
        if (!watchers)
            state.watchers.set(watched, (watchers = new Set()));
        watchers.add(sock);
    }
    if (overflow) {
        sendFrame(sock, errorFrame(CloseCode.WATCHLIST_LIMIT, `Watchlist limit exceeded: only the first ${MAX_WATCHLIST} ids are watched`));
    }
    // As Pusher does, the first report names the watched users who are online now.
    sendFrame(sock, watchlistFrame(watchlist.filter((w) => ctx.adapter.isUserOnline(app.id, w)), []));
}
function unwatch(ctx, sock) {
    const state = ctx.registry.peek(sock.app.id);
    if (!state || !sock.user)
        return;
    for (const watched of sock.user.watchlist) {
        const watchers = state.watchers.get(watched);
        if (!watchers)
            continue;
        watchers.delete(sock);
        if (watchers.size === 0)
            state.watchers.delete(watched);
    }
}
/** Undoes a sign-in when its socket closes. */
export function signOut(ctx, sock) {
    const user = sock.user;
    if (!user)
        return;
    const appId = sock.app.id;
    unwatch(ctx, sock);
    const state = ctx.registry.peek(appId);
    const sockets = state?.users.get(user.id);
    if (sockets) {
        sockets.delete(sock);
        if (sockets.size === 0)
            state.users.delete(user.id);
    }
    sock.user = null;
    if (ctx.adapter.userOffline(appId, user.id))
        ctx.hub.userPresenceChanged(appId, user.id, false);
}
