// Delivers webhooks over HTTP as Pusher does: {"time_ms", "events"} signed with
// the app secret, optionally batched per endpoint, channel_vacated and
// member_removed held back to absorb quick reconnects, retried with backoff.
import { randomUUID } from 'node:crypto';
import { hmacSha256Hex } from '../protocol/signatures.js';
/** Does the event pass the webhook's type list and channel filter? */
export function webhookMatches(hook, event) {
    if (!hook.event_types.includes(event.name))
        return false;
    const f = hook.filter;
    if (!f)
        return true;
    if (f.channel_prefix && !event.channel.startsWith(f.channel_prefix))
        return false;
    if (f.channel_suffix && !event.channel.endsWith(f.channel_suffix))
        return false;
    if (f.channel_pattern) {
        try {
            if (!new RegExp(f.channel_pattern).test(event.channel))
                return false;
        }
        catch {
            return false;
        }
    }
    return true;
}
const heldKey = (appId, e) => {
    if (e.name === 'channel_vacated' || e.name === 'channel_occupied')
        return `${appId}\nc\n${e.channel}`;
    if (e.name === 'member_removed' || e.name === 'member_added')
        return `${appId}\nm\n${e.channel}\n${e.user_id}`;
    return null;
};
export class HttpWebhookSink {
    options;
    log;
    open = new Map();
    held = new Map();
    inFlight = new Set();
    retryTimers = new Set();
    queued = 0;
    closed = false;
    constructor(options, log) {
        this.options = options;
        this.log = log;
    }
    emit(app, event) {
        if (this.closed)
            return;
        const key = heldKey(app.id, event);
        if (key) {
            const pending = this.held.get(key);
            if (event.name === 'channel_occupied' || event.name === 'member_added') {
                // Back within the delay: neither the held removal nor this addition is sent.
                if (pending) {
                    clearTimeout(pending.timer);
                    this.held.delete(key);
                    return;
                }
            }
            else if (this.options.vacatedDelayMs > 0) {
                if (pending)
                    return;
                const timer = setTimeout(() => {
                    this.held.delete(key);
                    this.route(app, event);
                }, this.options.vacatedDelayMs);
                timer.unref();
                this.held.set(key, { app, event, timer });
                return;
            }
        }
        this.route(app, event);
    }
    route(app, event) {
        const stamped = { ...event, time_ms: Date.now() };
        for (const hook of app.webhooks) {
            if (!webhookMatches(hook, event))
                continue;
            if (!this.options.batching) {
                this.enqueue({ id: randomUUID(), app, hook, events: [stamped], attempts: 0 });
                continue;
            }
            const k = `${app.id}\n${hook.url}`;
            const open = this.open.get(k);
            if (open) {
                open.batch.events.push(stamped);
                continue;
            }
            const batch = { id: randomUUID(), app, hook, events: [stamped], attempts: 0 };
            const timer = setTimeout(() => {
                this.open.delete(k);
                this.enqueue(batch);
            }, this.options.batchMs);
            timer.unref();
            this.open.set(k, { batch, timer });
        }
    }
    enqueue(batch) {
        if (this.queued >= this.options.maxQueued) {
            this.log.error({ app_id: batch.app.id, url: batch.hook.url, events: batch.events.length }, 'webhook queue full, batch dropped');
            return;
        }
        this.queued++;
        const p = this.attempt(batch).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
    }
    async attempt(batch) {
        batch.attempts++;
        const timeMs = Math.min(...batch.events.map((e) => e.time_ms ?? Date.now()));
        const events = batch.events.map(({ time_ms: _t, ...e }) => e);
        const body = JSON.stringify({ time_ms: timeMs, events });
        let failure = null;
        try {
            const res = await fetch(batch.hook.url, {
                method: 'POST',
                headers: {
                    ...batch.hook.headers,
                    'Content-Type': 'application/json',
                    'X-Pusher-Key': batch.app.key,
                    'X-Pusher-Signature': hmacSha256Hex(batch.app.secret, body),
                    'X-Chorus-Webhook-Id': batch.id,
                },
                body,
                signal: AbortSignal.timeout(this.options.requestTimeoutMs),
            });
            await res.arrayBuffer().catch(() => undefined);
            if (res.status < 200 || res.status >= 300)
                failure = `HTTP ${res.status}`;
        }
        catch (err) {
            failure = err.name === 'TimeoutError' ? 'timeout' : err.message;
        }
        if (failure === null) {
            this.queued--;
            return;
        }
        if (batch.attempts >= this.options.maxAttempts || this.closed) {
            this.queued--;
            this.log.error({ app_id: batch.app.id, url: batch.hook.url, webhook_id: batch.id, attempts: batch.attempts, reason: failure }, 'webhook dead-lettered');
            return;
        }
        // Exponential backoff with full jitter: 1 s, 2 s, 4 s ... capped at 60 s.
        const base = Math.min(60_000, 1000 * 2 ** (batch.attempts - 1));
        const delay = Math.floor(base / 2 + Math.random() * (base / 2));
        this.log.warn({ app_id: batch.app.id, url: batch.hook.url, webhook_id: batch.id, reason: failure, retry_in_ms: delay }, 'webhook failed, will retry');
        this.queued--;
        const timer = setTimeout(() => {
            this.retryTimers.delete(timer);
            this.enqueue(batch);
        }, delay);
        timer.unref();
        this.retryTimers.add(timer);
    }
    async flush(deadlineMs) {
        for (const [k, h] of this.held) {
            clearTimeout(h.timer);
            this.held.delete(k);
            this.route(h.app, h.event);
        }
        for (const [k, o] of this.open) {
            clearTimeout(o.timer);
            this.open.delete(k);
            this.enqueue(o.batch);
        }
        const all = Promise.allSettled([...this.inFlight]);
        await Promise.race([all, new Promise((r) => setTimeout(r, deadlineMs).unref())]);
    }
    async close() {
        this.closed = true;
        for (const t of this.retryTimers)
            clearTimeout(t);
        this.retryTimers.clear();
    }
}
