/** Sends unless the socket has closed (uWS throws on a closed socket). */
export function sendFrame(data, frame) {
    if (data.closed || !data.ws)
        return;
    data.ws.send(frame, false, false);
    countSent(data, frame);
}
/** Fan-out is counted by the hub; this counts the frames sent to one socket. */
function countSent(data, frame) {
    data.metrics?.messagesOut.inc();
    data.metrics?.bytesOut.inc(frame.length);
}
/** Sends a last frame, then closes with a code. */
export function closeWith(data, code, frame, reason = '') {
    if (data.closed || !data.ws)
        return;
    const ws = data.ws;
    ws.cork(() => {
        if (frame) {
            ws.send(frame, false, false);
            countSent(data, frame);
        }
        ws.end(code, reason);
    });
}
