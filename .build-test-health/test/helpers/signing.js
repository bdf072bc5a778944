// A hand-made HTTP API signer (PROTOCOL.md section 8) for requests the official
// SDK would never send: stale timestamps, wrong keys, missing or wrong body_md5,
// bodies that are not JSON, extra path prefixes.
import { createHash, createHmac } from 'node:crypto';
import { DEMO_APP } from './node.js';
export const md5 = (data) => createHash('md5').update(data).digest('hex');
/** The query string (with auth_signature) for a request signed as PROTOCOL.md section 8 says. */
export function signedQuery(opts) {
    const app = opts.app ?? DEMO_APP;
    const method = (opts.method ?? 'GET').toUpperCase();
    const params = {
        auth_key: opts.key ?? app.key,
        auth_timestamp: String(opts.timestamp ?? Math.floor(Date.now() / 1000)),
        auth_version: '1.0',
        ...opts.params,
    };
    const body = opts.body ?? '';
    if (opts.bodyMd5 !== undefined) {
        if (opts.bodyMd5 !== null)
            params.body_md5 = opts.bodyMd5;
    }
    else if (body.length > 0) {
        params.body_md5 = md5(body);
    }
    const keys = Object.keys(params).map((k) => k.toLowerCase()).sort();
    const lower = {};
    for (const [k, v] of Object.entries(params))
        lower[k.toLowerCase()] = v;
    const toSign = `${method}\n${opts.path}\n${keys.map((k) => `${k}=${lower[k]}`).join('&')}`;
    const signature = createHmac('sha256', opts.secret ?? app.secret).update(toSign).digest('hex');
    const query = new URLSearchParams({ ...lower, auth_signature: signature });
    return query.toString();
}
/** Sends a hand-signed request to a node and reads the whole answer. */
export async function signedFetch(node, opts, timeoutMs = 5000) {
    const method = (opts.method ?? 'GET').toUpperCase();
    const url = `http://127.0.0.1:${node.port}${opts.path}?${signedQuery(opts)}`;
    const res = await fetch(url, {
        method,
        body: opts.body === undefined ? undefined : opts.body,
        headers: opts.body === undefined ? {} : { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
    });
    return readResponse(res);
}
export async function readResponse(res) {
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    }
    catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
}
