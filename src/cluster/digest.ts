// Digests of replicated state: a node's share is the sum (mod 2^32) of one hash per
// entry, kept incrementally, so two nodes holding the same entries agree on it
// without sending them. FNV-1a over the parts with their lengths (no separator a
// part could contain).

function fnv1a(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** The hash of one entry, e.g. ('p', app, channel, user, sockets) or ('c', app, channel). */
export function entryDigest(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const text = String(part);
    h = fnv1a(h, `${text.length}:`);
    h = fnv1a(h, text);
  }
  return h >>> 0;
}

/** A node's rendezvous score for a key: FNV-1a, then murmur3's finaliser to spread the bits. */
export function score(nodeId: string, key: string): number {
  let h = entryDigest(nodeId, key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
