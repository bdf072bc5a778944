/** Sends unless the socket has closed (uWS throws on a closed socket). */
export function sendFrame(data, frame) {
    if (!data.closed && data.ws)
        data.ws.send(frame, false, false);
}
/** Sends a last frame, then closes with a code. */
export function closeWith(data, code, frame, reason = '') {
    if (data.closed || !data.ws)
        return;
    const ws = data.ws;
    ws.cork(() => {
        if (frame)
            ws.send(frame, false, false);
        ws.end(code, reason);
    });
}
