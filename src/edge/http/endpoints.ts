// The API endpoints behind the router: each gets an authenticated call with its body.
import type { App } from '../../apps/app.js';
import { channelHistory } from './history.js';
import { idempotentBatch, idempotentEvent } from './idempotency.js';
import { forceReconnect, listChannels, listUsers, showChannel, terminateConnections } from './queries.js';
import { errorReply, type Reply } from './respond.js';
import type { Call, HttpDeps } from './settings.js';

export type Endpoint =
  'events' | 'batch_events' | 'channels' | 'channel' | 'users' | 'terminate_connections' | 'force_reconnect' | 'history';

type Handler = (d: HttpDeps, app: App, call: Call) => Promise<Reply> | Reply;

/** Reads count against max_read_requests_per_second. */
export const isReadEndpoint = (e: Endpoint): boolean => e === 'channels' || e === 'channel' || e === 'users' || e === 'history';

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}

export const handlers: Record<Endpoint, Handler> = {
  events: (d, app, call) => {
    const json = parseJson(call.body);
    return json.ok ? idempotentEvent(d, app, json.value, call.idempotencyHeader) : errorReply(400, 'Body is not valid JSON');
  },
  batch_events: (d, app, call) => {
    const json = parseJson(call.body);
    return json.ok ? idempotentBatch(d, app, json.value, call.idempotencyHeader) : errorReply(400, 'Body is not valid JSON');
  },
  channels: (d, app, call) => listChannels(d, app, call.params),
  channel: (d, app, call) => showChannel(d, app, call.args[0], call.params),
  users: (d, app, call) => listUsers(d, app, call.args[0]),
  terminate_connections: (d, app, call) => terminateConnections(d, app, call.args[0]),
  force_reconnect: (d, app, call) => forceReconnect(d, app, call.args[0]),
  history: (d, app, call) => channelHistory(d, app, call.args[0], call.params),
};
