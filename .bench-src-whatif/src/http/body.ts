// Reads a request body without ever holding more than `limit` bytes.
import type { HttpResponse } from 'uWebSockets.js';

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'timeout' };

/**
 * Must be called in the handler's synchronous part (uWS drops data otherwise).
 * Resolves once the body is complete, too large, or `timeoutMs` passed (slowloris).
 */
export function readBody(res: HttpResponse, limit: number, declaredLength: number, timeoutMs: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    if (declaredLength > limit) {
      resolve({ ok: false, reason: 'too_large' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      resolve({ ok: false, reason: 'timeout' });
    }, timeoutMs);
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > limit) {
        done = true;
        clearTimeout(timer);
        resolve({ ok: false, reason: 'too_large' });
        return;
      }
      // uWS reuses the chunk's memory after this callback: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) {
        done = true;
        clearTimeout(timer);
        resolve({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
      }
    });
  });
}
