// Pusher signatures computed in-process: the HTTP API (auth_signature over
// METHOD\nPATH\nsorted query) and channel auth for private/presence channels.
import { createHash, createHmac } from 'node:crypto';

export const hmacHex = (secret, data) => createHmac('sha256', secret).update(data).digest('hex');
export const md5Hex = (data) => createHash('md5').update(data).digest('hex');

/** Path and query of a signed POST with this body. */
export function signedPost(app, path, body, nowSeconds = Math.floor(Date.now() / 1000)) {
  const query = `auth_key=${app.key}&auth_timestamp=${nowSeconds}&auth_version=1.0&body_md5=${md5Hex(body)}`;
  const signature = hmacHex(app.secret, `POST\n${path}\n${query}`);
  return `${path}?${query}&auth_signature=${signature}`;
}

/** `auth` for pusher:subscribe on a private or presence channel. */
export function channelAuth(app, socketId, channel, channelData) {
  const toSign = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${hmacHex(app.secret, toSign)}`;
}
