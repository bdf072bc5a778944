export class LocalChannel {
    sockets = new Set();
}
export class AppLocalState {
    connections = 0;
    channels = new Map();
    /** user id -> sockets signed in as that user */
    users = new Map();
    /** watched user id -> sockets whose watchlist holds it */
    watchers = new Map();
}
export class LocalRegistry {
    sockets = new Map();
    apps = new Map();
    app(appId) {
        let state = this.apps.get(appId);
        if (!state)
            this.apps.set(appId, (state = new AppLocalState()));
        return state;
    }
    peek(appId) {
        return this.apps.get(appId);
    }
    /** Adds a subscriber; true when it is the channel's first on this node. */
    addSubscriber(appId, channel, socket) {
        const state = this.app(appId);
        let ch = state.channels.get(channel);
        const first = ch === undefined;
        if (!ch)
            state.channels.set(channel, (ch = new LocalChannel()));
        ch.sockets.add(socket);
        return first;
    }
    /** Removes a subscriber; true when the channel has none left on this node. */
    removeSubscriber(appId, channel, socket) {
        const state = this.apps.get(appId);
        const ch = state?.channels.get(channel);
        if (!state || !ch || !ch.sockets.delete(socket))
            return false;
        if (ch.sockets.size > 0)
            return false;
        state.channels.delete(channel);
        return true;
    }
    subscriberCount(appId, channel) {
        return this.apps.get(appId)?.channels.get(channel)?.sockets.size ?? 0;
    }
    localChannels(appId) {
        return this.apps.get(appId)?.channels ?? new Map();
    }
    connectionCount(appId) {
        return this.apps.get(appId)?.connections ?? 0;
    }
    totalConnections() {
        return this.sockets.size;
    }
}
