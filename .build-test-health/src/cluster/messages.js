export const entriesToWire = (entries) => entries.map((e) => [e.appId, e.channel, e.userId, e.info, e.sockets]);
export const entriesFromWire = (wire) => wire.map(([appId, channel, userId, info, sockets]) => ({ appId, channel, userId, info, sockets }));
/** Splits a channel-topic payload without copying the frame more than once. */
export function parseChannelPayload(payload) {
    const a = payload.indexOf('\n');
    const b = a < 0 ? -1 : payload.indexOf('\n', a + 1);
    if (b < 0)
        return null;
    const except = payload.slice(a + 1, b);
    return { origin: payload.slice(0, a), except: except.length > 0 ? except : undefined, frame: payload.slice(b + 1) };
}
export const channelPayload = (origin, except, frame) => origin + '\n' + (except ?? '') + '\n' + frame;
