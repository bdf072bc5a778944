// The client's address, honouring X-Forwarded-For only for the configured
// number of trusted proxy hops (0: use the TCP peer).
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

const decoder = new TextDecoder();

export function clientIp(res: HttpResponse, req: HttpRequest, trustHops: number): string {
  const peer = decoder.decode(res.getRemoteAddressAsText());
  if (trustHops <= 0) return peer;
  const forwarded = req.getHeader('x-forwarded-for');
  if (!forwarded) return peer;
  const hops = forwarded
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // The last `trustHops` entries were appended by our proxies; the one before them is the client.
  const index = hops.length - trustHops;
  return index >= 0 && index < hops.length ? hops[index] : (hops[0] ?? peer);
}
