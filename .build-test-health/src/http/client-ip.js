const decoder = new TextDecoder();
export function clientIp(res, req, trustHops) {
    const peer = decoder.decode(res.getRemoteAddressAsText());
    if (trustHops <= 0)
        return peer;
    const forwarded = req.getHeader('x-forwarded-for');
    if (!forwarded)
        return peer;
    const hops = forwarded.split(',').map((s) => s.trim()).filter(Boolean);
    // The last `trustHops` entries were appended by our proxies; the one before them is the client.
    const index = hops.length - trustHops;
    return index >= 0 && index < hops.length ? hops[index] : hops[0] ?? peer;
}
